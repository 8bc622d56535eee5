"""Multi-task vs single-task models of the same size, side by side, on the same split.

For each dataset preset and seed, trains the preset's multi-task model and, for every task,
the same architecture with that one head (same inputs, backbone sizes, epochs, early
stopping on the validation split), then compares their test metrics. The sequential
presets (``*-seq``) keep their retrieval task in every twin (it is the architecture's
output over the catalogue) with weight 0 where another task is the single one, so each
twin learns from its own task's loss alone. Reports per task the
mean and std over seeds, the MTL - STL difference, the MTL/STL ratio and a paired t-test
over seeds. Run on purpose (``make bench``); results go to ``--out`` (JSON) and a Markdown
table beside it.

    python benchmarks/mtl_vs_stl.py --seeds 0 1 2 --out benchmarks/results/mtl_vs_stl.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from scipy import stats

import mtlrec
from mtlrec.config.experiment import ExperimentConfig, TaskConfig
from mtlrec.config.loading import load_config
from mtlrec.data.fetch import FetchSettings
from mtlrec.models.architectures import Architecture, SequentialArchitecture
from mtlrec.pipeline.evaluate import evaluate_run
from mtlrec.pipeline.experiment import train_model
from mtlrec.pipeline.run_data import RunData, load_run_data
from mtlrec.pipeline.sequential import evaluate_sequential, train_sequential

ROOT = Path(__file__).resolve().parents[1]
PRIMARY = {
    "binary": ("auc", "max"),
    "regression": ("rmse", "min"),
    "multiclass": ("macro_f1", "max"),
    "multilabel": ("auc", "max"),
}
PRESETS = {
    "ml-100k": "configs/ml-100k.yaml",
    "amazon-musical-instruments": "configs/amazon-musical-instruments.yaml",
    "ml-100k-seq": "configs/ml-100k-sequential.yaml",
    "amazon-mi-seq": "configs/amazon-mi-sequential.yaml",
    "amazon-magazine-seq": "configs/amazon-magazine-sequential.yaml",
    "amazon-gift-cards-seq": "configs/amazon-gift-cards-sequential.yaml",
}


def single_task(config: ExperimentConfig, task: str, kind: str | None) -> ExperimentConfig:
    """The preset restricted to ``task``: same model sizes, one head, no task weighting.

    Early stopping watches the task's own primary validation metric (``kind`` None: a
    sequential preset's retrieval task, which keeps the preset's ranking monitor).
    """
    tasks = config.tasks or {}
    only = {task: tasks.get(task, TaskConfig())}
    weighting = config.weighting.model_copy(update={"name": "equal", "params": {}})
    architecture = Architecture.of(config)
    if isinstance(architecture, SequentialArchitecture) and task != architecture.retrieval_task:
        # the retrieval task stays (the architecture's output) with no loss: static weights
        retrieval = architecture.retrieval_task
        only[task] = only[task].model_copy(update={"weight": 1.0})
        only[retrieval] = tasks.get(retrieval, TaskConfig()).model_copy(update={"weight": 0.0})
        weighting = config.weighting.model_copy(update={"name": "static", "params": {}})
    stopping = config.training.early_stopping
    if stopping is not None and kind is not None:
        metric, mode = PRIMARY[kind]
        stopping = stopping.model_copy(update={"monitor": f"valid/{task}/{metric}", "mode": mode})
    ranking = config.evaluation.ranking_task if config.evaluation.ranking_task == task else None
    training = config.training.model_copy(update={"early_stopping": stopping})
    if training.stages:  # one task has one stage: the same number of epochs, all on it
        epochs = sum(stage.epochs for stage in training.stages)
        training = training.model_copy(update={"stages": [], "epochs": epochs})
    return config.model_copy(
        update={
            "name": f"{config.name}-stl-{task}",
            "tasks": only,
            "weighting": weighting,
            "training": training,
            "evaluation": config.evaluation.model_copy(update={"ranking_task": ranking}),
        }
    )


def restrict(data: RunData, tasks: list[str]) -> RunData:
    """The same data (same split, same inputs) with only ``tasks`` trained and evaluated."""
    return replace(data, specs={t: data.specs[t] for t in tasks})


def run_one(config: ExperimentConfig, data: RunData, run_dir: Path) -> dict[str, Any]:
    """Train and test one variant; a run folder that already holds its result (same
    config, fields added since at their defaults) is read back, and one holding an
    interrupted run of the same config resumes from its last checkpoint, so an
    interrupted benchmark resumes."""
    saved = run_dir / "mtl_vs_stl_result.json"
    if saved.is_file():
        done = json.loads(saved.read_text())
        # the saved config read through today's model: a field added since takes its
        # default, so adding one does not retrain every finished run
        same = ExperimentConfig.model_validate(done.get("config", {})).model_dump(mode="json")
        if same == config.model_dump(mode="json"):
            return dict(done["result"])
    started = run_dir / "mtl_vs_stl_config.json"
    dumped = config.model_dump(mode="json")
    # an interrupted run of this very config resumes from its last checkpoint
    resume = (
        (run_dir / "checkpoints" / "last.pt").is_file()
        and started.is_file()
        and json.loads(started.read_text()) == dumped
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    started.write_text(json.dumps(dumped, default=str))
    result = _train_and_test(config, data, run_dir, resume)
    saved.write_text(
        json.dumps({"config": config.model_dump(mode="json"), "result": result}, default=str)
    )
    return result


def _train_and_test(
    config: ExperimentConfig, data: RunData, run_dir: Path, resume: bool = False
) -> dict[str, Any]:
    """Train (``resume``: from the run's last checkpoint) and test one variant; a resumed
    run's ``train_s`` counts the resumed part only."""
    start = time.perf_counter()
    if Architecture.of(config).sequential:
        model, trainer, seq = train_sequential(config, data, run_dir, resume, progress=False)
        trained = time.perf_counter() - start
        results = evaluate_sequential(config, data, model, seq, ("test",))["test"]
    else:
        model, trainer = train_model(config, data, run_dir, resume, progress=False)
        trained = time.perf_counter() - start
        results = evaluate_run(config, data, model, splits=("test",))["test"]
    return {
        "test": results,
        "train_s": round(trained, 1),
        "epochs": trainer.state.epoch,
        "best_epoch": trainer.state.best_epoch,
        "valid_best": trainer.state.best,  # the early-stopping metric at the best epoch
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def summarise(
    runs: dict[str, dict[int, dict[str, Any]]], data: RunData, ranking_task: str | None
) -> dict[str, Any]:
    """Mean, std, difference, ratio and paired t-test per task (and for ranking)."""
    rows: dict[str, Any] = {}
    seeds = sorted(runs["mtl"])
    for task, spec in data.specs.items():
        metric, mode = PRIMARY[spec.kind]
        mtl = [runs["mtl"][s]["test"][task][metric] for s in seeds]
        stl = [runs[f"stl-{task}"][s]["test"][task][metric] for s in seeds]
        rows[f"{task}/{metric}"] = _compare(mtl, stl, mode)
    if ranking_task is not None:
        for metric in ("ndcg@10", "recall@10"):
            mtl = [runs["mtl"][s]["test"]["ranking (all)"][metric] for s in seeds]
            stl = [runs[f"stl-{ranking_task}"][s]["test"]["ranking (all)"][metric] for s in seeds]
            rows[f"ranking/{metric}"] = _compare(mtl, stl, "max")
    return rows


def _compare(mtl: list[float], stl: list[float], mode: str) -> dict[str, Any]:
    diff = [a - b for a, b in zip(mtl, stl, strict=True)]
    better = statistics.mean(diff) > 0 if mode == "max" else statistics.mean(diff) < 0
    p_value = float(stats.ttest_rel(mtl, stl).pvalue) if len(mtl) > 1 and any(diff) else 1.0
    return {
        "mode": mode,
        "mtl_mean": statistics.mean(mtl),
        "mtl_std": statistics.pstdev(mtl),
        "stl_mean": statistics.mean(stl),
        "stl_std": statistics.pstdev(stl),
        "diff_mean": statistics.mean(diff),
        "ratio": statistics.mean(mtl) / statistics.mean(stl),
        "mtl_better": better,
        "paired_t_p": p_value,
        "mtl": mtl,
        "stl": stl,
    }


def markdown(results: dict[str, Any]) -> str:
    lines = ["# MTL vs single-task models (test split, mean ± std over seeds)", ""]
    for dataset, block in results["datasets"].items():
        seeds = ", ".join(str(s) for s in sorted(block["runs"]["mtl"], key=int))
        lines += [
            f"## {dataset}",
            "",
            f"`{block['config']}`"
            + "".join(f" `--set {o}`" for o in block.get("overrides", []))
            + f", seeds {seeds} (paired t-test over seeds).",
            "",
            "| task / metric | MTL | STL | MTL − STL | MTL/STL | paired t p | better |",
            "|---|---|---|---|---|---|---|",
        ]
        for key, row in block["summary"].items():
            lines.append(
                f"| {key} ({row['mode']}) | {row['mtl_mean']:.4f} ± {row['mtl_std']:.4f} | "
                f"{row['stl_mean']:.4f} ± {row['stl_std']:.4f} | {row['diff_mean']:+.4f} | "
                f"{row['ratio']:.3f} | {row['paired_t_p']:.3f} | "
                f"{'MTL' if row['mtl_better'] else 'STL'} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/mtl_vs_stl.json")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=list(PRESETS))
    parser.add_argument("--epochs", type=int, default=None, help="override the presets' epochs")
    parser.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--cache-dir", type=Path, default=FetchSettings().cache_dir)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench-mtl-vs-stl")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override the presets (a candidate); the single-task twins are derived from it",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=None,
        help="train only these variants (mtl, stl-TASK); the summary needs them all",
    )
    parser.add_argument(
        "--label",
        default="",
        help="name of the overridden variant: its multi-task runs go to mtl-LABEL-SEED, so "
        "the preset's runs stay; twins whose config is unchanged are read back",
    )
    args = parser.parse_args()
    settings = FetchSettings(cache_dir=args.cache_dir, mirrors=(args.mirror,))
    console = Console()
    output: dict[str, Any] = {
        "benchmark": "mtl_vs_stl",
        "mtlrec_version": mtlrec.__version__,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "seeds": args.seeds,
        "datasets": {},
    }
    if args.out.is_file():  # other datasets of an earlier run stay (rerun one at a time)
        output["datasets"] = dict(json.loads(args.out.read_text()).get("datasets", {}))
    for dataset in args.datasets:
        overrides = [f"training.epochs={args.epochs}"] if args.epochs else []
        base = load_config(ExperimentConfig, ROOT / PRESETS[dataset], overrides + args.overrides)
        data = load_run_data(base, settings, console)
        runs: dict[str, dict[int, dict[str, Any]]] = {}
        variants = {"mtl": (base, data)}
        for task in data.specs:
            stl = single_task(base, task, data.specs[task].kind)
            variants[f"stl-{task}"] = (stl, restrict(data, [task]))
        architecture = Architecture.of(base)
        if isinstance(architecture, SequentialArchitecture):  # its retrieval task's twin
            retrieval = architecture.retrieval_task
            variants[f"stl-{retrieval}"] = (single_task(base, retrieval, None), restrict(data, []))
        for seed in args.seeds:
            for name, (config, variant_data) in variants.items():
                if args.variants is not None and name not in args.variants:
                    continue
                seeded = config.model_copy(update={"seed": seed})
                folder = f"{name}-{args.label}-{seed}" if args.label and name == "mtl" else None
                run_dir = args.runs / dataset / (folder or f"{name}-{seed}")
                result = run_one(seeded, variant_data, run_dir)
                runs.setdefault(name, {})[seed] = result
                console.print(
                    f"{dataset} seed {seed} {name}: {result['train_s']}s, epochs {result['epochs']}"
                )
        if args.variants is not None:  # a partial run: its runs are saved, no summary
            continue
        output["datasets"][dataset] = {
            "config": str(PRESETS[dataset]),
            "overrides": args.overrides,
            "summary": summarise(runs, data, base.evaluation.ranking_task),
            "runs": runs,
            "text_timings_s": data.timings,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(output, indent=2, default=str) + "\n")
        args.out.with_suffix(".md").write_text(markdown(output))
    console.print(markdown(output))


if __name__ == "__main__":
    main()
