"""Collect the peer runs into ``benchmarks/results/peers_{ranking,census}.{json,md}``.

Reads what ``recbole_runner.py``, ``mtlrec_ranking.py`` and ``census.py`` wrote into
``benchmarks/results/peers/`` and lays it out side by side: mean ± std over seeds, the
ratios the issue's goals are stated in, and paired t-tests over seeds (RecBole and mtlrec
runs of one seed share nothing but the split, so the pairing is by seed index). The JSON
has the shape ``mtlrec report --bench`` renders: ``{"benchmark", "commands", "tables":
[{"title", "columns", "rows", "notes"}], "summary"}``.

    python benchmarks/peers/summarize.py
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
METRICS = ("recall@10", "ndcg@10", "mrr@10", "hr@10")
LABELS = {"recall@10": "Recall@10", "ndcg@10": "NDCG@10", "mrr@10": "MRR@10", "hr@10": "Hit@10"}
GOAL_RANKING = 1.10
GOAL_THROUGHPUT = 2.0
RECBOLE_DEFAULT_EPOCHS = 300


def _mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.4f} ± {np.std(values):.4f}"


def _load(folder: Path, pattern: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob(pattern))]


def ranking_runs(folder: Path) -> dict[str, dict[str, dict[int, dict[str, Any]]]]:
    """``split -> row label -> seed -> {"test": {...}, "wall_s": ...}`` for every run."""
    runs: dict[str, dict[str, dict[int, dict[str, Any]]]] = defaultdict(lambda: defaultdict(dict))
    for payload in _load(folder, "recbole_*.json"):
        for model in payload["models"]:
            label = f"RecBole {model['model']}"
            runs[payload["split"]][label][model["seed"]] = {
                "test": model["test"],
                "wall_s": model["wall_s"],
                "epochs_cap": model["epochs"],
                "epochs_run": model.get("epochs_run"),
                "best_epoch": model.get("best_epoch"),
                "train_samples_per_s": model.get("train_samples_per_s"),
            }
    for payload in _load(folder, "mtlrec_*.json"):
        for seed, row in payload["per_seed"].items():
            for kind in ("multitask_model", "best_single", "best_fusion"):
                if kind not in row:
                    continue
                label = (
                    "mtlrec multi-task model (sequential)"
                    if kind == "multitask_model"
                    else f"mtlrec {kind.replace('_', ' ')}"
                )
                runs[payload["split"]][label][int(seed)] = {
                    "test": row[kind]["test"],
                    "wall_s": row[kind]["wall_s"],
                    "chosen": row[kind]["model"],
                    "ease_ndcg@10": row["rows"]["ease"]["test"]["ndcg@10"]
                    if "ease" in row.get("rows", {})
                    else None,
                    "train_samples_per_s": row[kind].get("train_samples_per_s"),
                }
    return runs


def ranking_summary(folder: Path) -> dict[str, Any]:
    runs = ranking_runs(folder)
    tables, summary = [], {}
    for split in sorted(runs):
        rows_by_label = runs[split]
        columns = ["model", *(LABELS[m] for m in METRICS), "wall s", "seeds", "notes"]
        rows = []
        for label, seeds in rows_by_label.items():
            ordered = [seeds[s] for s in sorted(seeds)]
            note = ""
            if label == "mtlrec multi-task model (sequential)":
                note = "the model alone, every seed (not a choice)"
            elif "chosen" in ordered[0]:
                note = "chosen on validation: " + ", ".join(r["chosen"] for r in ordered)
            elif ordered[0]["epochs_cap"] < RECBOLE_DEFAULT_EPOCHS:
                note = (
                    f"at most {ordered[0]['epochs_cap']} epochs (CPU budget; RecBole's "
                    f"default {RECBOLE_DEFAULT_EPOCHS} with early stopping)"
                )
            runs_known = [r["epochs_run"] for r in ordered if r.get("epochs_run") is not None]
            if "chosen" not in ordered[0] and runs_known:
                note += ("; " if note else "") + "epochs run: " + ", ".join(map(str, runs_known))
                best = [str(r["best_epoch"]) for r in ordered if r.get("best_epoch") is not None]
                if best:
                    note += " (best: " + ", ".join(best) + ")"
            speed = [r["train_samples_per_s"] for r in ordered if r.get("train_samples_per_s")]
            if speed:
                note += ("; " if note else "") + f"train samples/s {np.mean(speed):,.0f}"
            rows.append(
                [
                    label,
                    *(_mean_std([r["test"][m] for r in ordered]) for m in METRICS),
                    f"{np.mean([r['wall_s'] for r in ordered]):.1f}",
                    ",".join(str(s) for s in sorted(seeds)),
                    note,
                ]
            )
        peers = {k: v for k, v in rows_by_label.items() if k.startswith("RecBole")}
        fusion = rows_by_label.get("mtlrec best fusion")
        entry: dict[str, Any] = {}
        if peers and fusion:
            best_peer = max(
                peers, key=lambda k: np.mean([r["test"]["ndcg@10"] for r in peers[k].values()])
            )
            common = sorted(set(peers[best_peer]) & set(fusion))
            ours = np.array([fusion[s]["test"]["ndcg@10"] for s in common])
            theirs = np.array([peers[best_peer][s]["test"]["ndcg@10"] for s in common])
            entry = {
                "best_recbole_model": best_peer,
                "best_recbole_ndcg@10": float(theirs.mean()),
                "mtlrec_best_fusion_ndcg@10": float(ours.mean()),
                "ratio": float(ours.mean() / theirs.mean()),
                "goal": f"ratio >= {GOAL_RANKING}",
                "goal_met": bool(ours.mean() / theirs.mean() >= GOAL_RANKING),
                "seeds": common,
            }
            if len(common) > 1:
                entry["paired_t_test_p"] = float(stats.ttest_rel(ours, theirs).pvalue)
            single = rows_by_label.get("mtlrec best single")
            if single:
                entry["mtlrec_best_single_ndcg@10"] = float(
                    np.mean([single[s]["test"]["ndcg@10"] for s in common])
                )
        model_alone = rows_by_label.get("mtlrec multi-task model (sequential)")
        if peers and model_alone:
            entry.update(_model_alone_goal(split, peers, model_alone))
        if "best_recbole_model" in entry:
            caps = [r["epochs_cap"] for r in peers[entry["best_recbole_model"]].values()]
            if min(caps) < RECBOLE_DEFAULT_EPOCHS:  # a capped peer decides nothing
                entry["peer_capped_at_epochs"] = min(caps)
                entry["goal_met"] = None
                goal_alone = entry.get("multitask_model_goal")
                if goal_alone and goal_alone["against"] == entry["best_recbole_model"]:
                    goal_alone["met"] = None
        summary[split] = entry
        notes = [
            "Full ranking over all items on the split files of benchmarks/peers/splits/; "
            "train + valid items excluded; the same evaluator (mtlrec's) scores every row.",
            "Best RecBole model = highest mean test NDCG@10 (generous to the peer); mtlrec's "
            "best single and best fusion are chosen per seed on validation.",
            "Wall s: RecBole: dataset load + training with early stopping + evaluation; "
            "mtlrec single: that model's fit; mtlrec fusion: the whole seed (multi-task "
            "training, every baseline, scoring, every fusion fitted and evaluated).",
        ]
        if "multitask_model_goal" in entry:
            goal = entry["multitask_model_goal"]
            notes.append(
                f"Multi-task model alone (no fusion): NDCG@10 {goal['ours']:.4f} vs "
                f"{goal['against']} {goal['theirs']:.4f}, ratio {goal['ratio']:.3f} "
                f"(goal >= {goal['goal']})"
                + (
                    f", paired t-test p = {goal['paired_t_test_p']:.3g}"
                    if goal.get("paired_t_test_p") is not None
                    else ""
                )
                + _verdict(goal["met"], entry)
            )
        if entry and "ratio" in entry:
            notes.append(
                f"Goal NDCG@10 >= {GOAL_RANKING}x best RecBole ({entry['best_recbole_model']}): "
                f"ratio {entry['ratio']:.3f}"
                + (
                    f", paired t-test p = {entry['paired_t_test_p']:.3g}"
                    if "paired_t_test_p" in entry
                    else ""
                )
                + _verdict(entry["goal_met"], entry)
            )
        model_alone = rows_by_label.get("mtlrec multi-task model (sequential)", {})
        single_seeds = set(rows_by_label.get("mtlrec best single", {}))
        without = sorted(single_seeds - set(model_alone))
        if model_alone and without:
            entry["seeds_without_sequential_model"] = without
            notes.append(
                f"Mixed runs: mtlrec's seeds {without} ran before the sequential model existed "
                "(their best single / fusion could not choose it); rerunning "
                "mtlrec_ranking.py resumes them. The fusion goal above is provisional."
            )
        tables.append({"title": split, "columns": columns, "rows": rows, "notes": notes})
    return {"benchmark": "peers: ranking", "tables": tables, "summary": summary}


def _verdict(met: bool | None, entry: dict[str, Any]) -> str:
    """`` — met.`` / `` — NOT met.``, or why there is no verdict (a capped peer)."""
    if met is None:
        return (
            f" — no verdict: the RecBole model was capped at "
            f"{entry['peer_capped_at_epochs']} epochs (CPU budget), so it is not the peer "
            "the goal names."
        )
    return " — met." if met else " — NOT met."


def _model_alone_goal(
    split: str,
    peers: dict[str, dict[int, dict[str, Any]]],
    model_alone: dict[int, dict[str, Any]],
) -> dict[str, Any]:
    """Issue 12's goal for the multi-task model alone: >= 1.10x the best RecBole model on
    leave-one-out splits, >= EASE (mtlrec's, same seed) on random splits."""
    ours = float(np.mean([r["test"]["ndcg@10"] for r in model_alone.values()]))
    if split.endswith("-loo"):
        best = max(peers, key=lambda k: np.mean([r["test"]["ndcg@10"] for r in peers[k].values()]))
        theirs = float(np.mean([r["test"]["ndcg@10"] for r in peers[best].values()]))
        against, goal = best, GOAL_RANKING
    else:
        ease = [r["ease_ndcg@10"] for r in model_alone.values() if r.get("ease_ndcg@10")]
        if not ease:
            return {}
        theirs, against, goal = float(np.mean(ease)), "mtlrec EASE", 1.0
    ratio = ours / theirs
    p_value = None
    if split.endswith("-loo"):
        common = sorted(set(model_alone) & set(peers[against]))
        if len(common) > 1:
            p_value = float(
                stats.ttest_rel(
                    [model_alone[s]["test"]["ndcg@10"] for s in common],
                    [peers[against][s]["test"]["ndcg@10"] for s in common],
                ).pvalue
            )
    return {
        "multitask_model_goal": {
            "paired_t_test_p": p_value,
            "ours": ours,
            "against": against,
            "theirs": theirs,
            "ratio": ratio,
            "goal": goal,
            "met": bool(ratio >= goal),
            "seeds": sorted(model_alone),
        }
    }


def census_summary(folder: Path) -> dict[str, Any] | None:
    path = folder / "census.json"
    if not path.exists():
        return None
    payload = json.loads(path.read_text())
    columns = [
        "architecture",
        "framework",
        "income AUC",
        "never_married AUC",
        "parameters",
        "train samples/s",
        "inference samples/s",
    ]
    rows = []
    summary: dict[str, Any] = {}
    for name, entry in payload["summary"].items():
        for fw in ("torch-rechub", "mtlrec"):
            side = entry[fw]
            rows.append(
                [
                    name,
                    fw,
                    f"{side['income_auc']['mean']:.4f} ± {side['income_auc']['std']:.4f}",
                    f"{side['never_married_auc']['mean']:.4f} ± "
                    f"{side['never_married_auc']['std']:.4f}",
                    f"{side['parameters']['mean']:,.0f}",
                    f"{side['train_samples_per_s']['mean']:,.0f}",
                    f"{side['inference_samples_per_s']['mean']:,.0f}",
                ]
            )
        ours, theirs = entry["mtlrec"], entry["torch-rechub"]
        summary[name] = {
            "income_auc_delta": ours["income_auc"]["mean"] - theirs["income_auc"]["mean"],
            "never_married_auc_delta": ours["never_married_auc"]["mean"]
            - theirs["never_married_auc"]["mean"],
            "train_throughput_ratio": entry["train_throughput_ratio"],
            "inference_throughput_ratio": entry["inference_throughput_ratio"],
            **{k: v for k, v in entry.items() if k.endswith("_p")},
        }
    best_peer = {
        task: max(e["torch-rechub"][f"{task}_auc"]["mean"] for e in payload["summary"].values())
        for task in ("income", "never_married")
    }
    best_ours = {
        task: max(e["mtlrec"][f"{task}_auc"]["mean"] for e in payload["summary"].values())
        for task in ("income", "never_married")
    }
    throughput_ok = all(s["train_throughput_ratio"] >= GOAL_THROUGHPUT for s in summary.values())
    auc_ok = all(best_ours[t] >= best_peer[t] for t in best_peer)
    summary["goal"] = {
        "best_peer_auc": best_peer,
        "best_mtlrec_auc": best_ours,
        "auc_goal_met": auc_ok,
        "throughput_goal_met": throughput_ok,
    }
    notes = [
        f"Seeds {sorted({r['seed'] for r in payload['runs']})}; {payload['threads']} torch "
        "thread(s) on both sides; mean ± std over seeds.",
        "Train samples/s: training passes only (validation not counted on either side). "
        "Inference samples/s: forward over the test rows in training-size batches.",
        "Goal: AUC >= best peer's on both tasks "
        + ("(met)" if auc_ok else "(NOT met)")
        + f"; training throughput >= {GOAL_THROUGHPUT}x torch-rechub's per architecture "
        + ("(met)." if throughput_ok else "(NOT met)."),
    ]
    return {
        "benchmark": "peers: census-income",
        "command": payload["command"],
        "tables": [{"title": "census-income", "columns": columns, "rows": rows, "notes": notes}],
        "summary": summary,
    }


def markdown(payload: dict[str, Any]) -> str:
    lines = [f"# {payload['benchmark']}", ""]
    for command in payload.get("commands", [payload.get("command")]):
        if command:
            lines.append(f"- `{command}`")
    for table in payload["tables"]:
        lines += ["", f"## {table['title']}", ""]
        lines.append("| " + " | ".join(table["columns"]) + " |")
        lines.append("|" + "---|" * len(table["columns"]))
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in table["rows"]]
        lines += [""] + [f"- {note}" for note in table["notes"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=RESULTS / "peers")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    ranking = ranking_summary(args.runs)
    ranking["commands"] = sorted(
        {
            p["command"]
            for p in _load(args.runs, "recbole_*.json") + _load(args.runs, "mtlrec_*.json")
            if "command" in p
        }
    ) + ["python benchmarks/peers/summarize.py"]
    outputs = {"peers_ranking": ranking}
    census = census_summary(args.runs)
    if census is not None:
        census["commands"] = [census.pop("command"), "python benchmarks/peers/summarize.py"]
        outputs["peers_census"] = census
    for name, payload in outputs.items():
        (args.out / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
        (args.out / f"{name}.md").write_text(markdown(payload))
        print(markdown(payload))


if __name__ == "__main__":
    main()
