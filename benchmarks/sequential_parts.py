"""What each part of a trained sequential model's retrieval score contributes.

The score is ``a * (state . v(j) / temperature + b(j)) + s * sum_i B[i, j]``: the learned
part (history encoder over item vectors) and, with ``item_item_ease``, EASE's fixed
item-to-item weights under the learned scale ``s``. This ranks the run's validation and test
users (full ranking, known items excluded, as the run's evaluation does) with the learned
part scaled by each ``a`` of ``--alphas`` (1: the model as trained; 0: the item-to-item
term alone), to show whether the learned part adds to the item-to-item term. Diagnostic
only: nothing here is chosen on test.

    python benchmarks/sequential_parts.py --run runs/bench-seqsel/ml-100k-random/ease-l200-h1000-s0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from mtlrec.data.fetch import FetchSettings
from mtlrec.evaluation.protocol import evaluate_ranking
from mtlrec.models.sequential import SequentialRecommender, history_tokens
from mtlrec.models.sequential_factory import sequential_params
from mtlrec.pipeline.sequential import SequentialData
from mtlrec.pipeline.trained_run import load_trained_run

ROOT = Path(__file__).resolve().parents[1]


def mixed_score_fn(
    model: SequentialRecommender, histories: dict[int, np.ndarray], length: int, alpha: float
) -> Any:
    """User rows ``(b,)`` -> ``alpha * learned + item_to_item`` ``(b, N_items)``."""
    empty = np.zeros(0, dtype=np.int64)

    @torch.inference_mode()
    def score(user_rows: torch.Tensor) -> torch.Tensor:
        tokens = torch.from_numpy(
            np.stack([history_tokens(histories.get(int(u), empty), length) for u in user_rows])
        )
        items = model.items()
        learned = model.retrieval_logits(model.states(tokens, items)[:, -1], items)
        return (alpha * learned + model.history_item_scores(tokens, "whole")).float()

    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a sequential run folder")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--cache-dir", type=Path, default=FetchSettings().cache_dir)
    parser.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = FetchSettings(cache_dir=args.cache_dir, mirrors=(args.mirror,))
    run = load_trained_run(args.run, settings, Console(quiet=True))
    model = run.model.eval()
    if not isinstance(model, SequentialRecommender) or model.item_item_scale is None:
        sys.exit(f"{args.run}: not a sequential run with the EASE item-to-item term")
    params = sequential_params(run.config)
    seq = SequentialData.of(run.data, params)
    rows = []
    for alpha in args.alphas:
        row: dict[str, Any] = {"alpha": alpha}
        for split, at in (("valid", 1), ("test", 2)):
            score = mixed_score_fn(model, seq.histories[at], params.scoring_len, alpha)
            row[f"{split}_ndcg@10"] = evaluate_ranking(seq.ranking, split, score, (10,))["all"][
                "ndcg@10"
            ]
        rows.append(row)
        print(row, flush=True)
    payload = {
        "run": str(args.run),
        "config_name": run.config.name,
        "item_item_scale": float(model.item_item_scale.detach()),
        "history_len": params.scoring_len,
        "command": "python benchmarks/sequential_parts.py " + " ".join(sys.argv[1:]),
        "rows": rows,
    }
    name = f"sequential_parts_{args.run.parent.name}_{args.run.name}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        f"# What the parts of a sequential model's score contribute: {args.run}",
        "",
        f"`{payload['command']}`; learned item-to-item scale {payload['item_item_scale']:.3f}; "
        f"users ranked after {params.scoring_len} history items. Score = alpha x learned part "
        "+ the item-to-item term (alpha 1: the model as trained; 0: the EASE term alone).",
        "",
        "| alpha | valid NDCG@10 | test NDCG@10 |",
        "|---|---|---|",
        *(f"| {r['alpha']} | {r['valid_ndcg@10']:.4f} | {r['test_ndcg@10']:.4f} |" for r in rows),
    ]
    (args.out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print(f"-> {args.out / name}.md")


if __name__ == "__main__":
    main()
