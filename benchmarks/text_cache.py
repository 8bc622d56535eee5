"""How much the on-disk embedding cache saves: the quickstart's text step, run twice.

Runs the text part of ``mtlrec train`` (item texts, user profiles and, for review datasets,
review profiles) twice against a fresh cache folder and reports the time spent encoding
text in each run and their ratio. Results go to ``--out``.

    python benchmarks/text_cache.py --config configs/ml-100k.yaml
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from rich.console import Console

from mtlrec.config.experiment import ExperimentConfig
from mtlrec.config.loading import load_config
from mtlrec.data.fetch import FetchSettings
from mtlrec.pipeline.run_data import load_run_data

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs/ml-100k.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/text_cache.json")
    parser.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    config = load_config(ExperimentConfig, args.config)
    console = Console()
    runs = []
    with tempfile.TemporaryDirectory() as cache:
        settings = FetchSettings(cache_dir=Path(cache), mirrors=(args.mirror,))
        for attempt in (1, 2):
            start = time.perf_counter()
            data = load_run_data(config, settings, console)
            runs.append(
                {
                    "run": attempt,
                    "wall_s": round(time.perf_counter() - start, 3),
                    "text_encode_s": round(data.timings["text_encode_s"], 3),
                    "texts_encoded": int(data.timings["text_encoded"]),
                    "texts_from_cache": int(data.timings["text_cache_hits"]),
                }
            )
    first, second = runs[0]["text_encode_s"], runs[1]["text_encode_s"]
    ratio = first / second if second > 0 else float("inf")
    payload = {
        "benchmark": "text_cache",
        "config": str(args.config),
        "runs": runs,
        "encode_time_ratio_first_over_second": ratio if second > 0 else "inf",
        "goal": "second run spends >= 10x less time encoding",
        "met": ratio >= 10,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(payload)


if __name__ == "__main__":
    main()
