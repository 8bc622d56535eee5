"""One run of ``mtlrec train``: data -> text -> model -> training -> evaluation -> run folder.

The run folder holds ``config.yaml`` (resolved), ``model.pt`` (best weights),
``results.json`` (valid/test metrics, cold-start slice, ranking, dataset statistics and, for
MMoE/PLE, the gate utilisation on the test split), ``train.jsonl`` and TensorBoard logs, and
``checkpoints/`` for exact resume.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import torch
import yaml
from rich.console import Console

from mtlrec.config.experiment import ExperimentConfig
from mtlrec.core.types import TaskSpec
from mtlrec.data.examples import SPLITS, EntityData, ExampleSet
from mtlrec.data.fetch import FetchSettings
from mtlrec.evaluation import print_results, results_to_json
from mtlrec.evaluation.gates import feature_batches, gate_utilisation
from mtlrec.models.backbones import BACKBONES
from mtlrec.models.heads import HEADS, Head
from mtlrec.models.inputs import INPUTS
from mtlrec.models.multitask import MultiTaskModel
from mtlrec.training.callbacks import (
    Callback,
    EarlyStopping,
    JsonlLogger,
    ProgressBar,
    TensorBoardLogger,
)
from mtlrec.training.evaluate import evaluation_set, flatten, ranking_metrics, task_metrics
from mtlrec.training.loader import ExampleLoader, NegativeConfig
from mtlrec.training.run_data import RunData, load_run_data
from mtlrec.training.trainer import Stage, Trainer
from mtlrec.weighting import make_weighting


def build_model(config: ExperimentConfig, data: RunData) -> MultiTaskModel:
    """Inputs -> backbone -> heads, from the config and the run's data (output biases at the
    training label priors, see :func:`_init_heads_from_priors`)."""
    dense = {k: int(v.shape[1]) for k, v in data.examples.features.items() if v.dim() == 2}
    model = assemble_model(config, data.entities, data.specs, data.excluded_inputs, dense)
    heads = {name: cast(Head, head) for name, head in model.heads.items()}
    _init_heads_from_priors(
        heads, data, negative_config(config, config.training.negatives.per_positive)
    )
    return model


def assemble_model(
    config: ExperimentConfig,
    entities: EntityData,
    specs: Mapping[str, TaskSpec],
    excluded_inputs: set[str],
    dense: Mapping[str, int],
) -> MultiTaskModel:
    """The untrained model of ``config`` over ``entities`` (their tables become buffers).

    ``specs``: the tasks; ``excluded_inputs``: label source columns never used as inputs;
    ``dense``: the per-example vectors the batches carry (name -> width, e.g.
    ``history_profile`` ``(B, 384)``). Needs no examples, so a saved artifact can rebuild the
    model without the dataset (:mod:`mtlrec.export.artifact`).
    """
    n_users = int(entities.user_vocab_index.max()) + 1 if len(entities.user_ids) else 0
    n_items = int(entities.item_vocab_index.max()) + 1 if len(entities.item_ids) else 0
    schema = entities.schema(n_users, n_items, excluded_inputs, dict(dense))
    inputs_cls = INPUTS.get(config.model.inputs.name)
    params = dict(config.model.inputs.params)
    if config.model.inputs.name == "cross_encoder" and config.text is not None:
        text = config.text  # the LM and its fine-tuning mode come from the text section
        params = {
            "model": text.model,
            "mode": text.mode,
            "top_k": text.top_k,
            "lora_r": text.lora_r,
            **params,
        }
    inputs = inputs_cls(schema, entities.tables, **params)
    backbone = BACKBONES.get(config.model.backbone.name)(
        inputs.out_dim, list(specs), **config.model.backbone.params
    )
    heads = {}
    for name, spec in specs.items():
        chosen = (config.tasks or {}).get(name)
        head = chosen.head if chosen is not None and chosen.head is not None else config.model.head
        heads[name] = HEADS.get(head.name)(backbone.out_dim(name), spec, **head.params)
    head_tables = {}
    if "items.tokens" in entities.tables:  # the self-attention head reads item tokens
        head_tables["item_tokens"] = (entities.tables["items.tokens"], "item_row")
    return MultiTaskModel(inputs, backbone, heads, specs, head_tables)


def _init_heads_from_priors(
    heads: dict[str, Head], data: RunData, negatives: NegativeConfig | None
) -> None:
    """Output biases start at the training label mean (regression) or its logit (binary),
    counting the sampled negatives a task is trained on."""
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


def negative_config(config: ExperimentConfig, per_positive: int) -> NegativeConfig | None:
    """Sampled negatives for tasks with a ``negative_label`` (None when there are none)."""
    labels = {
        n: t.negative_label for n, t in (config.tasks or {}).items() if t.negative_label is not None
    }
    if not labels or not per_positive:
        return None
    return NegativeConfig(per_positive, config.training.negatives.strategy, labels)


def evaluation_sets(
    config: ExperimentConfig, data: RunData, splits: tuple[str, ...]
) -> dict[str, ExampleSet]:
    """Examples of each split plus their fixed sampled negatives for implicit tasks."""
    negatives = negative_config(config, config.training.eval_negatives)
    return {s: evaluation_set(data.examples, s, data.entities, negatives) for s in splits}


def evaluate_run(
    config: ExperimentConfig,
    data: RunData,
    model: MultiTaskModel,
    splits: tuple[str, ...] = ("valid", "test"),
    ranking: bool = True,
    sets: Mapping[str, ExampleSet] | None = None,
) -> dict[str, Any]:
    """Per-task metrics (all examples and the cold-item slice) and full ranking per split.

    ``sets`` may hold the evaluation sets already built by :func:`evaluation_sets` (the
    validation set is evaluated every epoch; its fixed negatives are drawn once).
    """
    sets = sets if sets is not None else evaluation_sets(config, data, splits)
    device, batch = config.training.device, config.evaluation.batch_size
    results: dict[str, Any] = {}
    for split in splits:
        subset = sets[split]
        rows: dict[str, dict[str, float]] = task_metrics(model, subset, data.specs, batch, device)
        cold = subset.select(subset.cold_item)
        if len(cold):
            rows.update(
                {
                    f"{t} (cold items)": m
                    for t, m in task_metrics(model, cold, data.specs, batch, device).items()
                }
            )
        if ranking and config.evaluation.ranking_task is not None:
            slices = ranking_metrics(
                model,
                data.examples,
                data.entities,
                config.evaluation.ranking_task,
                split,
                config.evaluation.ks,
                device=device,
            )
            rows.update({f"ranking ({name})": values for name, values in slices.items()})
        results[split] = rows
    return results


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


def train_model(
    config: ExperimentConfig,
    data: RunData,
    run_dir: Path,
    resume: bool = False,
    progress: bool = True,
) -> tuple[MultiTaskModel, Trainer]:
    """Build and train a model on the run's data; returns it with its best weights."""
    torch.manual_seed(config.seed)
    model = build_model(config, data)
    train_cfg = config.training
    weighting = make_weighting(config.weighting.name, list(data.specs), **config.weighting.params)
    if config.weighting.name == "static" and "lambdas" not in config.weighting.params:
        weighting = make_weighting(
            "static", list(data.specs), lambdas={n: s.weight for n, s in data.specs.items()}
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
    callbacks: list[Callback] = [
        JsonlLogger(run_dir / "train.jsonl", every=1),
        TensorBoardLogger(run_dir / "tensorboard", every=1),
    ]
    if progress:
        callbacks.append(ProgressBar())
    stopping = train_cfg.early_stopping
    if stopping is not None:
        callbacks.append(EarlyStopping(stopping.monitor, stopping.mode, stopping.patience))

    valid_set = evaluation_sets(config, data, ("valid",))

    def validate(m: MultiTaskModel) -> dict[str, float]:
        # full ranking costs one pass over every (user, item): only when it is monitored
        ranked = stopping is not None and stopping.monitor.startswith("valid/ranking")
        results = evaluate_run(config, data, m, ("valid",), ranked, valid_set)
        return flatten(results["valid"], "valid")

    trainer = Trainer(
        model,
        data.specs,
        weighting,
        optimizer=train_cfg.optimizer,
        lr=train_cfg.lr,
        weight_decay=train_cfg.weight_decay,
        momentum=train_cfg.momentum,
        schedule=train_cfg.schedule,
        warmup_steps=train_cfg.warmup_steps,
        max_epochs=train_cfg.epochs,
        stages=[Stage(s.epochs, tuple(s.tasks) if s.tasks else None) for s in train_cfg.stages],
        grad_clip=train_cfg.grad_clip,
        accumulate=train_cfg.accumulate,
        precision=train_cfg.precision,
        device=train_cfg.device,
        seed=config.seed,
        monitor=stopping.monitor if stopping else None,
        mode=stopping.mode if stopping else "max",
        checkpoint_dir=run_dir / "checkpoints",
        callbacks=callbacks,
    )
    last = run_dir / "checkpoints" / "last.pt"
    trainer.fit(loader, validate, resume_from=last if resume and last.exists() else None)
    return model, trainer


def run_experiment(
    config: ExperimentConfig,
    run_dir: Path,
    settings: FetchSettings,
    console: Console | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Train and evaluate; writes the run folder and returns the results."""
    console = console or Console()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    )
    start = time.perf_counter()
    data = load_run_data(config, settings, console)
    data.timings["data_s"] = time.perf_counter() - start
    start = time.perf_counter()
    model, trainer = train_model(config, data, run_dir, resume=resume)
    data.timings["train_s"] = time.perf_counter() - start
    torch.save(model.state_dict(), run_dir / "model.pt")
    start = time.perf_counter()
    results = evaluate_run(config, data, model)
    gates = gate_report(config, data, model)
    data.timings["evaluate_s"] = time.perf_counter() - start
    payload = {
        "name": config.name,
        "dataset": data.dataset.manifest["dataset"]["name"],
        "tasks": {n: s.kind for n, s in data.specs.items()},
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


def load_config_file(run_dir: Path) -> ExperimentConfig:
    """The resolved config saved in a run folder."""
    return ExperimentConfig.model_validate(yaml.safe_load((run_dir / "config.yaml").read_text()))


def evaluate_saved_run(run_dir: Path, settings: FetchSettings, console: Console) -> dict[str, Any]:
    """Rebuild a run's model from its folder, load ``model.pt`` and evaluate it again."""
    config = load_config_file(run_dir)
    data = load_run_data(config, settings, console)
    model = build_model(config, data)
    model.load_state_dict(torch.load(run_dir / "model.pt", map_location="cpu"))
    results = evaluate_run(config, data, model)
    print_results(console, results)
    (run_dir / "evaluation.json").write_text(json.dumps(results, indent=2, default=str))
    return results
