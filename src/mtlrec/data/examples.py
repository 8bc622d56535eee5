"""From a prepared dataset to tensors: examples with labels and masks, and entity tables.

An *example* is one row a model is trained and evaluated on: an interaction (ratings,
reviews), a (user, item) pair (multi-behaviour data: one row per pair with its view /
cart / purchase labels) or a record (tabular data). Every example carries four integer
features: ``user_idx`` / ``item_idx`` (train-only id vocabularies, 0 = unseen) and
``user_row`` / ``item_row`` (the entity's row in the users / items table, cold ones
included), which index the *entity tables* of attributes and text embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
import torch
from torch import Tensor

from mtlrec.core.schema import InputSchema
from mtlrec.core.types import TaskSpec
from mtlrec.data.features import FeatureSpace
from mtlrec.data.labels import read_tasks
from mtlrec.data.store import PreparedDataset

SPLITS: tuple[str, str, str] = ("train", "valid", "test")
ExampleUnit = Literal["interaction", "pair", "user"]


@dataclass
class ExampleSet:
    """Examples as tensors. ``features[k]``, ``labels[t]``, ``masks[t]``, ``split``, ``cold_item``
    all have ``N`` rows; ``split`` holds 0/1/2 for train/valid/test."""

    unit: ExampleUnit
    features: dict[str, Tensor]
    labels: dict[str, Tensor]
    masks: dict[str, Tensor]
    split: Tensor
    cold_item: Tensor

    def __len__(self) -> int:
        return int(self.split.shape[0])

    def select(self, index: Tensor) -> ExampleSet:
        """The examples at ``index`` (bool mask or int positions)."""
        return ExampleSet(
            self.unit,
            {k: v[index] for k, v in self.features.items()},
            {k: v[index] for k, v in self.labels.items()},
            {k: v[index] for k, v in self.masks.items()},
            self.split[index],
            self.cold_item[index],
        )

    def subset(self, split: str) -> ExampleSet:
        """Examples of one split."""
        return self.select(self.split == SPLITS.index(split))


@dataclass
class EntityData:
    """Users and items of a dataset: ids in row order, attribute tables, id-vocab indices."""

    user_ids: list[str]
    item_ids: list[str]
    user_vocab_index: Tensor
    """``(N_users,)``: each user row's index in the train id vocabulary (0 = unseen)."""
    item_vocab_index: Tensor
    """``(N_items,)``: each item row's index in the train id vocabulary (0 = cold)."""
    tables: dict[str, Tensor] = field(default_factory=dict)
    categorical: dict[str, int] = field(default_factory=dict)
    numeric: list[str] = field(default_factory=list)
    text: dict[str, int] = field(default_factory=dict)
    user_dense: dict[str, Tensor] = field(default_factory=dict)
    """Per-user stand-ins ``(N_users, D)`` for per-example dense features, used when a
    (user, item) pair is not an example (scoring every item in full ranking)."""

    def schema(
        self,
        n_user_ids: int,
        n_item_ids: int,
        exclude: set[str],
        dense: dict[str, int] | None = None,
    ) -> InputSchema:
        """The input schema over every table not in ``exclude`` (e.g. label source columns),
        plus the per-example ``dense`` vectors the batches carry (name -> width)."""
        return InputSchema(
            n_user_ids=n_user_ids,
            n_item_ids=n_item_ids,
            categorical={k: v for k, v in self.categorical.items() if k not in exclude},
            numeric=tuple(k for k in self.numeric if k not in exclude),
            text={k: v for k, v in self.text.items() if k not in exclude},
            dense=dense or {},
        )

    def add_text(self, name: str, table: Tensor) -> None:
        """Add an LM embedding table ``(N_entities, D)`` as input ``name`` (``items.text``)."""
        self.tables[name] = table.float()
        self.text[name] = int(table.shape[1])


def task_specs(root_tasks: list[dict[str, Any]]) -> dict[str, TaskSpec]:
    """Task specs from the entries of ``tasks.json``."""
    specs = {}
    for task in root_tasks:
        n_outputs = len(task["classes"]) if task["kind"] in ("multiclass", "multilabel") else 1
        specs[task["name"]] = TaskSpec(task["name"], task["kind"], n_outputs, level=task["level"])
    return specs


def _encode_column(frame: pl.DataFrame, column: str, space: FeatureSpace, key: str) -> Tensor:
    series = frame[column]
    if key in space.numeric:
        return torch.from_numpy(space.numeric[key].transform(series).astype(np.float32))
    vocab = space.categorical[key]
    if isinstance(series.dtype, pl.List):  # (N, L) codes padded with 0
        lists = [values or [] for values in series.to_list()]
        width = max((len(v) for v in lists), default=1) or 1
        codes = np.zeros((frame.height, width), dtype=np.int64)
        for row, values in enumerate(lists):
            if values:
                codes[row, : len(values)] = vocab.encode(pl.Series(values, dtype=pl.String))
        return torch.from_numpy(codes)
    return torch.from_numpy(vocab.encode(series.cast(pl.String)).copy())


def entity_data(dataset: PreparedDataset, space: FeatureSpace) -> EntityData:
    """Users/items in table order with their encoded attributes (encoders fitted on train)."""
    users, items = dataset.tables["users"], dataset.tables["items"]
    data = EntityData(
        user_ids=users["user_id"].to_list(),
        item_ids=items["item_id"].to_list(),
        user_vocab_index=torch.from_numpy(space.users.encode(users["user_id"]).copy()),
        item_vocab_index=torch.from_numpy(space.items.encode(items["item_id"]).copy()),
    )
    for key in (*space.categorical, *space.numeric):
        table_name, column = key.split(".", 1)
        frame = users if table_name == "users" else items
        data.tables[key] = _encode_column(frame, column, space, key)
        if key in space.categorical:
            data.categorical[key] = len(space.categorical[key])
        else:
            data.numeric.append(key)
    return data


def _base_examples(dataset: PreparedDataset, unit: ExampleUnit) -> pl.DataFrame:
    if unit == "user":
        return dataset.tables["users"].select(
            "user_id",
            "split",
            pl.lit(None, pl.String).alias("item_id"),
            pl.lit(False).alias("cold_item"),
        )
    inter = dataset.tables["interactions"]
    if unit == "pair":
        return (
            inter.group_by("user_id", "item_id")
            .agg(
                pl.col("split").first(), pl.col("cold_item").first(), pl.col("interaction_id").min()
            )
            .sort("interaction_id")
        )
    return inter.select("interaction_id", "user_id", "item_id", "split", "cold_item")


def _label_tensor(series: pl.Series, spec: TaskSpec) -> Tensor:
    if spec.kind == "multilabel":
        out = np.zeros((len(series), spec.n_outputs), dtype=np.float32)
        lengths = series.list.len().fill_null(0).to_numpy()
        rows = np.repeat(np.arange(len(series)), lengths)
        flat = series.explode().drop_nulls().to_numpy().astype(np.int64)
        out[rows, flat] = 1.0
        return torch.from_numpy(out)
    if spec.kind == "multiclass":
        return torch.from_numpy(series.fill_null(0).to_numpy().astype(np.int64))
    return torch.from_numpy(series.fill_null(0).cast(pl.Float32).to_numpy().copy())


def build_examples(
    dataset: PreparedDataset, specs: dict[str, TaskSpec], entities: EntityData
) -> ExampleSet:
    """Join every task's labels onto the examples of the dataset's unit."""
    levels = {s.level for s in specs.values()}
    unit: ExampleUnit = (
        "user"
        if dataset.manifest["dataset"]["kind"] == "tabular"
        else "pair"
        if "pair" in levels
        else "interaction"
    )
    frame = _base_examples(dataset, unit)
    keys = {
        "interaction": ["interaction_id"],
        "item": ["item_id"],
        "pair": ["user_id", "item_id"],
        "user": ["user_id"],
    }
    for level in sorted(levels):
        level_labels = dataset.tables[f"labels_{level}"].drop("split", strict=False)
        frame = frame.join(level_labels, on=keys[level], how="left", maintain_order="left")
    user_rows = pl.DataFrame({"user_id": pl.Series(entities.user_ids, dtype=pl.String)})
    item_rows = pl.DataFrame({"item_id": pl.Series(entities.item_ids, dtype=pl.String)})
    user_rows, item_rows = (
        user_rows.with_row_index("user_row"),
        item_rows.with_row_index("item_row"),
    )
    frame = frame.join(user_rows, on="user_id", how="left", maintain_order="left").join(
        item_rows, on="item_id", how="left", maintain_order="left"
    )
    if unit != "user" and frame["item_row"].null_count():
        raise ValueError("some interactions name items missing from the items table")
    user_row = torch.from_numpy(frame["user_row"].cast(pl.Int64).to_numpy().copy())
    item_row = torch.from_numpy(frame["item_row"].fill_null(0).cast(pl.Int64).to_numpy().copy())
    features = {
        "user_row": user_row,
        "item_row": item_row,
        "user_idx": entities.user_vocab_index[user_row],
        "item_idx": (
            entities.item_vocab_index[item_row] if unit != "user" else torch.zeros_like(item_row)
        ),
    }
    labels, masks = {}, {}
    for name, spec in specs.items():
        labels[name] = _label_tensor(frame[name], spec)
        masks[name] = torch.from_numpy(frame[f"{name}_mask"].fill_null(False).to_numpy().copy())
    split = torch.from_numpy(
        frame["split"]
        .replace_strict({s: i for i, s in enumerate(SPLITS)}, return_dtype=pl.Int8)
        .to_numpy()
        .copy()
    )
    cold = torch.from_numpy(frame["cold_item"].fill_null(False).to_numpy().copy())
    return ExampleSet(unit, features, labels, masks, split, cold)


def load_examples(dataset: PreparedDataset) -> tuple[ExampleSet, EntityData, dict[str, TaskSpec]]:
    """Examples, entities and task specs of a prepared dataset (without text embeddings)."""
    specs = task_specs(read_tasks(dataset.root))
    space = FeatureSpace.load(dataset.root / "features.json")
    entities = entity_data(dataset, space)
    return build_examples(dataset, specs, entities), entities, specs
