"""ONNX export of the ranking model and its onnxruntime parity check.

:func:`export_onnx` exports ``MultiTaskModel.forward(features)`` with torch's
``torch.export``-based exporter (``dynamo=True``, the default since torch 2.9; the
TorchScript exporter is deprecated). The graph's inputs are the feature dict's entries by
name (``user_idx``, ``item_idx``, ``user_row``, ``item_row`` ``(B,)`` int64 and per-example
vectors such as ``history_profile`` ``(B, D)`` float32), its outputs the tasks by name
(``(B,)`` or ``(B, C)``), and the batch axis is dynamic. Entity tables travel inside the graph
as initializers, so the ONNX model needs nothing but the batch features.

:func:`onnx_parity` runs the ONNX model in onnxruntime and the torch model on the same real
batches and reports the largest absolute difference per task (the check passes under 1e-4).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mtlrec.export.measure import LatencyStats, time_interleaved, torch_threads
from mtlrec.models.multitask import MultiTaskModel

DEFAULT_OPSET = 18
PARITY_TOLERANCE = 1e-4
"""Largest absolute difference per task between onnxruntime and torch that passes."""


class _Ordered(nn.Module):
    """``features -> (output of task 0, output of task 1, ...)`` in ``tasks`` order, so the
    graph's outputs can be named whatever order the backbone composes them in."""

    def __init__(self, model: MultiTaskModel, tasks: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.tasks = tasks

    def forward(self, features: dict[str, Tensor]) -> tuple[Tensor, ...]:
        out = self.model(features)
        return tuple(out[t] for t in self.tasks)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Keep the exporter's progress lines, warnings and log records (e.g. "torchvision is
    not installed") out of the output; errors still raise."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


@dataclass(frozen=True)
class OnnxModel:
    """An exported model: its file, input and output names (outputs = tasks), opset."""

    path: Path
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    opset: int


def export_onnx(
    model: MultiTaskModel,
    example: Mapping[str, Tensor],
    path: Path,
    opset: int = DEFAULT_OPSET,
) -> OnnxModel:
    """Export ``model`` (in eval mode) to ``path``, traced on ``example`` (features with a
    batch of at least 2 rows, so the batch axis stays symbolic)."""
    rows = int(next(iter(example.values())).shape[0])
    if rows < 2:
        raise ValueError(
            f"the example batch needs at least 2 rows to keep the batch axis dynamic, got {rows}"
        )
    tasks = tuple(model.tasks)
    names = tuple(example)
    batch = torch.export.Dim("batch")
    was_training = model.training
    model.eval()
    try:
        with _quiet_exporter():
            program = torch.onnx.export(
                _Ordered(model, tasks).eval(),
                (),
                kwargs={"features": {k: v.cpu() for k, v in example.items()}},
                dynamo=True,
                dynamic_shapes={"features": {name: {0: batch} for name in names}},
                input_names=list(names),
                output_names=list(tasks),
                opset_version=opset,
                verbose=False,
            )
            assert program is not None
            program.save(path)
    finally:
        model.train(was_training)
    return OnnxModel(path, names, tasks, opset)


def onnx_session(path: Path, threads: int = 1) -> Any:
    """An onnxruntime CPU session of the model at ``path`` on ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session: Any, features: Mapping[str, Tensor]) -> dict[str, np.ndarray]:
    """Outputs ``{task: (B, ...)}`` of an onnxruntime ``session`` on ``features`` (only the
    inputs the graph declares are fed)."""
    feed = {i.name: features[i.name].cpu().numpy() for i in session.get_inputs()}
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feed), strict=True))


@dataclass(frozen=True)
class OnnxParity:
    """Largest absolute difference per task between onnxruntime and torch over
    ``n_examples`` rows in ``n_batches`` batches; ``passed`` when every one is under
    ``tolerance``."""

    max_abs_diff: dict[str, float]
    n_examples: int
    n_batches: int
    tolerance: float

    @property
    def passed(self) -> bool:
        return all(diff < self.tolerance for diff in self.max_abs_diff.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "max_abs_diff": self.max_abs_diff,
            "n_examples": self.n_examples,
            "n_batches": self.n_batches,
            "tolerance": self.tolerance,
            "passed": self.passed,
        }


@torch.inference_mode()
def onnx_parity(
    model: MultiTaskModel,
    path: Path,
    batches: Iterable[Mapping[str, Tensor]],
    tolerance: float = PARITY_TOLERANCE,
    threads: int = 1,
) -> OnnxParity:
    """Compare the ONNX model at ``path`` with ``model`` on every batch of ``batches``."""
    session = onnx_session(path, threads)
    model.eval()
    worst = {task: 0.0 for task in model.tasks}
    rows = n_batches = 0
    for batch in batches:
        expected = model(batch)
        got = run_onnx(session, batch)
        for task in model.tasks:
            reference = expected[task].float().cpu().numpy()
            if got[task].shape != reference.shape:
                raise ValueError(
                    f"ONNX output {task!r} has shape {got[task].shape}, torch {reference.shape}"
                )
            diff = float(np.abs(got[task] - reference).max()) if reference.size else 0.0
            worst[task] = max(worst[task], diff)
        rows += int(next(iter(batch.values())).shape[0])
        n_batches += 1
    if not n_batches:
        raise ValueError("onnx_parity needs at least one batch")
    return OnnxParity(worst, rows, n_batches, tolerance)


def onnx_latency(
    model: MultiTaskModel,
    path: Path,
    batch: Mapping[str, Tensor],
    *,
    warmup: int = 10,
    repeats: int = 50,
    threads: int = 1,
) -> tuple[LatencyStats, LatencyStats]:
    """Milliseconds per call on ``batch`` of onnxruntime and of torch (``model``), timed in
    turns on ``threads`` threads each (see :func:`time_interleaved`): ``(onnx, torch)``."""
    session = onnx_session(path, threads)
    feed = {i.name: batch[i.name].cpu().numpy() for i in session.get_inputs()}
    size = int(next(iter(batch.values())).shape[0])
    model.eval()

    @torch.inference_mode()
    def torch_call() -> Any:
        return model(batch)

    with torch_threads(threads):
        ort_stats, torch_stats = time_interleaved(
            [lambda: session.run(None, feed), torch_call],
            warmup=warmup,
            repeats=repeats,
            batch_size=size,
            threads=threads,
        )
    return ort_stats, torch_stats
