"""Every single model and every fusion method side by side, on one split (issue 4).

For a dataset preset, per seed: train the multi-task model (its preset config), fit every
registered baseline on the same training interactions, score all items for the validation
and test users, then

- evaluate each single model (baselines and each multi-task head) by full ranking;
- fit each fusion method on the VALIDATION split only (linear, softmax, RRF, stacking with
  LightGBM and with logistic regression over all sources; multi-objective fusion of the
  multi-task heads: a fixed formula and a linear fusion fitted on validation) and
  evaluate it on test;
- run the cascade of ``configs/fusion/<dataset>.yaml`` (retrieve -> rank -> fuse) and its
  MMR re-rank at several trade-offs (what diversity costs in NDCG).

The best single model and the best fusion are chosen by validation NDCG@10 (a fusion by
its out-of-fold validation NDCG: fitted on 4/5 of the validation users, scored on the
rest); the test ratio between them is the goal (>= 1.05). The cascade rows show what
retrieval and re-ranking change; they are not candidates for "best fusion".
Results: ``benchmarks/results/fusion_<dataset>.{json,md}``.

    python benchmarks/fusion.py --dataset ml-100k --seeds 0 1 2
    python benchmarks/fusion.py --dataset amazon-mi --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from scipy import stats

from mtlrec.baselines import BASELINES, Recommender, make_baseline
from mtlrec.config.experiment import ExperimentConfig
from mtlrec.config.fusion import FusionConfig
from mtlrec.config.loading import load_config
from mtlrec.data.fetch import FetchSettings
from mtlrec.evaluation.protocol import evaluate_ranking, rows_score_fn
from mtlrec.fusion import FusionInput, make_fusion, out_of_fold_ndcg
from mtlrec.fusion.rerank import MMRReranker
from mtlrec.models.scoring import ranking_tasks
from mtlrec.models.sequential_factory import sequential_params
from mtlrec.pipeline.cascade import (
    build_cascade,
    evaluate_cascade,
    fit_cascade,
    fit_retrievers,
    full_head_scores,
)
from mtlrec.pipeline.experiment import train_model
from mtlrec.pipeline.run_data import RunData, load_run_data
from mtlrec.pipeline.sequential import train_sequential, user_score_fn
from mtlrec.pipeline.trained_run import TrainedRun, item_features_for, trained_run

ROOT = Path(__file__).resolve().parents[1]
KS = (10, 20)
DATASETS: dict[str, dict[str, Any]] = {
    "ml-100k": {
        "config": "configs/ml-100k-interest.yaml",
        "sequential": "configs/ml-100k-sequential.yaml",
        # the sequential preset's settings for random splits, chosen on validation there
        # (benchmarks/results/sequential_selection_ml-100k-random.md)
        "sequential_random": [
            "model.params.encoder=pooled",
            "model.params.history_order=shuffled",
            "model.params.max_len=200",
            "model.params.stride=200",
            "model.params.item_item=true",
            "model.params.item_item_ease=500",
            # ranked after the whole history, not the 200-item training window: the same
            # trained model's validation NDCG@10 0.2606 -> 0.2666 (seed 0)
            "model.params.history_len=1000",
            # the leave-one-out preset's seen-item-free softmax did not validate higher here
            "model.params.exclude_seen=false",
        ],
        "fusion": "configs/fusion/ml-100k.yaml",
        "formula": "mtl_interest * (0.5 + 0.5 * mtl_like) * (0.6 + 0.1 * mtl_rating)",
        "params": {
            "als": {"factors": 64, "iterations": 15, "regularization": 0.05},
            "bpr": {"factors": 64, "iterations": 100},
            "ease": {"l2": 500.0},
            "item_knn": {"neighbours": 100, "shrink": 10.0},
            "user_knn": {"neighbours": 100, "shrink": 10.0},
        },
    },
    "amazon-mi": {
        "config": "configs/amazon-musical-instruments.yaml",
        "sequential": "configs/amazon-mi-sequential.yaml",
        # the sequential preset's settings for random splits, chosen on validation there
        # (benchmarks/results/sequential_selection_amazon-mi-random.md)
        "sequential_random": ["model.params.encoder=pooled", "model.params.history_order=shuffled"],
        "fusion": "configs/fusion/amazon-musical-instruments.yaml",
        "formula": "mtl_interest * (0.6 + 0.1 * mtl_rating) * (0.5 + 0.5 * mtl_sentiment)",
        "params": {
            "als": {"factors": 32, "iterations": 15, "regularization": 0.05},
            "bpr": {"factors": 32, "iterations": 100},
            "ease": {"l2": 100.0},
            "item_knn": {"neighbours": 100, "shrink": 10.0},
            "user_knn": {"neighbours": 100, "shrink": 10.0},
        },
    },
}
FUSIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "linear": ("linear", {"normalization": "zscore", "k": 10}),
    "softmax": ("softmax", {"normalization": "zscore"}),
    "rrf": ("rrf", {}),
    "stacking (lightgbm)": ("stacking", {"model": "lightgbm", "n_jobs": 1}),
    "stacking (logistic)": ("stacking", {"model": "logistic", "n_jobs": 1}),
}
TRADE_OFFS = (1.0, 0.9, 0.8, 0.6, 0.4)
SEEDED = {"als": "random_state", "bpr": "random_state", "two_tower": "seed"}


def _summary(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """The headline numbers of one evaluation (``all`` slice, plus cold NDCG)."""
    row = results["all"]
    out = {
        key: float(row[key])
        for key in (
            "ndcg@10",
            "recall@10",
            "mrr@10",
            "hr@10",
            "coverage@10",
            "diversity@10",
            "novelty@10",
            "arp@10",
        )
        if key in row
    }
    if "cold" in results and results["cold"].get("n_users"):
        out["cold_ndcg@10"] = float(results["cold"]["ndcg@10"])
        out["cold_users"] = float(results["cold"]["n_users"])
    if "retrieval" in results:
        out.update({f"retrieval_{k}": float(v) for k, v in results["retrieval"].items()})
    return out


def sequential_scores(
    config: ExperimentConfig,
    settings: FetchSettings,
    console: Console,
    like: RunData,
    run_dir: Path,
    users: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Train the sequential multi-task model of ``config`` (same dataset, split and seed as
    ``like``) and score every item for each split's users: ``split -> (n_users, n_items)``
    retrieval scores, with the training time (``fit_s``) and the median training
    samples/s over epochs (``samples_per_s``: target positions per second)."""
    data = load_run_data(config, settings, console)
    if not torch.equal(data.examples.split, like.examples.split) or (
        data.entities.item_ids != like.entities.item_ids
    ):
        raise RuntimeError("the sequential preset's split or items differ from the run's")
    start = time.perf_counter()
    model, trainer, seq = train_sequential(config, data, run_dir, progress=False)
    seconds = time.perf_counter() - start
    speeds = [h["train/samples_per_s"] for h in trainer.state.history if "train/samples_per_s" in h]
    timings = {"fit_s": seconds, "samples_per_s": float(np.median(speeds)) if speeds else 0.0}
    max_len = sequential_params(config).max_len
    scores = {}
    for split, rows in users.items():
        fn = user_score_fn(model, seq.histories[1 if split == "valid" else 2], max_len)
        chunks = [rows[at : at + 256] for at in range(0, len(rows), 256)]
        scores[split] = np.concatenate([fn(torch.from_numpy(c)).numpy() for c in chunks])
    return scores, timings


def fit_baselines(
    run: TrainedRun, params: dict[str, dict[str, Any]], seed: int
) -> tuple[dict[str, Recommender], dict[str, float]]:
    """Every registered baseline fitted on the run's training interactions, with each
    one's fit time in seconds."""
    fitted: dict[str, Recommender] = {}
    seconds: dict[str, float] = {}
    for name in BASELINES.names():
        kwargs = dict(params.get(name, {}))
        if name in SEEDED:
            kwargs[SEEDED[name]] = seed
        start = time.perf_counter()
        model = make_baseline(name, **kwargs)
        fitted[name] = model.fit(run.ranking.train, item_features_for(model, run))
        seconds[name] = time.perf_counter() - start
    return fitted, seconds


def one_seed(
    dataset: str,
    seed: int,
    settings: FetchSettings,
    console: Console,
    overrides: tuple[str, ...] = (),
    cascade: bool = True,
    run_name: str | None = None,
    sequential: bool = True,
) -> dict[str, Any]:
    """Every single model, every fusion and (``cascade``) the cascade rows for one seed.

    ``overrides`` are config overrides of the dataset preset (e.g. another split protocol,
    as ``benchmarks/peers/mtlrec_ranking.py`` passes); ``run_name`` names the run folder
    under ``runs/bench-fusion/`` (default ``<dataset>-seed<seed>``); ``sequential``: the
    dataset's sequential multi-task model (same overrides) is a source too
    (``mtl_sequential``).
    """
    spec = DATASETS[dataset]
    config = load_config(ExperimentConfig, ROOT / spec["config"], [*overrides, f"seed={seed}"])
    data = load_run_data(config, settings, console)
    start = time.perf_counter()
    run_dir = ROOT / "runs" / "bench-fusion" / (run_name or f"{dataset}-seed{seed}")
    model, _ = train_model(config, data, run_dir, progress=False)
    run = trained_run(run_dir, config, data, model, settings)
    timings = {"mtl_train_s": time.perf_counter() - start}
    vectors = run.item_embeddings()
    ranking = run.ranking

    start = time.perf_counter()
    baselines, fit_seconds = fit_baselines(run, spec["params"], seed)
    timings["baselines_fit_s"] = time.perf_counter() - start
    timings.update({f"fit_{name}_s": s for name, s in fit_seconds.items()})
    tasks = ranking_tasks(model, None)
    users = {split: ranking.pairs[split].user_rows for split in ("valid", "test")}
    inputs: dict[str, FusionInput] = {}
    sequential_matrices: dict[str, np.ndarray] = {}
    if sequential and "sequential" in spec:
        # the run's split (the preset's own may be another protocol), and on a random
        # split the settings validated there
        split = config.data.split
        extra = list(spec.get("sequential_random", [])) if split.strategy == "random" else []
        seq_config = load_config(
            ExperimentConfig, ROOT / spec["sequential"], [*overrides, *extra, f"seed={seed}"]
        )
        seq_config = seq_config.model_copy(
            update={"data": seq_config.data.model_copy(update={"split": split})}
        )
        sequential_matrices, seq_timings = sequential_scores(
            seq_config, settings, console, data, run_dir.with_name(run_dir.name + "-seq"), users
        )
        timings["fit_mtl_sequential_s"] = seq_timings["fit_s"]
        timings["mtl_sequential_samples_per_s"] = seq_timings["samples_per_s"]
    start = time.perf_counter()
    for split, rows in users.items():
        # every source reads each user's interactions of the earlier splits, as the
        # multi-task models do (baselines fitted on train, scored from train + valid)
        known = ranking.seen[split]
        scores = {name: b.with_history(known).score(rows) for name, b in baselines.items()}
        if sequential_matrices:
            scores["mtl_sequential"] = sequential_matrices[split]
        scores.update({f"mtl_{t}": v for t, v in full_head_scores(run, tasks, rows).items()})
        inputs[split] = FusionInput(
            scores=scores,
            exclude=ranking.excluded(split, rows),
            user_activity=ranking.user_activity[rows],
            item_popularity=ranking.item_popularity,
        )
    timings["scoring_s"] = time.perf_counter() - start

    def evaluate(split: str, matrix: np.ndarray) -> dict[str, float]:
        fn = rows_score_fn(users[split], matrix)
        return _summary(evaluate_ranking(ranking, split, fn, KS, vectors))

    rows_out: dict[str, dict[str, Any]] = {}
    for name in inputs["test"].scores:
        kind = (
            "multi-task model"
            if name == "mtl_sequential"
            else "multi-task head"
            if name.startswith("mtl_")
            else "single model"
        )
        rows_out[name] = {
            "kind": kind,
            "valid": evaluate("valid", inputs["valid"].scores[name]),
            "test": evaluate("test", inputs["test"].scores[name]),
        }
        console.print(f"{name:24s} test ndcg@10 {rows_out[name]['test']['ndcg@10']:.4f}")

    relevant = ranking.relevant("valid", users["valid"])
    head_names = [f"mtl_{t}" for t in tasks]
    heads_only = {
        split: FusionInput(
            scores={n: inputs[split].scores[n] for n in head_names},
            exclude=inputs[split].exclude,
            user_activity=inputs[split].user_activity,
            item_popularity=inputs[split].item_popularity,
        )
        for split in inputs
    }
    plans: list[tuple[str, str, dict[str, Any], dict[str, FusionInput], str]] = [
        (label, name, params, inputs, "fusion (all models)")
        for label, (name, params) in FUSIONS.items()
    ]
    plans += [
        ("heads: formula", "formula", {"formula": spec["formula"]}, heads_only, "multi-objective"),
        ("heads: linear", "linear", {"normalization": "zscore"}, heads_only, "multi-objective"),
    ]
    for label, name, params, fusion_inputs, kind in plans:
        start = time.perf_counter()
        fusion = make_fusion(name, **params).fit(fusion_inputs["valid"], relevant)
        fit_s = time.perf_counter() - start
        row = {
            "kind": kind,
            "valid": evaluate("valid", fusion.fuse(fusion_inputs["valid"])),
            "test": evaluate("test", fusion.fuse(fusion_inputs["test"])),
            "weights": fusion.weights(),
            "fit_s": round(fit_s, 2),
        }
        if hasattr(fusion, "oof_ndcg_"):  # stacking cross-fits itself
            row["valid_out_of_fold_ndcg@10"] = float(fusion.oof_ndcg_)
        else:
            row["valid_out_of_fold_ndcg@10"] = out_of_fold_ndcg(
                lambda name=name, params=params: make_fusion(name, **params),
                fusion_inputs["valid"],
                relevant,
                k=10,
                seed=seed,
            )
        rows_out[label] = row
        console.print(f"{label:24s} test ndcg@10 {row['test']['ndcg@10']:.4f} ({fit_s:.1f}s)")

    if not cascade:
        return {"rows": rows_out, "timings_s": {k: round(v, 2) for k, v in timings.items()}}
    fusion_config = load_config(FusionConfig, ROOT / spec["fusion"])
    for retriever in fusion_config.retrievers.values():
        if retriever.baseline in SEEDED:
            retriever.params[SEEDED[retriever.baseline]] = seed
    start = time.perf_counter()
    retrievers = fit_retrievers(fusion_config, run)
    fusion = make_fusion(fusion_config.fusion.name, **fusion_config.fusion.params)
    cascade = fit_cascade(build_cascade(fusion_config, run, retrievers, fusion), ranking)
    timings["cascade_fit_s"] = time.perf_counter() - start
    for trade_off in (None, *TRADE_OFFS):
        cascade.reranker = (
            None if trade_off is None else MMRReranker(trade_off=trade_off, k=max(KS))
        )
        label = "cascade" if trade_off is None else f"cascade + MMR {trade_off}"
        row = {"kind": "cascade" if trade_off is None else "cascade + rerank"}
        for split in ("valid", "test") if trade_off is None else ("test",):
            row[split] = _summary(evaluate_cascade(cascade, ranking, split, KS, vectors))
        rows_out[label] = row
        console.print(
            f"{label:24s} test ndcg@10 {row['test']['ndcg@10']:.4f} "
            f"diversity@10 {row['test'].get('diversity@10', float('nan')):.4f}"
        )
    return {"rows": rows_out, "timings_s": {k: round(v, 2) for k, v in timings.items()}}


def _valid_ndcg(row: dict[str, Any]) -> float:
    """A row's validation NDCG@10 for model selection: out-of-fold for every fitted fusion
    (its in-sample validation score is what it was fitted on); single models were fitted on
    train, so their validation score is already out of sample."""
    return float(row.get("valid_out_of_fold_ndcg@10", row["valid"]["ndcg@10"]))


def best_row(rows: dict[str, Any], kinds: tuple[str, ...]) -> str:
    """The row of ``kinds`` with the highest validation NDCG@10 (see :func:`_valid_ndcg`)."""
    eligible = {n: r for n, r in rows.items() if r["kind"] in kinds and "valid" in r}
    return max(eligible, key=lambda n: _valid_ndcg(eligible[n]))


def aggregate(per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Mean and std over seeds per row; best single / best fusion by validation, per seed."""
    seeds = sorted(per_seed)
    names = list(per_seed[seeds[0]]["rows"])
    table: dict[str, Any] = {}
    for name in names:
        rows = [per_seed[s]["rows"][name] for s in seeds]
        metrics = rows[0]["test"].keys()
        table[name] = {
            "kind": rows[0]["kind"],
            "test": {
                m: {
                    "mean": float(np.mean([r["test"][m] for r in rows])),
                    "std": float(np.std([r["test"][m] for r in rows])),
                }
                for m in metrics
            },
        }
    singles = ("single model", "multi-task head", "multi-task model")
    fusions = ("fusion (all models)", "multi-objective")  # cascade rows: reported, not chosen
    choice = []
    for s in seeds:
        rows = per_seed[s]["rows"]
        single, fused = best_row(rows, singles), best_row(rows, fusions)
        choice.append(
            {
                "seed": s,
                "best_single": single,
                "best_fusion": fused,
                "single_ndcg@10": rows[single]["test"]["ndcg@10"],
                "fusion_ndcg@10": rows[fused]["test"]["ndcg@10"],
            }
        )
    single_scores = np.array([c["single_ndcg@10"] for c in choice])
    fusion_scores = np.array([c["fusion_ndcg@10"] for c in choice])
    summary: dict[str, Any] = {
        "selection": "best single model and best fusion chosen by validation NDCG@10 per seed; "
        "fusions by their out-of-fold (5 folds of validation users) validation NDCG",
        "per_seed": choice,
        "single_ndcg@10_mean": float(single_scores.mean()),
        "fusion_ndcg@10_mean": float(fusion_scores.mean()),
        "ratio": float(fusion_scores.mean() / single_scores.mean()),
        "goal": "ratio >= 1.05",
    }
    if len(seeds) > 1:
        summary["paired_t_test_p"] = float(stats.ttest_rel(fusion_scores, single_scores).pvalue)
    return {"table": table, "summary": summary}


def markdown(dataset: str, result: dict[str, Any], command: str) -> str:
    columns = ("ndcg@10", "recall@10", "coverage@10", "diversity@10", "novelty@10", "cold_ndcg@10")
    lines = [
        f"# Fusion benchmark: {dataset}",
        "",
        f"`{command}` — seeds {result['seeds']}; full ranking over all items; test split; "
        "fusion weights and meta-models fitted on validation only; mean ± std over seeds.",
        "",
        "| model | kind | " + " | ".join(columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for name, row in result["aggregate"]["table"].items():
        cells = []
        for column in columns:
            value = row["test"].get(column)
            cells.append("—" if value is None else f"{value['mean']:.4f} ± {value['std']:.4f}")
        lines.append(f"| {name} | {row['kind']} | " + " | ".join(cells) + " |")
    summary = result["aggregate"]["summary"]
    lines += [
        "",
        f"Best single (by validation) mean test NDCG@10 {summary['single_ndcg@10_mean']:.4f}; "
        f"best fusion {summary['fusion_ndcg@10_mean']:.4f}; ratio **{summary['ratio']:.3f}** "
        f"(goal {summary['goal']}; selection: {summary['selection']})"
        + (
            f"; paired t-test p = {summary['paired_t_test_p']:.3g}"
            if "paired_t_test_p" in summary
            else ""
        )
        + ".",
        "",
        "Per seed: "
        + "; ".join(
            f"seed {c['seed']}: {c['best_fusion']} {c['fusion_ndcg@10']:.4f} vs "
            f"{c['best_single']} {c['single_ndcg@10']:.4f}"
            for c in summary["per_seed"]
        ),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="ml-100k")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--cache-dir", type=Path, default=FetchSettings().cache_dir)
    args = parser.parse_args()
    console = Console()
    settings = FetchSettings(cache_dir=args.cache_dir, mirrors=(args.mirror,))
    per_seed = {}
    for seed in args.seeds:
        start = time.perf_counter()
        per_seed[seed] = one_seed(args.dataset, seed, settings, console)
        per_seed[seed]["wall_s"] = round(time.perf_counter() - start, 1)
    command = "python benchmarks/fusion.py " + " ".join(sys.argv[1:])
    result = {
        "benchmark": "fusion",
        "dataset": args.dataset,
        "command": command,
        "seeds": args.seeds,
        "protocol": "full ranking over all items; test split; train+valid items excluded; "
        "fusion fitted on validation only",
        "aggregate": aggregate(per_seed),
        "per_seed": per_seed,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"fusion_{args.dataset}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"fusion_{args.dataset}.md").write_text(markdown(args.dataset, result, command))
    console.print(markdown(args.dataset, result, command))


if __name__ == "__main__":
    main()
