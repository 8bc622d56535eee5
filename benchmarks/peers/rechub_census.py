"""torch-rechub's SharedBottom, MMoE and PLE on census-income, with mtlrec's features and split.

The data is mtlrec's own: ``configs/census.yaml`` is prepared (or reused from the cache)
and loaded by ``mtlrec.pipeline.run_data.load_run_data``, so torch-rechub sees the same
rows in the same train / valid / test split, the same inputs (every categorical column as
a ``SparseFeature`` with the preset's embedding size over the train-fitted vocabulary,
every numeric column standardised on train as a 1-wide ``DenseFeature``; the label source
columns left out exactly as mtlrec leaves them out) and the same labels (``income``,
``never_married``). Training follows the preset: batch size, learning rate, weight decay,
epochs, early stopping on validation income AUC with its patience (AdamW, constant
learning rate: torch-rechub's ``MTLTrainer`` has no warm-up/cosine schedule per step).

Per model (:func:`run_model`): test AUC of both tasks, parameters, training samples/s (the
trainer's own epochs with its ``DataGenerator`` loader, validation passes not counted) and
inference samples/s (the model's forward over test batches of the training batch size, no
loader). ``ARCHITECTURES`` gives each backbone's mtlrec ``model.backbone`` beside the
torch-rechub arguments of the same shape. ``census.py`` runs both frameworks with these
pieces, side by side:

    .venv-bench/bin/python benchmarks/peers/census.py --seeds 0 1 2 --threads 1
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from mtlrec.config.experiment import ExperimentConfig
from mtlrec.pipeline.run_data import RunData

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "census.yaml"
TASKS: tuple[str, ...] = ("income", "never_married")
"""Task order of torch-rechub's ``ys[:, i]`` columns and of its predictions."""
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "SharedBottom": {
        "mtlrec": {
            "name": "shared_bottom",
            "params": {"shared": [128, 64], "tower": [32], "dropout": 0.0},
        },
        "rechub": {"bottom_params": {"dims": [128, 64]}, "tower": [32]},
    },
    "MMoE": {
        "mtlrec": {
            "name": "mmoe",
            "params": {"n_experts": 8, "expert": [64], "tower": [32], "dropout": 0.0},
        },
        "rechub": {"n_expert": 8, "expert_params": {"dims": [64]}, "tower": [32]},
    },
    "PLE": {
        "mtlrec": {
            "name": "ple",
            "params": {
                "levels": 2,
                "task_experts": 1,
                "shared_experts": 2,
                "expert": [64],
                "tower": [32],
                "dropout": 0.0,
            },
        },
        "rechub": {
            "n_level": 2,
            "n_expert_specific": 1,
            "n_expert_shared": 2,
            "expert_params": {"dims": [64]},
            "tower": [32],
        },
    },
}


@dataclass
class CensusTensors:
    """Inputs ``x[split][name]`` ``(N,)`` (codes int64, numeric float32) and labels
    ``y[split]`` ``(N, len(TASKS))`` of each split, with the torch-rechub features."""

    x: dict[str, dict[str, torch.Tensor]]
    y: dict[str, torch.Tensor]
    features: list[Any]


def census_tensors(data: RunData, embedding_dim: int) -> CensusTensors:
    """mtlrec's census examples as torch-rechub inputs (feature names drop ``users.``)."""
    from torch_rechub.basic.features import DenseFeature, SparseFeature

    entities, examples = data.entities, data.examples
    rows = examples.features["user_row"]
    columns: dict[str, torch.Tensor] = {}
    features: list[Any] = []
    for key, size in entities.categorical.items():
        if key in data.excluded_inputs:
            continue
        name = key.split(".", 1)[1]
        if entities.tables[key].ndim != 1:
            raise ValueError(f"{key} is list-valued; census columns are single-valued")
        columns[name] = entities.tables[key][rows].long()
        features.append(SparseFeature(name, vocab_size=size, embed_dim=embedding_dim))
    for key in entities.numeric:
        if key in data.excluded_inputs:
            continue
        name = key.split(".", 1)[1]
        columns[name] = entities.tables[key][rows].float()
        features.append(DenseFeature(name))
    for task in TASKS:
        if not bool(examples.masks[task].all()):
            raise ValueError(f"census task {task!r} has unlabelled rows")
    labels = torch.stack([examples.labels[t].float() for t in TASKS], dim=1)
    x, y = {}, {}
    for at, split in enumerate(("train", "valid", "test")):
        keep = examples.split == at
        x[split] = {name: values[keep] for name, values in columns.items()}
        y[split] = labels[keep]
    return CensusTensors(x, y, features)


def build_rechub_model(name: str, features: list[Any]) -> nn.Module:
    """The torch-rechub model ``name`` of :data:`ARCHITECTURES` (towers end in one logit)."""
    from torch_rechub.models.multi_task import MMOE, PLE, SharedBottom

    spec = ARCHITECTURES[name]["rechub"]
    kinds = ["classification"] * len(TASKS)
    towers = [{"dims": spec["tower"]} for _ in TASKS]
    model: nn.Module
    if name == "SharedBottom":
        model = SharedBottom(features, kinds, spec["bottom_params"], towers)
    elif name == "MMoE":
        model = MMOE(features, kinds, spec["n_expert"], spec["expert_params"], towers)
    else:
        model = PLE(
            features,
            kinds,
            spec["n_level"],
            spec["n_expert_specific"],
            spec["n_expert_shared"],
            spec["expert_params"],
            towers,
        )
    return model


@torch.no_grad()
def predict(model: nn.Module, x: dict[str, torch.Tensor], batch_size: int) -> torch.Tensor:
    """Probabilities ``(N, len(TASKS))`` by the model's forward over slices of ``x``."""
    model.eval()
    n = next(iter(x.values())).shape[0]
    out = [
        model({k: v[start : start + batch_size] for k, v in x.items()})
        for start in range(0, n, batch_size)
    ]
    return torch.cat(out)


def run_model(
    name: str, tensors: CensusTensors, config: ExperimentConfig, seed: int, epochs: int
) -> dict[str, Any]:
    from torch_rechub.trainers import MTLTrainer
    from torch_rechub.utils.data import DataGenerator

    torch.manual_seed(seed)
    np.random.seed(seed)
    training = config.training
    model = build_rechub_model(name, tensors.features)
    batch = training.batch_size
    loaders = DataGenerator(tensors.x["train"], tensors.y["train"]).generate_dataloader(
        x_val=tensors.x["valid"],
        y_val=tensors.y["valid"],
        x_test=tensors.x["test"],
        y_test=tensors.y["test"],
        batch_size=batch,
    )
    patience = training.early_stopping.patience if training.early_stopping else epochs
    with tempfile.TemporaryDirectory() as tmp:
        trainer = MTLTrainer(
            model,
            ["classification"] * len(TASKS),
            optimizer_fn=torch.optim.AdamW,
            optimizer_params={"lr": training.lr, "weight_decay": training.weight_decay},
            n_epoch=epochs,
            earlystop_taskid=TASKS.index("income"),
            earlystop_patience=patience,
            device="cpu",
            model_path=tmp,
        )
        epoch_s: list[float] = []
        train_one_epoch = trainer.train_one_epoch

        def timed_epoch(loader: Any) -> Any:
            start = time.perf_counter()
            out = train_one_epoch(loader)
            epoch_s.append(time.perf_counter() - start)
            return out

        trainer.train_one_epoch = timed_epoch
        trainer.fit(loaders[0], loaders[1], seed=seed)
    start = time.perf_counter()
    probs = predict(model, tensors.x["test"], batch).numpy()
    infer_s = time.perf_counter() - start
    y_test = tensors.y["test"].numpy()
    n_train, n_test = len(tensors.y["train"]), len(y_test)
    return {
        "model": name,
        "framework": "torch-rechub",
        "seed": seed,
        "architecture": ARCHITECTURES[name],
        "test_auc": {
            t: float(roc_auc_score(y_test[:, i], probs[:, i])) for i, t in enumerate(TASKS)
        },
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs_run": len(epoch_s),
        "train_samples_per_s": n_train * len(epoch_s) / sum(epoch_s),
        "inference_samples_per_s": n_test / infer_s,
        "train_s": round(sum(epoch_s), 2),
        "rows": {"train": n_train, "valid": len(tensors.y["valid"]), "test": n_test},
    }
