"""Full ranking at a realistic size: wall time and peak memory of the final test evaluation.

Writes a synthetic dataset shaped like Amazon Beauty 5-core (22,363 users, 12,101 items,
198,502 interactions with timestamps and 1-5 stars; items with a short title and a
category; fixed seed) as a CSV of interactions and a JSONL of items, read through the
tabular source with the column mapping ``mapping.yaml`` (leave-one-out split). Then, per
model:

- ``sequential``: the sequential multi-task model (configs/amazon-mi-sequential.yaml's
  architecture; item text = the LM embedding of the title; tasks interest + rating, since the
  synthetic data has no review text), 1 epoch; evaluation = ``evaluate_sequential`` on the
  test split (auxiliary tasks + full ranking of every test user through the ranking protocol,
  one matrix product per chunk of users);
- ``pointwise``: the Musical Instruments preset (configs/amazon-musical-instruments.yaml:
  MMoE over ids, item text and the user's history text profile, PCGrad; ``text.reviews``
  off for lack of review text), 1 epoch; evaluation = ``ranking_metrics`` (the ranking of
  ``evaluate_run``: every (user, item) pair through the network). When the whole test split
  would take longer than ``--max-full-minutes`` (estimated from a probe of ``--probe-users``
  users), it is measured on a fixed random subset of ``--subset-users`` test users with the
  same code path, and the result says so.

Each model is trained in one child process (``model.pt`` saved) and evaluated in a fresh
one that loads the data and the weights, so each phase's memory is its own and each phase
can run on its own (``--phase train`` / ``--phase evaluate``). Measured per model: training
seconds, evaluation seconds and the evaluation's peak resident memory (the process's
high-water mark, reset just before evaluating via ``/proc/self/clear_refs``; so it includes
the data, text tables and model already loaded), plus each process's lifetime peak
(``ru_maxrss``). Results: ``benchmarks/results/ranking_scale.{json,md}``.

    OMP_NUM_THREADS=1 python benchmarks/ranking_scale.py                  # both models
    OMP_NUM_THREADS=1 python benchmarks/ranking_scale.py --models pointwise --phase evaluate
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS: tuple[str, ...] = ("sequential", "pointwise")

# Amazon Beauty 5-core (2014): users, items, interactions
N_USERS, N_ITEMS, N_INTERACTIONS = 22_363, 12_101, 198_502
MIN_PER_USER = 5
N_CATEGORIES = 40
STAR_SHARES = (0.05, 0.06, 0.11, 0.20, 0.58)  # 1..5 stars, Amazon-like skew to 5
KS = (5, 10, 20)
GB = 1024**3

MAPPING: dict[str, Any] = {
    "interactions": {
        "format": "csv",
        "columns": {"user_id": "reviewer", "item_id": "asin", "value": "stars", "timestamp": "t"},
        "event": "rating",
        "timestamp_format": "unix",
    },
    "items": {
        "format": "jsonl",
        "columns": {"item_id": "asin", "title": "name", "categories": "category"},
        "list_separator": "|",
    },
}
"""The tabular source's column mapping of the synthetic files (written as mapping.yaml)."""

WORDS = {
    "brand": [
        "Lumina", "Verde", "Aurora", "Nordic", "Pure", "Velvet", "Solis", "Maris", "Orchid",
        "Cedar", "Ivory", "Amber", "Coral", "Sage", "Opal", "Willow",
    ],
    "quality": [
        "Hydrating", "Gentle", "Daily", "Intense", "Soothing", "Brightening", "Matte",
        "Nourishing", "Repair", "Smoothing", "Firming", "Clarifying", "Volumizing", "Silky",
    ],
    "product": [
        "Face Cream", "Serum", "Cleanser", "Shampoo", "Conditioner", "Lip Balm", "Mascara",
        "Eyeliner", "Nail Polish", "Body Lotion", "Sunscreen", "Toner", "Face Mask",
        "Hair Oil", "Foundation", "Perfume", "Hand Cream", "Eye Shadow", "Brush Set",
    ],
    "size": ["30 ml", "50 ml", "100 ml", "150 ml", "200 ml", "1 oz", "2 oz", "8 oz", "Pack of 2"],
    "area": ["Skin Care", "Hair Care", "Makeup", "Fragrance", "Tools & Accessories", "Bath & Body"],
}  # fmt: skip


# -- the synthetic dataset --------------------------------------------------------------------


def synthetic_tables(seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Items (``asin``, ``name``, ``category``) and interactions (``reviewer``, ``asin``,
    ``stars``, ``t``) ``(N_INTERACTIONS,)`` each, deterministic in ``seed``.

    Every user has at least :data:`MIN_PER_USER` distinct items (long-tailed counts beyond);
    item popularity is Zipf-like; a user prefers one category (70% of picks), so the data
    has structure to learn; each user's timestamps are distinct, within 2010-2014."""
    rng = np.random.default_rng(seed)
    category_of = rng.integers(0, N_CATEGORIES, N_ITEMS)
    area = [WORDS["area"][c % len(WORDS["area"])] for c in range(N_CATEGORIES)]
    items = [
        {
            "asin": f"B{i:09d}",
            "name": " ".join(
                str(rng.choice(WORDS[part])) for part in ("brand", "quality", "product", "size")
            ),
            "category": f"Beauty|{area[category_of[i]]}|Line {category_of[i]:02d}",
        }
        for i in range(N_ITEMS)
    ]
    popularity = 1.0 / (np.arange(N_ITEMS) + 20.0) ** 0.9
    popularity = popularity[rng.permutation(N_ITEMS)]
    by_category = [np.flatnonzero(category_of == c) for c in range(N_CATEGORIES)]
    in_category = [popularity[idx] / popularity[idx].sum() for idx in by_category]
    overall = popularity / popularity.sum()

    extra = N_INTERACTIONS - MIN_PER_USER * N_USERS
    weights = rng.lognormal(0.0, 1.0, N_USERS)
    counts = MIN_PER_USER + rng.multinomial(extra, weights / weights.sum())
    counts = np.minimum(counts, 400)
    short = N_INTERACTIONS - int(counts.sum())  # give back what the cap took, one by one
    for user in rng.choice(np.flatnonzero(counts < 400), size=short, replace=True):
        counts[user] += 1
    assert int(counts.sum()) == N_INTERACTIONS

    users, picked = [], []
    favourite = rng.integers(0, N_CATEGORIES, N_USERS)
    for user, count in enumerate(counts.tolist()):
        chosen: list[int] = []
        seen: set[int] = set()
        while len(chosen) < count:
            n = 2 * (count - len(chosen)) + 4
            own = rng.random(n) < 0.7
            pool = by_category[favourite[user]]
            draws = np.where(
                own,
                pool[rng.choice(len(pool), size=n, p=in_category[favourite[user]])],
                rng.choice(N_ITEMS, size=n, p=overall),
            )
            for item in draws.tolist():
                if item not in seen:
                    seen.add(item)
                    chosen.append(item)
                    if len(chosen) == count:
                        break
        users.append(np.full(count, user))
        picked.append(np.array(chosen))
    user_idx = np.concatenate(users)
    item_idx = np.concatenate(picked)
    start, end = 1_262_304_000, 1_404_172_800  # 2010-01-01 .. 2014-07-01
    times = np.concatenate(
        [np.sort(rng.choice(end - start, size=c, replace=False)) + start for c in counts]
    )
    stars = rng.choice(np.arange(1, 6), size=N_INTERACTIONS, p=STAR_SHARES)
    interactions = {
        "reviewer": np.array([f"A{u:08d}" for u in user_idx]),
        "asin": np.array([items[i]["asin"] for i in item_idx]),
        "stars": stars.astype(np.int64),
        "t": times.astype(np.int64),
    }
    return items, interactions


def write_dataset(folder: Path, seed: int = 0) -> dict[str, Path]:
    """The synthetic files and their mapping under ``folder`` (kept when already there)."""
    import polars as pl
    import yaml

    files = {
        "interactions": folder / "interactions.csv",
        "items": folder / "items.jsonl",
        "mapping": folder / "mapping.yaml",
    }
    stamp = folder / "written.json"
    wanted = {"seed": seed, "users": N_USERS, "items": N_ITEMS, "interactions": N_INTERACTIONS}
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return files
    folder.mkdir(parents=True, exist_ok=True)
    items, interactions = synthetic_tables(seed)
    pl.DataFrame(interactions).write_csv(files["interactions"])
    with files["items"].open("w", encoding="utf-8") as handle:
        for row in items:
            handle.write(json.dumps(row) + "\n")
    files["mapping"].write_text(yaml.safe_dump(MAPPING, sort_keys=False))
    stamp.write_text(json.dumps(wanted))
    return files


# -- the two model configs ----------------------------------------------------------------------


def data_section(files: dict[str, Path]) -> dict[str, Any]:
    """``data:`` of both configs: the tabular source over the synthetic files."""
    import yaml

    mapping = yaml.safe_load(files["mapping"].read_text())
    return {
        "dataset": {
            "source": "tabular",
            "files": {"interactions": str(files["interactions"]), "items": str(files["items"])},
            "params": mapping,
        },
        "split": {"strategy": "leave_one_out"},
        "labels": [
            {"name": "interest"},
            {"name": "like", "params": {"threshold": 4.0}},
            {"name": "rating"},
            {"name": "sentiment"},
        ],
    }


def model_config(model: str, files: dict[str, Path]) -> dict[str, Any]:
    """The experiment config of ``model`` (1 epoch) over the synthetic data."""
    import yaml

    if model == "sequential":
        base = yaml.safe_load((ROOT / "configs/amazon-mi-sequential.yaml").read_text())
        base["model"]["params"].pop("task_inputs", None)  # no review text to read
        base["tasks"] = {"interest": {}, "rating": {"loss": "huber", "weight": 0.2}}
        base["text"] = {"item": True}
    elif model == "pointwise":
        base = yaml.safe_load((ROOT / "configs/amazon-musical-instruments.yaml").read_text())
        base["text"] = {"item": True, "user": True, "reviews": False}  # no review text
    else:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
    base["name"] = f"ranking-scale-{model}"
    base["data"] = data_section(files)
    base["training"]["epochs"] = 1
    base["training"]["early_stopping"] = None
    return dict(base)


# -- memory -----------------------------------------------------------------------------------


def _status_kb(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) if found else None


def reset_peak() -> bool:
    """Reset this process's resident high-water mark (Linux ``clear_refs`` 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measured(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """``fn()`` with its wall seconds, the RSS before it and the peak RSS while it ran (GB)."""
    import psutil

    gc.collect()
    before = psutil.Process().memory_info().rss
    resettable = reset_peak()
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    hwm = _status_kb("VmHWM")
    peak = hwm * 1024 if resettable and hwm is not None else float("nan")
    return out, {
        "seconds": round(seconds, 2),
        "rss_before_gb": round(before / GB, 3),
        "peak_rss_gb": round(peak / GB, 3),
        "peak_over_before_gb": round((peak - before) / GB, 3),
    }


# -- one model, in child processes: train, then evaluate --------------------------------------


def _summary(results: dict[str, dict[str, float]]) -> dict[str, float]:
    row = results["all"]
    return {k: round(float(row[k]), 4) for k in ("n_users", "ndcg@10", "hr@10", "recall@20")}


def _process_peak_gb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB, 3)


def run_child(
    model: str, phase: str, config_path: Path, work: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """``phase`` ``train``: load the data, train 1 epoch, save ``model.pt``. ``evaluate``: load
    the data and ``model.pt`` in a fresh process and measure the test evaluation."""
    import torch
    from rich.console import Console

    from mtlrec.config.experiment import ExperimentConfig
    from mtlrec.config.loading import load_config
    from mtlrec.data.fetch import FetchSettings
    from mtlrec.pipeline.run_data import load_run_data

    torch.set_num_threads(1)
    console = Console(stderr=True)
    config = load_config(ExperimentConfig, config_path)
    settings = FetchSettings(cache_dir=work / "cache", offline=True)
    run_dir = work / "runs" / model
    weights = run_dir / "model.pt"
    out: dict[str, Any] = {}

    start = time.perf_counter()
    data = load_run_data(config, settings, console)
    out["data_s"] = round(time.perf_counter() - start, 2)
    out["sizes"] = {
        "users": len(data.entities.user_ids),
        "items": len(data.entities.item_ids),
        "interactions": len(data.examples),
        "test_users": int(np.unique(data.examples.subset("test").features["user_row"]).size),
    }
    if phase == "train":
        out["train_s"] = _train(model, config, data, run_dir)
        torch.save(_trained.state_dict(), weights)
        out["process_peak_rss_gb"] = _process_peak_gb()
        return out
    if model == "sequential":
        out.update(_evaluate_sequential(config, data, torch.load(weights)))
    else:
        out.update(_evaluate_pointwise(config, data, torch.load(weights), args))
    out["process_peak_rss_gb"] = _process_peak_gb()
    return out


_trained: Any = None


def _train(model: str, config: Any, data: Any, run_dir: Path) -> float:
    """Train ``model`` 1 epoch (kept in ``_trained``); returns the seconds it took."""
    global _trained
    start = time.perf_counter()
    if model == "sequential":
        from mtlrec.pipeline.sequential import train_sequential

        _trained, _, _ = train_sequential(config, data, run_dir, progress=False)
    else:
        from mtlrec.pipeline.experiment import train_model

        _trained, _ = train_model(config, data, run_dir, progress=False)
    return round(time.perf_counter() - start, 2)


def _evaluate_sequential(config: Any, data: Any, state: dict[str, Any]) -> dict[str, Any]:
    from mtlrec.evaluation.protocol import evaluate_ranking
    from mtlrec.models.sequential_factory import sequential_params
    from mtlrec.pipeline.sequential import (
        SequentialData,
        build_sequential_model,
        evaluate_sequential,
        user_score_fn,
    )

    params = sequential_params(config)
    model = build_sequential_model(config, data)
    model.load_state_dict(state)
    seq = SequentialData.of(data, params)
    vectors = data.entities.tables.get("items.text")
    # the whole final test evaluation (auxiliary tasks + full ranking), as `mtlrec train`
    results, whole = measured(lambda: evaluate_sequential(config, data, model, seq, ("test",)))
    # the full ranking alone, through the one protocol (what evaluate_sequential calls)
    ranked, ranking = measured(
        lambda: evaluate_ranking(
            seq.ranking,
            "test",
            user_score_fn(model, seq.histories[2], params.max_len),
            KS,
            diversity_vectors=None if vectors is None else vectors.numpy(),
        )
    )
    return {
        "evaluated_users": int(ranked["all"]["n_users"]),
        "subset": False,
        "evaluation": whole,
        "ranking_only": ranking,
        "metrics": _summary(ranked),
        "test_ndcg@10_from_evaluation": round(
            float(results["test"]["ranking (all)"]["ndcg@10"]), 4
        ),
    }


def _subset_ranking(ranking: Any, users: np.ndarray) -> Any:
    """``ranking`` with the test pairs of ``users`` only (exclusions unchanged)."""
    from mtlrec.evaluation.protocol import SplitPairs

    pairs = ranking.pairs["test"]
    keep = np.isin(pairs.users, users)
    chosen = SplitPairs(pairs.users[keep], pairs.items[keep], pairs.cold[keep])
    return dataclasses.replace(ranking, pairs={**ranking.pairs, "test": chosen})


def _evaluate_pointwise(
    config: Any, data: Any, state: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    from mtlrec.evaluation.model_metrics import ranking_metrics
    from mtlrec.pipeline.evaluate import run_ranking_data
    from mtlrec.pipeline.experiment import build_run_model

    model = build_run_model(config, data)
    model.load_state_dict(state)
    ranking = run_ranking_data(data)
    assert ranking is not None
    test_users = ranking.pairs["test"].user_rows
    rng = np.random.default_rng(0)
    task = config.evaluation.ranking_task

    def rank(users: np.ndarray) -> Callable[[], Any]:
        return lambda: ranking_metrics(
            model,
            data.examples,
            data.entities,
            task,
            "test",
            KS,
            device=config.training.device,
            ranking=_subset_ranking(ranking, users),
            progress=args.progress,
        )

    probe_users = np.sort(rng.choice(test_users, size=args.probe_users, replace=False))
    _, probe = measured(rank(probe_users))
    estimate_s = probe["seconds"] / len(probe_users) * len(test_users)
    full = estimate_s <= args.max_full_minutes * 60
    users = (
        test_users
        if full
        else np.sort(rng.choice(test_users, size=args.subset_users, replace=False))
    )
    results, evaluation = measured(rank(users))
    return {
        "evaluated_users": len(users),
        "subset": not full,
        "probe": {**probe, "users": len(probe_users)},
        "estimated_full_s_from_probe": round(estimate_s, 1),
        "evaluation": evaluation,
        "seconds_per_user": round(evaluation["seconds"] / len(users), 4),
        "estimated_full_s": round(evaluation["seconds"] / len(users) * len(test_users), 1),
        "metrics": _summary(results),
    }


# -- the parent: data, children, report -------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import psutil
    import torch

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": 1,
        "memory_gb": round(psutil.virtual_memory().total / GB, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def markdown(payload: dict[str, Any]) -> str:
    """The report of ``payload`` as Markdown."""
    m, s = payload["machine"], payload["dataset"]
    lines = [
        "# Full ranking at a realistic size (synthetic Amazon-Beauty shape)",
        "",
        f"Dataset: synthetic, {s['users']:,} users, {s['items']:,} items, "
        f"{s['interactions']:,} interactions (timestamps, 1-5 stars, item title + category), "
        "read through the tabular source (`mapping.yaml`), leave-one-out split "
        f"({s.get('test_users', 0):,} test users). Seed {payload['seed']}.",
        "",
        f"Machine: {m['platform']}, {m['logical_cpus']} logical CPUs, {m['memory_gb']} GB, "
        f"torch {m['torch']} with 1 thread; load average {m['load_average_at_start']} at the "
        "start of the last measuring run (other jobs shared the 2 cores throughout, so times are "
        "upper bounds).",
        "",
        "Each model is trained in one process and evaluated in a fresh one (data + saved "
        "weights). Peak RSS = that process's resident high-water mark during the evaluation "
        "(reset just before it; includes the data, text tables and model already in memory); "
        "eval process peak = the whole evaluating process (loading + evaluation); train "
        "process peak = the training process (data, text, 1 epoch).",
        "",
        "| model | train s (1 epoch) | evaluated test users | evaluation s | peak RSS GB "
        "| RSS before GB | eval process peak GB | train process peak GB | NDCG@10 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in MODELS:
        r = payload["models"].get(name)
        if r is None:
            continue
        e = r["evaluation"]
        users = f"{r['evaluated_users']:,}" + (" (subset)" if r["subset"] else " (all)")
        lines.append(
            f"| {name} | {r['train_s']} | {users} | {e['seconds']} | {e['peak_rss_gb']} "
            f"| {e['rss_before_gb']} | {r['process_peak_rss_gb']} "
            f"| {r['train_process_peak_rss_gb']} | {r['metrics']['ndcg@10']} |"
        )
    lines.append("")
    seq = payload["models"].get("sequential")
    if seq is not None:
        r = seq["ranking_only"]
        lines += [
            "Sequential: `evaluation` is the whole final test evaluation (`evaluate_sequential`: "
            "auxiliary tasks, then full ranking of every test user, one matrix product per chunk "
            f"of 256 users). The full ranking alone: {r['seconds']} s, peak RSS "
            f"{r['peak_rss_gb']} GB. Goal: under 60 s and under 2 GB.",
            "",
        ]
    point = payload["models"].get("pointwise")
    if point is not None:
        what = (
            f"a fixed random subset of {point['evaluated_users']:,} test users (seed 0), "
            "because the probe estimated the whole test split at "
            f"{point['estimated_full_s_from_probe']:.0f} s, over the "
            f"{payload['max_full_minutes']} minute cap"
            if point["subset"]
            else "every test user"
        )
        lines += [
            "Pointwise (MI preset, MMoE): full ranking through `ranking_metrics` (every (user, "
            f"item) pair through the network, chunks of 128 users), measured on {what}. "
            f"Rate: {point['seconds_per_user']} s per user, i.e. about "
            f"{point['estimated_full_s'] / 60:.1f} minutes for all "
            f"{s.get('test_users', 0):,} test users"
            + (" (an extrapolation, not a measurement)" if point["subset"] else "")
            + ". Memory is bounded by the chunk, not the number of users: peak RSS "
            f"{point['probe']['peak_rss_gb']} GB for a probe of {point['probe']['users']} users, "
            f"{point['evaluation']['peak_rss_gb']} GB for {point['evaluated_users']:,} users "
            "(one dense float32 score matrix of all test users would alone take "
            f"{s.get('test_users', 0) * s['items'] * 4 / GB:.2f} GB).",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument(
        "--phase",
        choices=("all", "train", "evaluate", "report"),
        default="all",
        help="train (saves model.pt), evaluate (a saved model.pt), both, or only rewrite the "
        "report from the saved results",
    )
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "ranking_scale")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/ranking_scale")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-full-minutes", type=float, default=15.0)
    parser.add_argument("--subset-users", type=int, default=2000)
    parser.add_argument("--probe-users", type=int, default=32)
    parser.add_argument("--progress", action="store_true", help="progress bar while ranking")
    parser.add_argument("--child", choices=MODELS, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = run_child(args.child, args.phase, args.config, args.work, args)
        args.result.write_text(json.dumps(result, indent=2))
        return

    import yaml

    files = write_dataset(args.work / "data", args.seed)
    json_path = args.out.with_suffix(".json")
    payload: dict[str, Any] = (
        json.loads(json_path.read_text()) if json_path.is_file() else {"models": {}}
    )
    phases = {"all": ("train", "evaluate"), "report": ()}.get(args.phase, (args.phase,))
    if phases or "machine" not in payload:
        payload["machine"] = machine()
    payload.update(
        seed=args.seed,
        max_full_minutes=args.max_full_minutes,
        dataset={"users": N_USERS, "items": N_ITEMS, "interactions": N_INTERACTIONS},
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for model in args.models:
        config_path = args.work / "configs" / f"{model}.yaml"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(yaml.safe_dump(model_config(model, files), sort_keys=False))
        for phase in phases:
            result_path = args.work / f"result_{model}_{phase}.json"
            command = [sys.executable, __file__, "--child", model, "--phase", phase]
            command += ["--config", str(config_path), "--result", str(result_path)]
            command += ["--work", str(args.work), "--max-full-minutes", str(args.max_full_minutes)]
            command += ["--subset-users", str(args.subset_users)]
            command += ["--probe-users", str(args.probe_users)]
            command += ["--progress"] if args.progress else []
            print(f"[{model}] {phase}", flush=True)
            subprocess.run(command, check=True, env=env)
            print(result_path.read_text(), flush=True)
        trained = json.loads((args.work / f"result_{model}_train.json").read_text())
        evaluated_path = args.work / f"result_{model}_evaluate.json"
        if not evaluated_path.is_file():
            continue
        evaluated = json.loads(evaluated_path.read_text())
        payload["dataset"].update(test_users=evaluated["sizes"]["test_users"])
        payload["models"][model] = {
            "config": yaml.safe_load(config_path.read_text()),
            "data_s": evaluated["data_s"],
            "train_s": trained["train_s"],
            "train_process_peak_rss_gb": trained["process_peak_rss_gb"],
            **{k: v for k, v in evaluated.items() if k not in ("data_s", "sizes")},
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(payload) + "\n")


if __name__ == "__main__":
    main()
