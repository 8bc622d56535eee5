"""One run of ``mtlrec train``: data -> text -> model -> training -> evaluation -> run folder.

The run folder holds ``config.yaml`` (resolved), ``model.pt`` (best weights),
``results.json`` (valid/test metrics, cold-start slice, ranking), ``train.jsonl`` and
TensorBoard logs, and ``checkpoints/`` for exact resume.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from rich.console import Console

from mtlrec.config.experiment import ExperimentConfig
from mtlrec.core.types import TaskSpec
from mtlrec.data.examples import EntityData, ExampleSet, load_examples
from mtlrec.data.fetch import FetchSettings
from mtlrec.data.labels import read_tasks
from mtlrec.data.prepare import prepare
from mtlrec.data.store import PreparedDataset
from mtlrec.evaluation import print_results, results_to_json
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
from mtlrec.training.trainer import Stage, Trainer
from mtlrec.weighting import make_weighting

TEXT_TASKS: tuple[str, ...] = ("review_text",)
"""Tasks whose labels are LM embeddings: ``review_text`` is the embedding of the example's
own review (a similarity target, never an input)."""


@dataclass
class RunData:
    """Everything a model is built and evaluated on."""

    dataset: PreparedDataset
    examples: ExampleSet
    entities: EntityData
    specs: dict[str, TaskSpec]
    excluded_inputs: set[str]
    timings: dict[str, float] = field(default_factory=dict)


def prepared_dataset(config: ExperimentConfig, settings: FetchSettings) -> PreparedDataset:
    """The prepared dataset of ``config.data``, prepared once into the cache (keyed by config)."""
    key = hashlib.sha256(config.data.model_dump_json().encode()).hexdigest()[:12]
    name = config.data.dataset.name or "custom"
    root = settings.cache_dir / "prepared" / f"{name}-{key}"
    if not (root / "manifest.json").is_file():
        prepare(config.data, root, settings)
    return PreparedDataset.load(root)


def _task_specs(config: ExperimentConfig, available: dict[str, TaskSpec]) -> dict[str, TaskSpec]:
    if config.tasks is None:
        return available
    unknown = sorted(set(config.tasks) - set(available) - set(TEXT_TASKS))
    if unknown:
        raise ValueError(f"tasks {unknown} are not in the dataset; it has {sorted(available)}")
    specs = {}
    for name, task in config.tasks.items():
        if name in TEXT_TASKS:
            continue  # built from the LM with the text tables (_attach_review_target)
        base = available[name]
        specs[name] = TaskSpec(
            name, base.kind, base.n_outputs, task.loss, task.weight, level=base.level
        )
    return specs


def load_run_data(config: ExperimentConfig, settings: FetchSettings, console: Console) -> RunData:
    """Prepare (or reuse) the dataset, build examples and, if asked, the LM embedding tables."""
    dataset = prepared_dataset(config, settings)
    examples, entities, available = load_examples(dataset)
    specs = _task_specs(config, available)
    sources = {t["name"]: t.get("source_columns", []) for t in read_tasks(dataset.root)}
    excluded = {column for name in specs for column in sources.get(name, [])}
    data = RunData(dataset, examples, entities, specs, excluded)
    text = config.text
    cross = config.model.inputs.name == "cross_encoder"
    if text is not None and (text.item or text.user or text.reviews or cross):
        _attach_text(config, settings, data, console)
    return data


def _attach_text(
    config: ExperimentConfig, settings: FetchSettings, data: RunData, console: Console
) -> None:
    from mtlrec.text import EmbeddingCache, TextEncoder
    from mtlrec.text.tables import item_text_table, user_text_table

    assert config.text is not None
    text = config.text
    encoder = TextEncoder.from_pretrained(
        text.model, pooling=text.pooling, max_length=text.max_length
    )
    cache = EmbeddingCache(settings.cache_dir / "embeddings")
    tables = data.dataset.tables
    start = time.perf_counter()
    excluded_fields = {c.split(".", 1)[1] for c in data.excluded_inputs if c.startswith("items.")}
    item_table, item_texts = item_text_table(
        tables["items"], encoder, cache, excluded_fields, batch_size=text.batch_size, progress=True
    )
    if text.item:
        data.entities.add_text("items.text", item_table)
    if text.user:
        texts = dict(zip(data.entities.item_ids, item_texts, strict=True))
        data.entities.add_text(
            "users.text",
            user_text_table(
                tables["users"],
                tables["interactions"],
                texts,
                encoder,
                cache,
                batch_size=text.batch_size,
                progress=True,
            ),
        )
    if text.reviews and tables["reviews"].height:
        _attach_review_profiles(data, encoder, cache, text.batch_size)
    if "review_text" in (config.tasks or {}):
        _attach_review_target(config, data, encoder, cache, text.batch_size)
    heads = [t.head.name for t in (config.tasks or {}).values() if t.head is not None]
    if config.model.inputs.name == "cross_encoder" or "self_attention" in heads:
        _attach_token_tables(data, encoder, item_texts, text.max_length // 2)
    data.timings["text_total_s"] = time.perf_counter() - start
    data.timings["text_encode_s"] = cache.stats.encoded_seconds
    data.timings["text_cache_hits"] = float(cache.stats.hits)
    data.timings["text_encoded"] = float(cache.stats.misses)
    console.print(
        f"text: encoded {cache.stats.misses:,} texts in {cache.stats.encoded_seconds:.1f}s"
        f", {cache.stats.hits:,} from the cache"
    )


def _attach_review_target(
    config: ExperimentConfig, data: RunData, encoder: Any, cache: Any, batch_size: int
) -> None:
    """The ``review_text`` similarity task: predict the LM embedding of the example's review."""
    import polars as pl

    from mtlrec.text.templates import review_text

    if data.examples.unit != "interaction":
        raise ValueError("the review_text task needs interaction examples")
    reviews = data.dataset.tables["reviews"].filter(pl.col("has_text"))
    order = data.dataset.tables["interactions"].select("interaction_id")
    texts = order.join(reviews, on="interaction_id", how="left", maintain_order="left")
    known = texts["has_text"].fill_null(False).to_numpy()
    rows = [review_text(r) for r, k in zip(texts.iter_rows(named=True), known, strict=True) if k]
    vectors = torch.from_numpy(cache.get_or_encode(encoder, rows, batch_size=batch_size).copy())
    labels = torch.zeros(len(known), vectors.shape[1])
    labels[torch.from_numpy(known)] = vectors
    data.examples.labels["review_text"] = labels
    data.examples.masks["review_text"] = torch.from_numpy(known.copy())
    task = (config.tasks or {})["review_text"]
    data.specs["review_text"] = TaskSpec(
        "review_text", "similarity", int(vectors.shape[1]), task.loss or "infonce", task.weight
    )


def _attach_token_tables(
    data: RunData, encoder: Any, item_texts: list[str], max_tokens: int
) -> None:
    """Token tables of user profiles and item texts for the LM cross-encoder inputs."""
    from mtlrec.models.cross_encoder import token_table
    from mtlrec.text.templates import user_profile_texts

    tables = data.dataset.tables
    texts = dict(zip(data.entities.item_ids, item_texts, strict=True))
    profiles = user_profile_texts(tables["interactions"], texts, None)
    users = [profiles.get(u, "") for u in data.entities.user_ids]
    data.entities.tables["users.tokens"] = token_table(encoder.tokenizer, users, max_tokens)
    data.entities.tables["items.tokens"] = token_table(encoder.tokenizer, item_texts, max_tokens)


def _attach_review_profiles(data: RunData, encoder: Any, cache: Any, batch_size: int) -> None:
    import polars as pl

    from mtlrec.text.tables import review_profiles

    users = pl.DataFrame({"user_id": data.entities.user_ids}).with_row_index("user_row")
    reviews = data.dataset.tables["reviews"].join(users, on="user_id")
    inter = data.dataset.tables["interactions"]
    if data.examples.unit != "interaction":
        raise ValueError("review profiles need interaction examples")
    ids = inter["interaction_id"].to_numpy()
    per_example, per_user = review_profiles(
        ids,
        data.examples.features["user_row"].numpy(),
        reviews,
        encoder,
        cache,
        batch_size=batch_size,
        progress=True,
    )
    data.examples.features["review_profile"] = per_example
    data.entities.user_dense["review_profile"] = per_user


def build_model(config: ExperimentConfig, data: RunData) -> MultiTaskModel:
    """Inputs -> backbone -> heads, from the config and the run's data."""
    entities = data.entities
    n_users = int(entities.user_vocab_index.max()) + 1 if len(entities.user_ids) else 0
    n_items = int(entities.item_vocab_index.max()) + 1 if len(entities.item_ids) else 0
    schema = entities.schema(n_users, n_items, data.excluded_inputs)
    dense = {k: int(v.shape[1]) for k, v in data.examples.features.items() if v.dim() == 2}
    schema = type(schema)(
        schema.n_user_ids, schema.n_item_ids, schema.categorical, schema.numeric, schema.text, dense
    )
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
        inputs.out_dim, list(data.specs), **config.model.backbone.params
    )
    heads = {}
    for name, spec in data.specs.items():
        chosen = (config.tasks or {}).get(name)
        head = chosen.head if chosen is not None and chosen.head is not None else config.model.head
        heads[name] = HEADS.get(head.name)(backbone.out_dim(name), spec, **head.params)
    _init_heads_from_priors(
        heads, data, negative_config(config, config.training.negatives.per_positive)
    )
    head_tables = {}
    if "items.tokens" in entities.tables:  # the self-attention head reads item tokens
        head_tables["item_tokens"] = (entities.tables["items.tokens"], "item_row")
    return MultiTaskModel(inputs, backbone, heads, data.specs, head_tables)


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


def evaluate_run(
    config: ExperimentConfig,
    data: RunData,
    model: MultiTaskModel,
    splits: tuple[str, ...] = ("valid", "test"),
    ranking: bool = True,
) -> dict[str, Any]:
    """Per-task metrics (all examples and the cold-item slice) and full ranking per split."""
    negatives = negative_config(config, config.training.eval_negatives)
    device, batch = config.training.device, config.evaluation.batch_size
    results: dict[str, Any] = {}
    for split in splits:
        subset = evaluation_set(data.examples, split, data.entities, negatives)
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

    def validate(m: MultiTaskModel) -> dict[str, float]:
        # full ranking costs one pass over every (user, item): only when it is monitored
        ranked = stopping is not None and stopping.monitor.startswith("valid/ranking")
        results = evaluate_run(config, data, m, splits=("valid",), ranking=ranked)
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
    }
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
