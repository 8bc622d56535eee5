"""Time ``mtlrec data prepare`` on every catalog dataset available here.

Run on purpose (``make bench``), not in the test suite. Each dataset is prepared
``--repeats`` times into a temporary folder with its default config; the JSON written to
``--out`` has, per dataset, the median and min wall time, rows read per second, the
per-step timings of the median run and the counts reported.

    python benchmarks/prepare_speed.py --out benchmarks/results/prepare_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import mtlrec
from mtlrec.data.catalog import DATASETS
from mtlrec.data.fetch import DatasetUnavailableError, FetchSettings
from mtlrec.data.prepare import load_prepare_config, prepare

ROOT = Path(__file__).resolve().parents[1]


def bench_one(name: str, settings: FetchSettings, repeats: int) -> dict[str, Any]:
    config = load_prepare_config(name)
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            result = prepare(config, Path(tmp) / name, settings)
            runs.append((time.perf_counter() - start, result.manifest))
    seconds = [s for s, _ in runs]
    median = statistics.median(seconds)
    manifest = min(runs, key=lambda r: abs(r[0] - median))[1]
    rows = manifest["read"]["rows_read"]
    return {
        "median_s": round(median, 3),
        "min_s": round(min(seconds), 3),
        "runs_s": [round(s, 3) for s in seconds],
        "rows_read": rows,
        "rows_quarantined": manifest["read"]["rows_quarantined"],
        "rows_per_s": round(rows / median),
        "layout": manifest["dataset"]["layout"],
        "counts": {k: v for k, v in manifest["counts"].items() if not isinstance(v, dict)},
        "step_timings_s": manifest["timings_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/prepare_speed.json")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--cache-dir", type=Path, default=FetchSettings().cache_dir)
    parser.add_argument("--datasets", nargs="*", default=None)
    args = parser.parse_args()
    settings = FetchSettings(cache_dir=args.cache_dir, mirrors=(args.mirror,))
    results: dict[str, Any] = {}
    for name in args.datasets or DATASETS.names():
        try:
            results[name] = bench_one(name, settings, args.repeats)
        except DatasetUnavailableError as error:
            results[name] = {"unavailable": str(error).splitlines()[0]}
        print(name, json.dumps(results[name])[:200], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "prepare_speed",
        "mtlrec_version": mtlrec.__version__,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "repeats": args.repeats,
        "results": results,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
