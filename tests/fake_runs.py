"""Hand-written run folders and benchmark files, in the shapes ``mtlrec train``, ``mtlrec
fuse`` and the benchmarks write, for the report's tests (no training needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

METRICS = {"binary": ("auc", "logloss"), "regression": ("rmse", "mae")}


def _metrics(kind: str, base: float) -> dict[str, float]:
    return {"n": 100, **{m: round(base + 0.01 * i, 4) for i, m in enumerate(METRICS[kind])}}


def write_fake_run(
    root: Path,
    tasks: dict[str, str],
    *,
    dataset: str = "toy",
    backbone: str = "mmoe",
    base: float = 0.7,
    epochs: int = 3,
    steps_per_epoch: int = 4,
    files: tuple[str, ...] = ("config.yaml", "results.json", "train.jsonl"),
    gates: bool = True,
    fusion: bool = False,
) -> Path:
    """A run folder of ``tasks`` (``{task: kind}``, binary or regression) with the given files.

    Test metrics are ``base`` (+0.01 per further metric); validation metrics climb per epoch.
    """
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "name": root.name,
        "data": {"dataset": {"name": dataset}},
        "tasks": {t: {"weight": 1.0} for t in tasks},
        "model": {"backbone": {"name": backbone, "params": {"n_experts": 2}}},
        "weighting": {"name": "uncertainty", "params": {}},
        "evaluation": {"ranking_task": next(iter(tasks)), "ks": [10]},
    }
    if "config.yaml" in files:
        (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    history = [
        {"epoch": float(e), **_valid(tasks, base - 0.05 * (epochs - 1 - e))} for e in range(epochs)
    ]
    if "train.jsonl" in files:
        lines = []
        step = 0
        for epoch in range(epochs):
            for _ in range(steps_per_epoch):
                step += 1
                record: dict[str, Any] = {"event": "step", "epoch": epoch, "step": step}
                record.update({f"loss/{t}": 1.0 / step for t in tasks})
                record.update({f"weight/{t}": 1.0 + 0.1 * i * step for i, t in enumerate(tasks)})
                record["lr"] = 0.001
                lines.append(record)
            lines.append({"event": "epoch", "epoch": epoch, "step": step, **history[epoch]})
        (root / "train.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    test: dict[str, Any] = {t: _metrics(k, base) for t, k in tasks.items()}
    for slice_name, users in (("all", 50), ("warm", 48), ("cold", 2)):
        test[f"ranking ({slice_name})"] = {
            "n_users": users,
            "ndcg@10": base / 4,
            "recall@10": base / 5,
            "coverage@10": 0.3,
            "diversity@10": 0.6,
            "novelty@10": 3.1,
            "arp@10": 150.0,
        }
    results: dict[str, Any] = {
        "name": root.name,
        "dataset": dataset,
        "tasks": tasks,
        "parameters": 1234,
        "epochs_run": epochs,
        "best_epoch": epochs - 1,
        "history": history,
        "timings_s": {"train_s": 1.5},
        "results": {"valid": {t: _metrics(k, base - 0.02) for t, k in tasks.items()}, "test": test},
        "data_stats": {
            "counts": {"interactions": 1000, "users": 50, "items": 40},
            "split": {
                "strategy": "random",
                "sizes": {s: {"rows": n, "users": 50, "items": 40} for s, n in _SIZES.items()},
            },
            "examples": dict(_SIZES),
        },
    }
    if gates and backbone in ("mmoe", "ple"):
        results["gate_utilisation"] = {
            "examples": 100,
            "levels": [
                {
                    "name": "experts",
                    "experts": ["expert/0", "expert/1"],
                    "tasks": {t: _gate_row(i) for i, t in enumerate(tasks)},
                }
            ],
        }
    if "results.json" in files:
        (root / "results.json").write_text(json.dumps(results, indent=2))
    if fusion:
        write_fake_fusion(root, list(tasks))
    return root


_SIZES = {"train": 800, "valid": 100, "test": 100}


def _gate_row(index: int) -> list[float]:
    return [0.25, 0.75] if index % 2 else [0.75, 0.25]


def _valid(tasks: dict[str, str], base: float) -> dict[str, float]:
    out = {}
    for task, kind in tasks.items():
        for name, value in _metrics(kind, base).items():
            out[f"valid/{task}/{name}"] = float(value)
    return out


def write_fake_fusion(run: Path, tasks: list[str]) -> None:
    """``fusion/results.json`` as ``mtlrec fuse`` writes it."""
    slices = {
        s: {
            "n_users": n,
            "ndcg@10": 0.3,
            "recall@10": 0.25,
            "coverage@10": 0.2,
            "diversity@10": 0.55,
            "novelty@10": 2.2,
            "arp@10": 220.0,
        }
        for s, n in (("all", 50), ("warm", 48), ("cold", 2))
    }
    retrieval = {"n_users": 50.0, "candidate_recall@30x2": 0.8, "candidates@30x2": 45.0}
    payload = {
        "run": str(run),
        "fusion": "linear",
        "weights": {"popularity": 0.4, **{t: 0.6 / len(tasks) for t in tasks}},
        "sources": ["popularity", *tasks],
        "fit_s": 1.0,
        "results": {split: {**slices, "retrieval": retrieval} for split in ("valid", "test")},
    }
    (run / "fusion").mkdir(parents=True, exist_ok=True)
    (run / "fusion" / "results.json").write_text(json.dumps(payload, indent=2))


def write_fake_bench(root: Path, peers: bool = True) -> Path:
    """A benchmark results folder: ``fusion_toy.json``, ``mtl_vs_stl.json`` and (when
    ``peers``) ``peers_ranking.json`` in the documented shapes."""
    root.mkdir(parents=True, exist_ok=True)

    def stat(mean: float, std: float = 0.01) -> dict[str, float]:
        return {"mean": mean, "std": std}

    table = {
        "popularity": {
            "kind": "single model",
            "test": {"ndcg@10": stat(0.1), "recall@10": stat(0.09), "coverage@10": stat(0.04)},
        },
        "cascade": {
            "kind": "cascade",
            "test": {"ndcg@10": stat(0.3), "recall@10": stat(0.2), "coverage@10": stat(0.2)},
        },
    }
    fusion = {
        "benchmark": "fusion",
        "dataset": "toy",
        "command": "python benchmarks/fusion.py --dataset toy",
        "seeds": [0, 1],
        "protocol": "full ranking; test split",
        "aggregate": {
            "table": table,
            "summary": {
                "ratio": 1.2,
                "goal": "ratio >= 1.05",
                "per_seed": [{"seed": 0, "best_single": "popularity"}],
            },
        },
    }
    (root / "fusion_toy.json").write_text(json.dumps(fusion))
    mtl = {
        "benchmark": "mtl_vs_stl",
        "seeds": [0, 1],
        "datasets": {
            "toy": {
                "config": "configs/toy.yaml",
                "summary": {
                    "like/auc": {
                        "mode": "max",
                        "mtl_mean": 0.81,
                        "mtl_std": 0.01,
                        "stl_mean": 0.8,
                        "stl_std": 0.02,
                        "diff_mean": 0.01,
                        "ratio": 1.0125,
                        "mtl_better": True,
                        "paired_t_p": 0.3,
                    }
                },
            }
        },
    }
    (root / "mtl_vs_stl.json").write_text(json.dumps(mtl))
    if peers:
        write_fake_peers(root / "peers_ranking.json")
    return root


def write_fake_peers(path: Path) -> None:
    """``peers_*.json``: generic tables and a summary."""
    payload = {
        "benchmark": "peers_ranking",
        "command": "python benchmarks/peers/ranking.py",
        "tables": [
            {
                "title": "ML-100K full ranking <peers>",
                "columns": ["framework", "model", "ndcg@10", "train s"],
                "rows": [["mtlrec", "mmoe", 0.123456, 12], ["recbole", "BPR", 0.1, 30.5]],
                "notes": ["same split for every framework"],
            }
        ],
        "summary": {"winner": "mtlrec", "margin": 0.023456, "details": {"seeds": 3}},
    }
    path.write_text(json.dumps(payload))
