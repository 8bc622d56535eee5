"""Size and latency of a model, measured the same way for every variant.

- :func:`model_size`: the state dict serialised by ``torch.save`` (the form every variant,
  int8 included, can take), its gzip-compressed size (what zeros of a pruned model buy),
  and the share held by buffers (entity tables, which no compression touches).
- :func:`latency` / :func:`latencies`: wall time of ``forward`` on one batch, after
  warm-up, on a fixed number of intra-op threads; median and 95th percentile in
  milliseconds. Models compared are timed in turns, call by call, so drift of a shared
  machine's speed affects them alike.
"""

from __future__ import annotations

import gzip
import io
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class SizeStats:
    """Bytes of a serialised model: ``bytes`` (``torch.save`` of the state dict), ``gzip_bytes``
    (that, gzip level 6) and ``buffer_bytes`` (raw bytes of the buffers, the entity tables)."""

    bytes: int
    gzip_bytes: int
    buffer_bytes: int

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def model_size(model: nn.Module) -> SizeStats:
    """:class:`SizeStats` of ``model``."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    raw = buffer.getvalue()
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    return SizeStats(len(raw), len(gzip.compress(raw, compresslevel=6)), int(buffers))


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds per batch of ``batch_size`` over ``repeats`` timed calls on ``threads``."""

    median_ms: float
    p95_ms: float
    mean_ms: float
    batch_size: int
    repeats: int
    warmup: int
    threads: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous number."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _stats(times: np.ndarray, batch_size: int, warmup: int, threads: int) -> LatencyStats:
    return LatencyStats(
        median_ms=float(np.median(times)),
        p95_ms=float(np.percentile(times, 95)),
        mean_ms=float(times.mean()),
        batch_size=batch_size,
        repeats=int(times.size),
        warmup=warmup,
        threads=threads,
    )


def time_interleaved(
    calls: Sequence[Callable[[], Any]], *, warmup: int, repeats: int, batch_size: int, threads: int
) -> list[LatencyStats]:
    """Time each of ``calls`` ``repeats`` times after ``warmup`` untimed calls each, taking
    turns (call 0, call 1, ..., call 0, ...), so a machine whose speed drifts (other jobs,
    frequency scaling) slows every call alike and their comparison stays fair."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for call in calls:
        for _ in range(warmup):
            call()
    times = np.empty((len(calls), repeats))
    for i in range(repeats):
        for j, call in enumerate(calls):
            start = time.perf_counter()
            call()
            times[j, i] = (time.perf_counter() - start) * 1000.0
    return [_stats(row, batch_size, warmup, threads) for row in times]


def latencies(
    models: Sequence[nn.Module],
    batch: Mapping[str, Tensor],
    *,
    warmup: int = 10,
    repeats: int = 50,
    threads: int = 1,
) -> list[LatencyStats]:
    """:class:`LatencyStats` of each ``model(batch)`` (eval mode, no autograd, ``threads``
    intra-op threads), timed in turns (:func:`time_interleaved`); ``batch`` holds ``(B, ...)``
    features."""
    size = int(next(iter(batch.values())).shape[0])
    calls = []
    for model in models:
        model.eval()

        @torch.inference_mode()
        def call(model: nn.Module = model) -> Any:
            return model(batch)

        calls.append(call)
    with torch_threads(threads):
        return time_interleaved(
            calls, warmup=warmup, repeats=repeats, batch_size=size, threads=threads
        )


def latency(
    model: nn.Module,
    batch: Mapping[str, Tensor],
    *,
    warmup: int = 10,
    repeats: int = 50,
    threads: int = 1,
) -> LatencyStats:
    """:func:`latencies` of one model."""
    return latencies([model], batch, warmup=warmup, repeats=repeats, threads=threads)[0]
