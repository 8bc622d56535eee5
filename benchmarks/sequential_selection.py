"""Selection runs of the sequential multi-task model's presets: every candidate chosen on
validation, every run recorded.

A candidate is a named list of ``--set`` overrides on a dataset's sequential preset
(``configs/<dataset>-sequential.yaml``) under a peers split protocol (the split
overrides of ``benchmarks/peers/split_files.py``). Each (candidate, seed) trains one run
(``runs/bench-seqsel/...``; an interrupted run of the same config resumes from its last
checkpoint) and appends a row to
``benchmarks/results/sequential_selection_<dataset>-<protocol>.json``: validation NDCG@10
(the selection metric), epochs, epoch time and, for the record only, test NDCG@10. Rows
already there are not run again, so the script resumes after an interruption. The
Markdown beside it ranks candidates by mean validation NDCG@10.

    python benchmarks/sequential_selection.py --dataset amazon-mi --protocol loo \\
        --candidate base --candidate "t4=model.params.temperature=4" --seeds 0
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from rich.console import Console

from mtlrec.config.experiment import ExperimentConfig
from mtlrec.config.loading import load_config
from mtlrec.data.fetch import FetchSettings
from mtlrec.pipeline.experiment import run_experiment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))
from split_files import PROTOCOLS  # noqa: E402  (benchmarks/peers/split_files.py)

RESULTS = ROOT / "benchmarks" / "results"
PRESETS = {
    "ml-100k": "configs/ml-100k-sequential.yaml",
    "amazon-mi": "configs/amazon-mi-sequential.yaml",
    "amazon-gift-cards": "configs/amazon-gift-cards-sequential.yaml",
    "amazon-magazine": "configs/amazon-magazine-sequential.yaml",
    "retailrocket": "configs/retailrocket-sequential.yaml",
}
MONITOR = "ranking (all)"


def parse_candidate(text: str) -> tuple[str, list[str]]:
    """``name=key=value;key=value`` (or just ``name``: the preset as it is)."""
    name, _, rest = text.partition("=")
    return name, [part for part in rest.split(";") if part] if rest else []


def code_version() -> str:
    """The commit the run's code is at, ``+dirty`` with uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain") else "")


def unfinished_run(run_dir: Path, config: ExperimentConfig) -> bool:
    """Whether ``run_dir`` holds an interrupted run of this very config (a checkpoint after
    an epoch, the same ``config.yaml``): it resumes there instead of starting afresh.
    Wall time and epoch times then count the resumed part only (the epochs' times are
    also in the run's history)."""
    saved = run_dir / "config.yaml"
    if not (run_dir / "checkpoints" / "last.pt").is_file() or not saved.is_file():
        return False
    return bool(yaml.safe_load(saved.read_text()) == config.model_dump(mode="json"))


def run_one(
    dataset: str,
    protocol: str,
    overrides: list[str],
    seed: int,
    run_dir: Path,
    settings: FetchSettings,
) -> dict[str, Any]:
    """Train one candidate on one seed; the row the results file keeps."""
    config = load_config(
        ExperimentConfig,
        ROOT / PRESETS[dataset],
        [*PROTOCOLS[protocol], *overrides, f"seed={seed}"],
    )
    start = time.perf_counter()
    resume = unfinished_run(run_dir, config)
    if resume:
        print(f"resuming {run_dir} from its last checkpoint", flush=True)
    payload = run_experiment(config, run_dir, settings, Console(quiet=True), resume=resume)
    wall = time.perf_counter() - start
    valid, test = payload["results"]["valid"], payload["results"]["test"]
    epoch_s = [h["train/epoch_s"] for h in payload["history"] if "train/epoch_s" in h]
    return {
        "seed": seed,
        "valid_ndcg@10": valid[MONITOR]["ndcg@10"],
        "test_ndcg@10": test[MONITOR]["ndcg@10"],
        "valid": {k: v for k, v in valid.items() if k != MONITOR},
        "epochs_run": payload["epochs_run"],
        "best_epoch": payload["best_epoch"],
        "median_epoch_s": round(float(np.median(epoch_s)), 2) if epoch_s else None,
        "wall_s": round(wall, 1),
        "code": code_version(),
    }


REFERENCE_PARAMS: dict[str, dict[str, Any]] = {
    "ease": {"l2": 500.0},
    "item_knn": {"neighbours": 100, "shrink": 10.0},
    "user_knn": {"neighbours": 100, "shrink": 10.0},
}


def reference_rows(
    dataset: str, protocol: str, names: list[str], settings: FetchSettings
) -> dict[str, Any]:
    """Classic baselines fitted on the same split's training interactions, for context
    beside the candidates: validation and test NDCG@10 (full ranking, earlier splits'
    items excluded, test users scored from train + valid; never used to choose)."""
    from mtlrec.baselines import make_baseline
    from mtlrec.evaluation.protocol import evaluate_ranking, ranking_data
    from mtlrec.pipeline.run_data import load_run_data

    config = load_config(ExperimentConfig, ROOT / PRESETS[dataset], PROTOCOLS[protocol])
    data = load_run_data(config, settings, Console(quiet=True))
    ranking = ranking_data(data.examples, len(data.entities.user_ids), len(data.entities.item_ids))
    rows = {}
    for name in names:
        model = make_baseline(name, **REFERENCE_PARAMS.get(name, {}))
        start = time.perf_counter()
        model.fit(ranking.train, None)
        fit_s = time.perf_counter() - start
        rows[name] = {
            "params": REFERENCE_PARAMS.get(name, {}),
            "fit_s": round(fit_s, 2),
            **{
                # scored from each user's earlier splits (test: train + valid), as the
                # sequential model reads them; fitted on train alone
                f"{split}_ndcg@10": evaluate_ranking(
                    ranking, split, model.with_history(ranking.seen[split]).score_fn(), (10,)
                )["all"]["ndcg@10"]
                for split in ("valid", "test")
            },
        }
        print(f"reference {name}: {rows[name]}", flush=True)
    return rows


def write_markdown(path: Path, payload: dict[str, Any]) -> None:
    rows = []
    for name, entry in payload["candidates"].items():
        runs = entry["runs"]
        if not runs:
            continue
        valid = [r["valid_ndcg@10"] for r in runs]
        test = [r["test_ndcg@10"] for r in runs]
        rows.append((float(np.mean(valid)), name, entry["overrides"], valid, test, runs))
    rows.sort(reverse=True)
    lines = [
        f"# Sequential preset selection: {payload['dataset']} ({payload['protocol']})",
        "",
        "Chosen by mean validation NDCG@10 (full ranking, train items excluded); test is",
        "recorded, never used to choose. Rows are comparable only at the same code: the",
        "model changed while the selection ran (`code`: the commit, `not recorded` for runs",
        "before it was recorded; see the commit history of `models/sequential.py`).",
        "",
        "| candidate | overrides | valid NDCG@10 | test NDCG@10 | seeds | best epoch | epoch s "
        "| code |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mean_valid, name, overrides, valid, test, runs in rows:
        lines.append(
            f"| {name} | `{'; '.join(overrides) or '(preset)'}` | {mean_valid:.4f} ± "
            f"{np.std(valid):.4f} | {np.mean(test):.4f} | {len(runs)} | "
            f"{', '.join(str(r['best_epoch']) for r in runs)} | "
            f"{np.median([r['median_epoch_s'] or 0 for r in runs]):.1f} | "
            f"{', '.join(sorted({r.get('code', 'not recorded') for r in runs}))} |"
        )
    references = payload.get("references", {})
    if references:
        lines += [
            "",
            "Reference baselines on the same split, fitted on the training interactions, test "
            "users scored from train + valid "
            "(context only):",
            "",
            "| baseline | params | valid NDCG@10 | test NDCG@10 |",
            "|---|---|---|---|",
            *(
                f"| {name} | `{row['params']}` | {row['valid_ndcg@10']:.4f} | "
                f"{row['test_ndcg@10']:.4f} |"
                for name, row in references.items()
            ),
        ]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(PRESETS), required=True)
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="loo")
    parser.add_argument(
        "--candidate",
        action="append",
        default=[],
        help="name=override;override (overrides separated by ';')",
    )
    parser.add_argument(
        "--references",
        nargs="*",
        default=[],
        help="classic baselines to record beside the candidates (e.g. ease item_knn)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache-dir", type=Path, default=FetchSettings().cache_dir)
    parser.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    settings = FetchSettings(cache_dir=args.cache_dir, mirrors=(args.mirror,))
    torch.set_num_threads(args.threads)
    stem = f"sequential_selection_{args.dataset}-{args.protocol}"
    out = RESULTS / f"{stem}.json"
    payload: dict[str, Any] = (
        json.loads(out.read_text())
        if out.exists()
        else {"dataset": args.dataset, "protocol": args.protocol, "candidates": {}}
    )
    if args.references:
        rows = reference_rows(args.dataset, args.protocol, args.references, settings)
        if out.exists():
            payload = json.loads(out.read_text())
        payload.setdefault("references", {}).update(rows)
        out.write_text(json.dumps(payload, indent=1) + "\n")
        write_markdown(RESULTS / f"{stem}.md", payload)
    for text in args.candidate:
        name, overrides = parse_candidate(text)
        entry = payload["candidates"].setdefault(name, {"overrides": overrides, "runs": []})
        if entry["overrides"] != overrides:
            raise SystemExit(f"candidate {name!r} was recorded with other overrides")
        for seed in args.seeds:
            if any(r["seed"] == seed for r in entry["runs"]):
                continue
            run_dir = (
                ROOT
                / "runs"
                / "bench-seqsel"
                / f"{args.dataset}-{args.protocol}"
                / (f"{name}-s{seed}")
            )
            row = run_one(args.dataset, args.protocol, overrides, seed, run_dir, settings)
            # re-read before writing: another selection process may have added rows
            if out.exists():
                payload = json.loads(out.read_text())
            entry = payload["candidates"].setdefault(name, {"overrides": overrides, "runs": []})
            entry["runs"].append(row)
            out.write_text(json.dumps(payload, indent=1) + "\n")
            write_markdown(RESULTS / f"{stem}.md", payload)
            print(
                f"{name} seed {seed}: valid {row['valid_ndcg@10']:.4f} test "
                f"{row['test_ndcg@10']:.4f} best epoch {row['best_epoch']} "
                f"({row['median_epoch_s']} s/epoch)",
                flush=True,
            )


if __name__ == "__main__":
    main()
