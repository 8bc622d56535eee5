"""Time how fast ``mtlrec train`` rejects a config with a misspelled weighting.

Issue 11: a misspelled backbone, weighting or parameter fails in under 2 seconds, before
any data is read, naming the valid choices. This runs the installed ``mtlrec`` script (a
fresh process each time, as a user runs it) ``--repeats`` times on
``configs/ml-100k.yaml --set weighting.name=pcgard`` and writes the median and max wall
seconds of the whole process to ``--out``; every run must exit 2, name the valid
weightings and create no run folder. For scale, it also times a bare ``import torch``,
which the check used to pay for.

    python benchmarks/config_check_speed.py --out benchmarks/results/config_check_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import mtlrec

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "ml-100k.yaml"
KNOWN = "known weightings: cagrad, dwa, equal, gradnorm, mgda, pcgrad"


def timed(command: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall seconds of ``command`` run to its end, and its result."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)
    return time.perf_counter() - start, result


def misspelled_weighting_run(script: Path) -> float:
    """One rejected ``mtlrec train``; its wall seconds (fails if it did not reject)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        command = [str(script), "train", "--config", str(CONFIG)]
        command += ["--set", "weighting.name=pcgard", "--out", str(out)]
        command += ["--cache-dir", str(Path(tmp) / "cache"), "--offline"]
        seconds, result = timed(command, Path(tmp))
        message = " ".join(result.stderr.split())
        if result.returncode != 2 or KNOWN not in message or out.exists():
            raise SystemExit(f"unexpected result (exit {result.returncode}):\n{result.stderr}")
    return seconds


def summary(seconds: list[float]) -> dict[str, Any]:
    return {
        "median_s": round(statistics.median(seconds), 3),
        "max_s": round(max(seconds), 3),
        "min_s": round(min(seconds), 3),
        "runs_s": [round(s, 3) for s in seconds],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/config_check_speed.json"
    )
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    script = Path(sys.executable).with_name("mtlrec")
    if not script.is_file():
        raise SystemExit(f"{script}: the mtlrec console script is not installed")
    misspelled_weighting_run(script)  # untimed: the first run warms the file cache
    runs = [misspelled_weighting_run(script) for _ in range(args.repeats)]
    torch_runs = [timed([sys.executable, "-c", "import torch"], ROOT)[0] for _ in range(3)]
    payload = {
        "benchmark": "config_check_speed",
        "mtlrec_version": mtlrec.__version__,
        "command": "mtlrec train --config configs/ml-100k.yaml --set weighting.name=pcgard "
        "--out <tmp> --cache-dir <tmp> --offline",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "repeats": args.repeats,
        "misspelled_weighting": summary(runs),
        "reference_import_torch": summary(torch_runs),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload["misspelled_weighting"]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
