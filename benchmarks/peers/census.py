"""Census-income side by side: torch-rechub's SharedBottom, MMoE and PLE against mtlrec's.

One process, one data load: ``configs/census.yaml`` is prepared and loaded once; both
frameworks train on the same rows, features and labels (see ``rechub_census.py``) with
the preset's optimiser settings, epochs and early stopping on validation income AUC, with
the same number of torch threads. Per seed and architecture the two frameworks run one
after the other, so whatever else the machine does weighs on both alike.

Measured per run: test AUC of both tasks, parameters, training samples/s over the
training passes only (validation not counted on either side: torch-rechub's
``train_one_epoch`` timed by ``rechub_census.py``; mtlrec's ``train/samples_per_s`` from
its trainer's epoch history), and inference samples/s (the model's forward over the test
rows in batches of the training batch size, batches built beforehand on both sides).

    .venv-bench/bin/python benchmarks/peers/census.py --seeds 0 1 2 --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rechub_census import ARCHITECTURES, CONFIG, TASKS, census_tensors
from rechub_census import run_model as run_rechub
from rich.console import Console
from scipy import stats

from mtlrec.config.experiment import ExperimentConfig
from mtlrec.config.loading import load_config
from mtlrec.data.fetch import FetchSettings
from mtlrec.pipeline.evaluate import evaluate_run
from mtlrec.pipeline.experiment import train_model
from mtlrec.pipeline.run_data import RunData, load_run_data
from mtlrec.training.loader import ExampleLoader

ROOT = Path(__file__).resolve().parents[2]


def run_mtlrec(name: str, data: RunData, seed: int, epochs: int | None) -> dict[str, Any]:
    """Train mtlrec's ``name`` (its ``ARCHITECTURES`` backbone) and measure it."""
    overrides = [f"seed={seed}", f"model.backbone={json.dumps(ARCHITECTURES[name]['mtlrec'])}"]
    if epochs is not None:
        overrides.append(f"training.epochs={epochs}")
    config = load_config(ExperimentConfig, CONFIG, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        model, trainer = train_model(config, data, Path(tmp), progress=False)
    history = trainer.state.history
    seconds = sum(h["train/epoch_s"] for h in history)
    samples = sum(h["train/samples_per_s"] * h["train/epoch_s"] for h in history)
    results = evaluate_run(config, data, model, ("test",), ranking=False)
    loader = ExampleLoader(
        data.examples.subset("test"), config.training.batch_size, shuffle=False, seed=seed
    )
    batches = list(loader.batches(0))
    model.eval()
    with torch.no_grad():
        start = time.perf_counter()
        for batch in batches:
            model(batch.features)
        infer_s = time.perf_counter() - start
    n_test = sum(b.size for b in batches)
    return {
        "model": name,
        "framework": "mtlrec",
        "seed": seed,
        "architecture": ARCHITECTURES[name],
        "test_auc": {t: float(results["test"][t]["auc"]) for t in TASKS},
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs_run": len(history),
        "train_samples_per_s": samples / seconds,
        "inference_samples_per_s": n_test / infer_s,
        "train_s": round(seconds, 2),
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per architecture and framework: mean/std over seeds; mtlrec / torch-rechub ratios and
    paired t-tests (by seed) of the AUCs."""
    out: dict[str, Any] = {}
    for name in ARCHITECTURES:
        sides: dict[str, list[dict[str, Any]]] = {
            fw: sorted(
                (r for r in rows if r["model"] == name and r["framework"] == fw),
                key=lambda r: r["seed"],
            )
            for fw in ("mtlrec", "torch-rechub")
        }
        if not all(sides.values()):
            continue
        entry: dict[str, Any] = {}
        for fw, runs in sides.items():
            values = {f"{t}_auc": [r["test_auc"][t] for r in runs] for t in TASKS}
            for key in ("train_samples_per_s", "inference_samples_per_s", "parameters"):
                values[key] = [r[key] for r in runs]
            entry[fw] = {
                k: {"mean": float(np.mean(v)), "std": float(np.std(v))} for k, v in values.items()
            }
        ours, theirs = entry["mtlrec"], entry["torch-rechub"]
        entry["train_throughput_ratio"] = (
            ours["train_samples_per_s"]["mean"] / theirs["train_samples_per_s"]["mean"]
        )
        entry["inference_throughput_ratio"] = (
            ours["inference_samples_per_s"]["mean"] / theirs["inference_samples_per_s"]["mean"]
        )
        if len(sides["mtlrec"]) > 1 and len(sides["mtlrec"]) == len(sides["torch-rechub"]):
            for t in TASKS:
                a = [r["test_auc"][t] for r in sides["mtlrec"]]
                b = [r["test_auc"][t] for r in sides["torch-rechub"]]
                entry[f"{t}_auc_paired_t_test_p"] = float(stats.ttest_rel(a, b).pvalue)
        out[name] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(ARCHITECTURES), default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=None, help="default: the preset's")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/peers/census.json")
    parser.add_argument("--cache-dir", type=Path, default=FetchSettings().cache_dir)
    parser.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console()
    config = load_config(ExperimentConfig, CONFIG, ["seed=0"])
    settings = FetchSettings(cache_dir=args.cache_dir, mirrors=(args.mirror,))
    data = load_run_data(config, settings, console)
    tensors = census_tensors(data, int(config.model.inputs.params.get("embedding_dim", 8)))
    epochs = args.epochs or config.training.epochs
    rows: list[dict[str, Any]] = []
    for seed in args.seeds:
        for name in args.models or list(ARCHITECTURES):
            for row in (
                run_rechub(name, tensors, config, seed, epochs),
                run_mtlrec(name, data, seed, args.epochs),
            ):
                rows.append(row)
                auc = row["test_auc"]
                console.print(
                    f"seed {seed} {row['framework']:12s} {name:12s} income {auc['income']:.4f} "
                    f"never_married {auc['never_married']:.4f} params {row['parameters']:,} "
                    f"train {row['train_samples_per_s']:,.0f}/s "
                    f"infer {row['inference_samples_per_s']:,.0f}/s"
                )
    payload = {
        "benchmark": "census side by side",
        "config": str(CONFIG.relative_to(ROOT)),
        "command": "python benchmarks/peers/census.py " + " ".join(sys.argv[1:]),
        "threads": args.threads,
        "summary": summarize(rows),
        "runs": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"-> {args.out}")


if __name__ == "__main__":
    main()
