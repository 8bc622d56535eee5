"""The data of one run: the prepared dataset, examples, entities, task specs and LM tables.

``load_run_data`` prepares the dataset once (:func:`mtlrec.data.cache.cached_prepare`:
keyed by the data config, the data-format version and the source files' sha256), builds
the examples and entity tables and, when the config asks for it, the LM inputs: item and
user text embeddings, per-example review profiles (the user's other training reviews), token tables
for the cross-encoder or the self-attention head, and the ``review_text`` similarity target.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import torch
from rich.console import Console

from mtlrec.config.experiment import ExperimentConfig
from mtlrec.core.registry import Registry
from mtlrec.core.types import TaskSpec
from mtlrec.data.cache import cached_prepare
from mtlrec.data.examples import EntityData, ExampleSet, load_examples
from mtlrec.data.fetch import FetchSettings
from mtlrec.data.labels import read_tasks
from mtlrec.data.store import PreparedDataset
from mtlrec.models.architectures import Architecture
from mtlrec.models.heads import HEADS
from mtlrec.models.inputs import INPUTS

if TYPE_CHECKING:
    from mtlrec.text.tuning import TunedEncoder

LMTargetBuilder = Callable[["ExperimentConfig", "RunData", Any, Any, int], None]
"""``build(config, data, encoder, cache, batch_size)``: adds an LM-made task's labels, masks
and :class:`TaskSpec` to ``data``."""

LM_TASKS: Registry[LMTargetBuilder] = Registry("LM task")
"""Tasks whose labels the language model makes (not the prepared dataset), by name."""


@dataclass
class RunData:
    """Everything a model is built and evaluated on."""

    dataset: PreparedDataset
    examples: ExampleSet
    entities: EntityData
    specs: dict[str, TaskSpec]
    excluded_inputs: set[str]
    timings: dict[str, float] = field(default_factory=dict)


def _task_specs(config: ExperimentConfig, available: dict[str, TaskSpec]) -> dict[str, TaskSpec]:
    if config.tasks is None:
        return available
    made = Architecture.of(config).made_tasks()
    unknown = sorted(set(config.tasks) - set(available) - set(LM_TASKS) - made)
    if unknown:
        raise ValueError(f"tasks {unknown} are not in the dataset; it has {sorted(available)}")
    specs = {}
    for name, task in config.tasks.items():
        if name in LM_TASKS or name in made:
            continue  # built from the LM (see LM_TASKS) or by the model itself
        base = available[name]
        specs[name] = TaskSpec(
            name, base.kind, base.n_outputs, task.loss, task.weight, level=base.level
        )
    return specs


def load_run_data(config: ExperimentConfig, settings: FetchSettings, console: Console) -> RunData:
    """Prepare (or reuse) the dataset, build examples and, if asked, the LM embedding tables."""
    dataset = cached_prepare(config.data, settings)
    examples, entities, available = load_examples(dataset)
    specs = _task_specs(config, available)
    sources = {t["name"]: t.get("source_columns", []) for t in read_tasks(dataset.root)}
    excluded = {column for name in specs for column in sources.get(name, [])}
    data = RunData(dataset, examples, entities, specs, excluded)
    text = config.text
    reviews = Architecture.of(config).needs_review_text()
    if text is not None and (
        text.item or text.user or text.reviews or reviews or needs_tokens(config)
    ):
        _attach_text(config, settings, data, console)
    return data


def needs_tokens(config: ExperimentConfig) -> bool:
    """Whether a component of ``config`` (the input encoder or a head) declares that it reads
    the LM token tables of users and items."""
    heads = [config.model.head, *(t.head for t in (config.tasks or {}).values() if t.head)]
    return INPUTS.get(config.model.inputs.name).needs_tokens or any(
        HEADS.get(h.name).needs_tokens for h in heads
    )


def _attach_text(
    config: ExperimentConfig, settings: FetchSettings, data: RunData, console: Console
) -> None:
    from mtlrec.text import EmbeddingCache, TextEncoder
    from mtlrec.text.tables import item_text_table

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
        _attach_history_profiles(data, item_table)
    if text.reviews and tables["reviews"].height:
        _attach_review_profiles(data, encoder, cache, text.batch_size)
    if Architecture.of(config).needs_review_text():
        _attach_own_review_text(config, data, encoder, cache, console)
    for task in config.tasks or {}:
        if task in LM_TASKS:
            LM_TASKS.get(task)(config, data, encoder, cache, text.batch_size)
    if needs_tokens(config):
        _attach_token_tables(data, encoder, item_texts, text.max_length // 2)
    data.timings["text_total_s"] = time.perf_counter() - start
    data.timings["text_encode_s"] = cache.stats.encoded_seconds
    data.timings["text_cache_hits"] = float(cache.stats.hits)
    data.timings["text_encoded"] = float(cache.stats.misses)
    console.print(
        f"text: encoded {cache.stats.misses:,} texts in {cache.stats.encoded_seconds:.1f}s"
        f", {cache.stats.hits:,} from the cache"
    )


def _attach_history_profiles(data: RunData, item_table: torch.Tensor) -> None:
    """The user's training-history profile per example, the example's own item left out."""
    from mtlrec.text.tables import history_profiles

    examples = data.examples
    train = examples.split == 0
    history = examples.select(train)
    per_example, per_user = history_profiles(
        examples.features["user_row"],
        examples.features["item_row"],
        train,
        history.features["user_row"],
        history.features["item_row"],
        item_table,
    )
    examples.features["history_profile"] = per_example
    data.entities.user_dense["history_profile"] = per_user


def own_review_texts(data: RunData) -> tuple[list[str], np.ndarray]:
    """The review text of every interaction example that has one (in example order) and
    which examples have one ``(N,)`` bool."""
    from mtlrec.text.templates import review_text

    if data.examples.unit != "interaction":
        raise ValueError("review embeddings need interaction examples")
    reviews = data.dataset.tables["reviews"].filter(pl.col("has_text"))
    order = data.dataset.tables["interactions"].select("interaction_id")
    texts = order.join(reviews, on="interaction_id", how="left", maintain_order="left")
    known = texts["has_text"].fill_null(False).to_numpy()
    rows = [review_text(r) for r, k in zip(texts.iter_rows(named=True), known, strict=True) if k]
    return rows, known


def own_review_embeddings(
    data: RunData, encoder: Any, cache: Any, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each interaction example's own review as an LM embedding ``(N, D)`` (zero where the
    review has no text) and whether it has one ``(N,)``."""
    rows, known = own_review_texts(data)
    vectors = torch.from_numpy(cache.get_or_encode(encoder, rows, batch_size=batch_size).copy())
    out = torch.zeros(len(known), vectors.shape[1] if len(rows) else 1)
    out[torch.from_numpy(known)] = vectors
    return out, torch.from_numpy(known.copy())


def _attach_own_review_text(
    config: ExperimentConfig,
    data: RunData,
    encoder: Any,
    cache: Any,
    console: Console,
) -> None:
    """``own_review`` ``(N, D)``: the example's own review, for the architecture's review
    tasks only (a sequential model's sentiment head); never an input of another task.

    With ``text.tune_reviews`` it is encoded by the LM fine-tuned on that task's training
    labels (:class:`mtlrec.text.tuning.TunedEncoder`, cached), and ``review_content`` keeps
    the frozen embeddings: what the items' review content sums (topic, not sentiment)."""
    assert config.text is not None
    text = config.text
    frozen, _ = own_review_embeddings(data, encoder, cache, text.batch_size)
    if text.tune_reviews is None:
        data.examples.features["own_review"] = frozen
        return
    tuned = tuned_review_encoder(config, data, encoder, console)
    vectors, _ = own_review_embeddings(data, tuned, cache, text.batch_size)
    data.examples.features["own_review"] = vectors
    data.examples.features["review_content"] = frozen
    if tuned.result is not None:
        data.timings["review_tuning_s"] = tuned.result.seconds
        console.print(
            f"text: LM tuned on {text.tune_reviews.task} in {tuned.result.seconds:.0f}s, "
            f"best epoch {tuned.result.best_epoch} (valid macro-F1 "
            f"{max(tuned.result.valid_macro_f1):.4f})"
        )


def tuned_review_encoder(
    config: ExperimentConfig, data: RunData, encoder: Any, console: Console
) -> TunedEncoder:
    """The LM fine-tuned on ``text.tune_reviews.task`` from the training reviews that have
    a label (epoch chosen on the validation ones), tuned only if the cache lacks its
    vectors (its id names the base LM, the settings and a digest of the prepared data)."""
    from mtlrec.text import TextEncoder
    from mtlrec.text.tuning import TunedEncoder

    assert config.text is not None and config.text.tune_reviews is not None
    text, tuning = config.text, config.text.tune_reviews
    task = tuning.task
    if task not in data.examples.labels or data.specs[task].kind != "multiclass":
        raise ValueError(
            f"text.tune_reviews.task {task!r} must be a multiclass task of the run "
            f"(its tasks: {sorted(data.specs)})"
        )
    rows, known = own_review_texts(data)
    position = np.full(len(known), -1, dtype=np.int64)
    position[known] = np.arange(len(rows))
    labels = data.examples.labels[task].numpy()
    labelled = data.examples.masks[task].numpy() & known
    split = data.examples.split.numpy()

    def part(at: int) -> tuple[list[str], np.ndarray]:
        keep = np.flatnonzero(labelled & (split == at))
        return [rows[position[i]] for i in keep], labels[keep].astype(np.int64)

    manifest = json.dumps(data.dataset.manifest, sort_keys=True, default=str)
    return TunedEncoder(
        lambda: TextEncoder.from_pretrained(
            text.model, pooling=text.pooling, max_length=tuning.max_length
        ),
        encoder.model_id,
        encoder.dim,
        tuning,
        hashlib.sha256(manifest.encode()).hexdigest(),
        part(0),
        part(1),
        data.specs[task].n_outputs,
        seed=tuning.seed,
        log=console.print,
    )


@LM_TASKS.register("review_text")
def _attach_review_target(
    config: ExperimentConfig, data: RunData, encoder: Any, cache: Any, batch_size: int
) -> None:
    """The ``review_text`` similarity task: predict the LM embedding of the example's review."""
    labels, known = own_review_embeddings(data, encoder, cache, batch_size)
    data.examples.labels["review_text"] = labels
    data.examples.masks["review_text"] = known
    task = (config.tasks or {})["review_text"]
    data.specs["review_text"] = TaskSpec(
        "review_text", "similarity", int(labels.shape[1]), task.loss or "infonce", task.weight
    )


def _attach_token_tables(
    data: RunData, encoder: Any, item_texts: list[str], max_tokens: int
) -> None:
    """Token tables of user profiles and item texts for the LM cross-encoder inputs.

    ``users.tokens`` ``(N_users, L)`` holds each user's profile of recent training items
    (what ranking and serving read); ``users.tokens_left_out`` ``(P, L)`` the profiles with
    one item left out, and the per-example feature ``user_tokens_row`` ``(N,)`` points a
    training example whose item is in its user's profile to the profile without that item
    (-1: the plain profile), so a training positive never sees its own item.
    """
    from mtlrec.models.cross_encoder import token_table
    from mtlrec.text.templates import leave_one_out_profile_texts, user_profile_texts

    tables = data.dataset.tables
    texts = dict(zip(data.entities.item_ids, item_texts, strict=True))
    profiles = user_profile_texts(tables["interactions"], texts, None)
    users = [profiles.get(u, "") for u in data.entities.user_ids]
    data.entities.tables["users.tokens"] = token_table(encoder.tokenizer, users, max_tokens)
    data.entities.tables["items.tokens"] = token_table(encoder.tokenizer, item_texts, max_tokens)
    left_out = leave_one_out_profile_texts(tables["interactions"], texts)
    keys = list(left_out)
    data.entities.tables["users.tokens_left_out"] = token_table(
        encoder.tokenizer, [left_out[k] for k in keys] or [""], max_tokens
    )
    position = {key: row for row, key in enumerate(keys)}
    user_rows = data.examples.features["user_row"].tolist()
    item_rows = data.examples.features["item_row"].tolist()
    train = (data.examples.split == 0).tolist()
    user_ids, item_ids = data.entities.user_ids, data.entities.item_ids
    data.examples.features["user_tokens_row"] = torch.tensor(
        [
            position.get((user_ids[u], item_ids[i]), -1) if is_train else -1
            for u, i, is_train in zip(user_rows, item_rows, train, strict=True)
        ],
        dtype=torch.int64,
    )


def _attach_review_profiles(data: RunData, encoder: Any, cache: Any, batch_size: int) -> None:

    from mtlrec.text.tables import review_profiles

    users = pl.DataFrame({"user_id": data.entities.user_ids}).with_row_index("user_row")
    reviews = data.dataset.tables["reviews"].join(users, on="user_id")
    inter = data.dataset.tables["interactions"]
    if data.examples.unit != "interaction":
        raise ValueError("review profiles need interaction examples")
    ids = inter["interaction_id"].to_numpy()  # interaction examples keep the table's order
    if len(ids) != len(data.examples):
        raise ValueError("review profiles need one example per interaction, in table order")
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
