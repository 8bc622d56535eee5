"""mtlrec's best single model and best fusion on a peers split, beside RecBole (issue 5).

Per seed, on the split that ``split_files.py`` wrote (the files are read back and checked
pair by pair against the split mtlrec trains on, so both frameworks see the same rows):
the dataset preset's multi-task model is trained, every mtlrec baseline is fitted on the
same training interactions, and every fusion is fitted on validation — exactly
``benchmarks/fusion.py``'s ``one_seed`` with the protocol's split overrides and without
the cascade rows. The best single model and the best fusion are chosen per seed by
validation NDCG@10 (fusions by out-of-fold validation NDCG); their test Recall, NDCG, MRR
and Hit at 10 are reported by the same full-ranking evaluator RecBole's scores go through
in ``recbole_runner.py`` (every item ranked, train + valid items excluded).

Wall time: for a single model, its fit; for a fusion, the whole seed (multi-task training,
every baseline, scoring, every fusion fitted and evaluated), since it needs all of them.

    python benchmarks/peers/mtlrec_ranking.py --split ml-100k-random --seeds 0 1 2
    python benchmarks/peers/mtlrec_ranking.py --split amazon-mi-loo --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from split_files import SPLITS_DIR, check_same_split, experiment_config, read_split, split_frame

from mtlrec.data.fetch import FetchSettings

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import fusion as fusion_bench  # noqa: E402  (benchmarks/fusion.py)

METRICS = ("recall@10", "ndcg@10", "mrr@10", "hr@10")


def best_rows(result: dict[str, Any], wall_s: float) -> dict[str, Any]:
    """The seed's best single model and best fusion (chosen on validation) with their test
    metrics and wall time."""
    rows = result["rows"]
    timings = result["timings_s"]
    single = fusion_bench.best_row(rows, ("single model", "multi-task head", "multi-task model"))
    fused = fusion_bench.best_row(rows, ("fusion (all models)", "multi-objective"))
    single_wall = timings.get(f"fit_{single}_s", timings["mtl_train_s"])
    out: dict[str, Any] = {}
    if "mtl_sequential" in rows:  # the multi-task model alone, whatever validation prefers
        out["multitask_model"] = {
            "model": "mtl_sequential",
            "test": {m: rows["mtl_sequential"]["test"][m] for m in METRICS},
            "wall_s": round(timings["fit_mtl_sequential_s"], 2),
            "train_samples_per_s": round(timings["mtl_sequential_samples_per_s"], 1),
        }
    return {
        **out,
        "best_single": {
            "model": single,
            "test": {m: rows[single]["test"][m] for m in METRICS},
            "wall_s": round(single_wall, 2),
        },
        "best_fusion": {
            "model": fused,
            "test": {m: rows[fused]["test"][m] for m in METRICS},
            "wall_s": round(wall_s, 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="ml-100k-random", help="a folder in --splits")
    parser.add_argument("--splits", type=Path, default=SPLITS_DIR)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=None, help="JSON (default: results/peers)")
    parser.add_argument("--cache-dir", type=Path, default=FetchSettings().cache_dir)
    parser.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = args.splits / args.split
    manifest, frames = read_split(folder)
    settings = FetchSettings(cache_dir=args.cache_dir, mirrors=(args.mirror,))
    config, overrides = experiment_config(manifest["dataset"], manifest["protocol"])
    frame, _ = split_frame(config, settings)
    check_same_split(frame, frames, folder)
    console = Console()
    out = args.out or ROOT / "benchmarks" / "results" / "peers" / f"mtlrec_{args.split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/peers/mtlrec_ranking.py " + " ".join(sys.argv[1:])
    sha = {f: i["sha256"] for f, i in manifest["files"].items()}
    # seeds already in the file (same split files) are kept: the run resumes per seed
    per_seed: dict[int, Any] = {}
    if out.exists():
        done = json.loads(out.read_text())
        if done.get("split_files_sha256") == sha:
            per_seed = {int(s): row for s, row in done["per_seed"].items()}
    for seed in args.seeds:
        if seed in per_seed and "multitask_model" in per_seed[seed]:
            continue
        start = time.perf_counter()
        result = fusion_bench.one_seed(
            manifest["dataset"],
            seed,
            settings,
            console,
            overrides=tuple(overrides),
            cascade=False,
            run_name=f"peers-{args.split}-seed{seed}",
        )
        wall = time.perf_counter() - start
        per_seed[seed] = {**best_rows(result, wall), **result, "wall_s": round(wall, 2)}
        best = per_seed[seed]
        console.print(
            f"seed {seed}: best single {best['best_single']['model']} "
            f"{best['best_single']['test']['ndcg@10']:.4f}, best fusion "
            f"{best['best_fusion']['model']} {best['best_fusion']['test']['ndcg@10']:.4f} "
            f"({wall:.0f}s)"
        )
        payload = {
            "framework": "mtlrec",
            "split": args.split,
            "protocol": manifest["protocol"],
            "split_files_sha256": sha,
            "command": command,
            "threads": torch.get_num_threads(),
            "per_seed": dict(sorted(per_seed.items())),
        }
        out.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"-> {out}")


if __name__ == "__main__":
    main()
