"""One run of ``mtlrec train``: data -> text -> model -> training -> evaluation -> run folder.

The run folder holds ``config.yaml`` (resolved), ``model.pt`` (best weights),
``results.json`` (valid/test metrics, cold-start slice, ranking, dataset statistics and, for
MMoE/PLE, the gate utilisation on the test split), ``train.jsonl`` and TensorBoard logs, and
``checkpoints/`` for exact resume.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import torch
import yaml
from rich.console import Console

from mtlrec.config.experiment import ExperimentConfig
from mtlrec.core.atomic import atomic_file, reporting_write_errors, write_text_atomically
from mtlrec.data.examples import SPLITS
from mtlrec.data.fetch import FetchSettings
from mtlrec.evaluation import print_results, results_to_json
from mtlrec.evaluation.gates import feature_batches, gate_utilisation
from mtlrec.evaluation.model_metrics import flatten
from mtlrec.models.architectures import Architecture
from mtlrec.models.factory import build_model
from mtlrec.models.heads import Head
from mtlrec.models.multitask import MultiTaskModel, TaskModel
from mtlrec.pipeline.evaluate import evaluate_run, evaluation_sets, negative_config
from mtlrec.pipeline.run_data import RunData, load_run_data
from mtlrec.training.callbacks import (
    Callback,
    EarlyStopping,
    JsonlLogger,
    ProgressBar,
    TensorBoardLogger,
)
from mtlrec.training.loader import ExampleLoader, NegativeConfig
from mtlrec.training.seeding import deterministic_kernels
from mtlrec.training.trainer import Trainer, TrainerSettings
from mtlrec.weighting.base import weighting_for_tasks


def build_run_model(config: ExperimentConfig, data: RunData) -> MultiTaskModel:
    """The model of ``config`` over the run's data (:func:`mtlrec.models.factory.build_model`),
    output biases at the training label priors (see :func:`init_heads_from_priors`)."""
    dense = {k: int(v.shape[1]) for k, v in data.examples.features.items() if v.dim() == 2}
    model = build_model(config, data.entities, data.specs, data.excluded_inputs, dense)
    heads = {name: cast(Head, head) for name, head in model.heads.items()}
    init_heads_from_priors(
        heads, data, negative_config(config, config.training.negatives.per_positive)
    )
    return model


def init_heads_from_priors(
    heads: Mapping[str, Head], data: RunData, negatives: NegativeConfig | None
) -> None:
    """Output biases start at the training label mean (regression) or its logit (binary),
    counting the sampled negatives a task is trained on. Used by both architectures."""
    train = data.examples.subset("train")
    for name, head in heads.items():
        spec, mask = data.specs[name], train.masks[name]
        if not bool(mask.any()) or spec.kind not in ("regression", "binary", "multilabel"):
            continue
        labels = train.labels[name][mask].float()
        total, count = labels.sum(dim=0), float(len(labels))
        if negatives is not None and name in negatives.labels:
            drawn = negatives.per_positive * len(train)
            total, count = total + drawn * negatives.labels[name], count + drawn
        mean = (total / count).reshape(-1)
        prior = mean if spec.kind == "regression" else torch.logit(mean.clamp(1e-4, 1 - 1e-4))
        head.init_output(prior)


GATE_SAMPLE = 20_000
"""At most this many test examples (a fixed random sample) feed the gate utilisation."""


def gate_report(
    config: ExperimentConfig, data: RunData, model: MultiTaskModel
) -> dict[str, Any] | None:
    """Mean gate weight per task per expert on (a sample of) the test split; ``None`` for
    backbones without gates or an empty test split (see :mod:`mtlrec.evaluation.gates`)."""
    test = data.examples.subset("test")
    if not len(test):
        return None
    batches = feature_batches(
        test.features, config.evaluation.batch_size, GATE_SAMPLE, seed=config.seed
    )
    usage = gate_utilisation(model, batches, config.training.device)
    return None if usage is None else usage.to_json()


def data_statistics(data: RunData) -> dict[str, Any]:
    """What the report shows of the dataset: the prepared manifest's counts and split sizes,
    and the number of examples per split (sampled negatives not counted)."""
    manifest = data.dataset.manifest
    split = manifest.get("split", {})
    return {
        "counts": manifest.get("counts", {}),
        "split": {"strategy": split.get("strategy"), "sizes": split.get("sizes", {})},
        "examples": {s: int((data.examples.split == i).sum()) for i, s in enumerate(SPLITS)},
    }


def run_callbacks(config: ExperimentConfig, run_dir: Path, progress: bool) -> list[Callback]:
    """The callbacks of a run: JSONL and TensorBoard logs in ``run_dir``, a progress bar
    (``progress``), early stopping on the validation metric when the config asks for it."""
    callbacks: list[Callback] = [
        JsonlLogger(run_dir / "train.jsonl", every=1),
        TensorBoardLogger(run_dir / "tensorboard", every=1),
    ]
    if progress:
        callbacks.append(ProgressBar())
    stopping = config.training.early_stopping
    if stopping is not None:
        callbacks.append(EarlyStopping(stopping.monitor, stopping.mode, stopping.patience))
    return callbacks


def train_model(
    config: ExperimentConfig,
    data: RunData,
    run_dir: Path,
    resume: bool = False,
    progress: bool = True,
) -> tuple[MultiTaskModel, Trainer]:
    """Build and train a model on the run's data; returns it with its best weights."""
    torch.manual_seed(config.seed)
    model = build_run_model(config, data)
    train_cfg = config.training
    weighting = weighting_for_tasks(
        config.weighting.name,
        {n: s.weight for n, s in data.specs.items()},
        **config.weighting.params,
    )
    loader = ExampleLoader(
        data.examples.subset("train"),
        train_cfg.batch_size,
        shuffle=True,
        seed=config.seed,
        negatives=negative_config(config, train_cfg.negatives.per_positive),
        n_items=len(data.entities.item_ids),
        item_vocab_index=data.entities.item_vocab_index,
    )
    callbacks = run_callbacks(config, run_dir, progress)
    stopping = train_cfg.early_stopping
    valid_set = evaluation_sets(config, data, ("valid",))

    def validate(_: TaskModel) -> dict[str, float]:
        # full ranking costs one pass over every (user, item): only when it is monitored
        ranked = stopping is not None and stopping.monitor.startswith("valid/ranking")
        results = evaluate_run(config, data, model, ("valid",), ranked, valid_set)
        return flatten(results["valid"], "valid")

    trainer = Trainer(
        model,
        data.specs,
        weighting,
        TrainerSettings.from_config(train_cfg, seed=config.seed),
        checkpoint_dir=run_dir / "checkpoints",
        callbacks=callbacks,
    )
    last = run_dir / "checkpoints" / "last.pt"
    trainer.fit(loader, validate, resume_from=last if resume and last.exists() else None)
    return model, trainer


Evaluation = Callable[[], tuple[dict[str, Any], dict[str, Any] | None]]
"""Evaluates a trained model on valid and test: ``(results, gate utilisation or None)``."""


def _train(
    config: ExperimentConfig, data: RunData, run_dir: Path, resume: bool
) -> tuple[torch.nn.Module, Trainer, Evaluation]:
    """Train the config's architecture; returns the model, its trainer and its evaluation."""
    if Architecture.of(config).sequential:
        from mtlrec.pipeline.sequential import evaluate_sequential, train_sequential

        sequential, trainer, seq = train_sequential(config, data, run_dir, resume=resume)
        return (
            sequential,
            trainer,
            lambda: (evaluate_sequential(config, data, sequential, seq, progress=True), None),
        )
    multitask, trainer = train_model(config, data, run_dir, resume=resume)
    return (
        multitask,
        trainer,
        lambda: (
            evaluate_run(config, data, multitask, progress=True),
            gate_report(config, data, multitask),
        ),
    )


def run_experiment(
    config: ExperimentConfig,
    run_dir: Path,
    settings: FetchSettings,
    console: Console | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Train and evaluate; writes the run folder and returns the results. Without
    ``resume`` the run starts afresh: logs, checkpoints and results of an earlier run in
    ``run_dir`` are removed first (``mtlrec train`` asks before it gets here)."""
    console = console or Console()
    with reporting_write_errors(run_dir, ours=True):
        run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        clear_run_outputs(run_dir)
    write_text_atomically(
        run_dir / "config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    )
    start = time.perf_counter()
    data = load_run_data(config, settings, console)
    data.timings["data_s"] = time.perf_counter() - start
    write_prepared_record(data, run_dir)
    start = time.perf_counter()
    with deterministic_kernels(config.training.deterministic):  # the head refit too
        model, trainer, evaluate = _train(config, data, run_dir, resume)
    data.timings["train_s"] = time.perf_counter() - start
    with atomic_file(run_dir / "model.pt") as handle:
        torch.save(model.state_dict(), handle)
    start = time.perf_counter()
    results, gates = evaluate()
    data.timings["evaluate_s"] = time.perf_counter() - start
    payload = {
        "name": config.name,
        "architecture": config.model.name,
        "dataset": data.dataset.manifest["dataset"]["name"],
        "tasks": {n: s.kind for n, s in trainer.specs.items()},
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs_run": trainer.state.epoch,
        "best_epoch": trainer.state.best_epoch,
        "history": trainer.state.history,
        "timings_s": {k: round(v, 3) for k, v in data.timings.items()},
        "results": results,
        "data_stats": data_statistics(data),
    }
    if gates is not None:
        payload["gate_utilisation"] = gates
    results_to_json(payload, run_dir / "results.json")
    print_results(console, results)
    return payload


RUN_OUTPUTS: tuple[str, ...] = (
    "train.jsonl",
    "tensorboard",
    "checkpoints",
    "model.pt",
    "results.json",
    "refit_heads.json",
    "fusion",
)
"""What a training run writes in its folder besides ``config.yaml`` and ``prepared.json``
(and ``fusion/``, which ``mtlrec fuse`` derives from the trained model)."""


def clear_run_outputs(run_dir: Path) -> None:
    """Remove the :data:`RUN_OUTPUTS` of an earlier run in ``run_dir`` (a fresh start
    appends to no old log and mixes no old TensorBoard file in)."""
    for name in RUN_OUTPUTS:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


PREPARED_RECORD = "prepared.json"
"""The run folder's record of the prepared dataset it was trained on."""


def write_prepared_record(data: RunData, run_dir: Path) -> None:
    """``RUN/prepared.json``: the prepared folder, its format version and the sha256 of its
    ``manifest.json`` (which records the sources' sha256, the config and the split)."""
    record = {
        "root": str(data.dataset.root),
        "format_version": data.dataset.manifest.get("format_version"),
        "manifest_sha256": data.dataset.manifest_sha256,
    }
    write_text_atomically(run_dir / PREPARED_RECORD, json.dumps(record, indent=2) + "\n")


def check_prepared_record(data: RunData, run_dir: Path, console: Console) -> None:
    """Warn when the prepared dataset a run is loaded back with is not the one it was
    trained on (its manifest changed: re-prepared, other sources or another split)."""
    path = run_dir / PREPARED_RECORD
    if not path.is_file():
        return
    recorded = json.loads(path.read_text()).get("manifest_sha256")
    if recorded != data.dataset.manifest_sha256:
        console.print(
            f"[yellow]warning:[/] {run_dir} was trained on prepared data with manifest "
            f"sha256 {str(recorded)[:12]}, now {data.dataset.manifest_sha256[:12]} "
            f"({data.dataset.root}); its split may differ"
        )


def load_config_file(run_dir: Path) -> ExperimentConfig:
    """The resolved config saved in a run folder."""
    return ExperimentConfig.model_validate(yaml.safe_load((run_dir / "config.yaml").read_text()))


def evaluate_saved_run(run_dir: Path, settings: FetchSettings, console: Console) -> dict[str, Any]:
    """Rebuild a run's model from its folder, load ``model.pt`` and evaluate it again."""
    config = load_config_file(run_dir)
    data = load_run_data(config, settings, console)
    check_prepared_record(data, run_dir, console)
    state = torch.load(run_dir / "model.pt", map_location="cpu")
    if Architecture.of(config).sequential:
        from mtlrec.pipeline.sequential import evaluate_saved_state

        results = evaluate_saved_state(config, data, state)
    else:
        model = build_run_model(config, data)
        model.load_state_dict(state)
        results = evaluate_run(config, data, model, progress=True)
    print_results(console, results)
    (run_dir / "evaluation.json").write_text(json.dumps(results, indent=2, default=str))
    return results
