"""What rebuilds a run's model and its ranking data without the dataset.

A model of ``mtlrec train`` is assembled from the config plus the run's *entities* (user
and item ids in row order, train-only id vocabulary indices, attribute / LM embedding /
token tables, per-user stand-ins for per-example vectors), its task specs, the label source
columns kept out of the inputs and the widths of the per-example vectors. These files hold
them (tensors in safetensors, the rest in JSON; no pickle):

- ``entities.safetensors``  ``vocab/user`` ``(N_users,)``, ``vocab/item`` ``(N_items,)``,
  ``table/<name>`` (each entity table), ``user_dense/<name>`` ``(N_users, D)``;
- ``model.json``            tasks, input kinds (categorical sizes, numeric, text widths),
  per-example vector widths, excluded inputs, example unit;
- ``vocabularies.json``     ``user_ids`` / ``item_ids``: the dataset's ids in row order;
- ``interactions.npz``      ``user_row``, ``item_row``, ``split`` (0/1/2), ``cold_item`` of
  every interaction example (what was seen in which split: exclusions, popularity).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtlrec.core.types import TaskSpec
from mtlrec.data.examples import EntityData, ExampleSet, ExampleUnit

ENTITY_TENSORS = "entities.safetensors"
MODEL_JSON = "model.json"
VOCABULARIES = "vocabularies.json"
INTERACTIONS = "interactions.npz"


@dataclass
class ModelParts:
    """Everything :func:`mtlrec.models.factory.build_model` needs besides the config."""

    entities: EntityData
    specs: dict[str, TaskSpec]
    excluded_inputs: set[str]
    dense: dict[str, int]
    """Per-example vectors the batches carry: name -> width (``history_profile`` -> 384)."""
    unit: ExampleUnit


def save_parts(parts: ModelParts, folder: Path) -> list[str]:
    """Write ``entities.safetensors``, ``model.json`` and ``vocabularies.json`` into
    ``folder``; returns the file names."""
    from safetensors.torch import save_file

    entities = parts.entities
    tensors = {
        "vocab/user": entities.user_vocab_index,
        "vocab/item": entities.item_vocab_index,
        **{f"table/{name}": table for name, table in entities.tables.items()},
        **{f"user_dense/{name}": table for name, table in entities.user_dense.items()},
    }
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, folder / ENTITY_TENSORS
    )
    description = {
        "unit": parts.unit,
        "tasks": [asdict(spec) for spec in parts.specs.values()],
        "categorical": entities.categorical,
        "numeric": entities.numeric,
        "text": entities.text,
        "dense": parts.dense,
        "excluded_inputs": sorted(parts.excluded_inputs),
    }
    (folder / MODEL_JSON).write_text(json.dumps(description, indent=1) + "\n", "utf-8")
    ids = {"user_ids": entities.user_ids, "item_ids": entities.item_ids}
    (folder / VOCABULARIES).write_text(json.dumps(ids, ensure_ascii=False) + "\n", "utf-8")
    return [ENTITY_TENSORS, MODEL_JSON, VOCABULARIES]


def _spec(entry: dict[str, Any]) -> TaskSpec:
    weights = entry.get("class_weights")
    return TaskSpec(**{**entry, "class_weights": None if weights is None else tuple(weights)})


def load_parts(folder: Path) -> ModelParts:
    """Read what :func:`save_parts` wrote."""
    from safetensors.torch import load_file

    tensors = load_file(folder / ENTITY_TENSORS)
    description = json.loads((folder / MODEL_JSON).read_text("utf-8"))
    ids = json.loads((folder / VOCABULARIES).read_text("utf-8"))

    def group(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    entities = EntityData(
        user_ids=list(ids["user_ids"]),
        item_ids=list(ids["item_ids"]),
        user_vocab_index=tensors["vocab/user"],
        item_vocab_index=tensors["vocab/item"],
        tables=group("table/"),
        categorical={k: int(v) for k, v in description["categorical"].items()},
        numeric=list(description["numeric"]),
        text={k: int(v) for k, v in description["text"].items()},
        user_dense=group("user_dense/"),
    )
    specs = {entry["name"]: _spec(entry) for entry in description["tasks"]}
    return ModelParts(
        entities,
        specs,
        set(description["excluded_inputs"]),
        {k: int(v) for k, v in description["dense"].items()},
        description["unit"],
    )


def save_interactions(examples: ExampleSet, path: Path) -> None:
    """The (user row, item row, split, cold) of every example ``(N,)`` as one ``.npz``."""
    with path.open("wb") as handle:
        np.savez(
            handle,
            user_row=examples.features["user_row"].numpy().astype(np.int64),
            item_row=examples.features["item_row"].numpy().astype(np.int64),
            split=examples.split.numpy().astype(np.int8),
            cold_item=examples.cold_item.numpy().astype(bool),
        )


def load_interactions(path: Path, unit: ExampleUnit) -> ExampleSet:
    """An :class:`ExampleSet` of the saved rows (features ``user_row`` / ``item_row`` only,
    no labels): enough for :func:`mtlrec.evaluation.protocol.ranking_data`."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: np.array(data[key]) for key in data.files}
    features = {
        "user_row": torch.from_numpy(arrays["user_row"]),
        "item_row": torch.from_numpy(arrays["item_row"]),
    }
    return ExampleSet(
        unit,
        features,
        {},
        {},
        torch.from_numpy(arrays["split"]),
        torch.from_numpy(arrays["cold_item"]),
    )
