"""The report's sections built from fake runs and benchmark files: the numbers they show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fake_runs import write_fake_bench, write_fake_run
from mtlrec.report.build import build_document
from mtlrec.report.collect import load_bench, load_runs
from mtlrec.report.compare import compare_section, comparison_table, settings_by_dataset
from mtlrec.report.document import Heading, KeyValues, Note, Table
from mtlrec.report.overview import overview_section
from mtlrec.report.peers import peer_blocks, peers_section, summary_blocks
from mtlrec.report.ranking import beyond_section, fusion_section
from mtlrec.report.training import gates_section

BOTH = {"like": "binary", "rating": "regression"}


def _tables(blocks: object) -> dict[str, Table]:
    return {b.title: b for b in blocks if isinstance(b, Table)}  # type: ignore[attr-defined]


def test_mtl_vs_stl_averages_seeds_per_setting(tmp_path: Path) -> None:
    paths = [
        write_fake_run(tmp_path / "mtl-0", BOTH, base=0.70),
        write_fake_run(tmp_path / "mtl-1", BOTH, base=0.80),
        write_fake_run(tmp_path / "stl-like-0", {"like": "binary"}, base=0.60),
        write_fake_run(tmp_path / "stl-rating-0", {"rating": "regression"}, base=0.90),
        write_fake_run(tmp_path / "other", {"like": "binary"}, dataset="elsewhere"),
    ]
    grouped = settings_by_dataset(load_runs(paths))
    assert [len(s.runs) for s in grouped["toy"]] == [2, 1, 1] and len(grouped["elsewhere"]) == 1
    table = comparison_table("toy", grouped["toy"])
    assert table is not None
    assert table.columns == [
        "task",
        "metric",
        "MTL like+rating (n=2)",
        "STL",
        "MTL − STL",
        "better",
    ]
    rows = {(r[0], r[1]): r for r in table.rows}
    assert rows[("like", "auc")][2] == "0.7500 ± 0.071"  # mean and std of 0.70 and 0.80
    assert rows[("like", "auc")][3] == "0.6000 (n=1)"
    assert rows[("like", "auc")][4] == pytest.approx(0.15) and rows[("like", "auc")][5] == "MTL"
    assert rows[("rating", "rmse")][5] == "MTL"  # 0.75 < 0.90: lower is better
    assert "test split" in table.notes[0]
    assert comparison_table("elsewhere", grouped["elsewhere"]) is None  # no MTL run there


def test_mtl_vs_stl_falls_back_to_validation_without_results(tmp_path: Path) -> None:
    paths = [
        write_fake_run(tmp_path / "mtl", BOTH, files=("train.jsonl",)),
        write_fake_run(tmp_path / "stl", {"like": "binary"}, files=("train.jsonl",)),
    ]
    section = compare_section(load_runs(paths), None)
    table = next(b for b in section.blocks if isinstance(b, Table))
    assert table.title.startswith("unknown dataset") and "validation split" in table.notes[0]
    assert ("like", "auc") in {(r[0], r[1]) for r in table.rows}
    assert any(isinstance(b, Note) and "no --bench folder" in b.text for b in section.blocks)


def test_bench_tables_render_the_documented_shapes(tmp_path: Path) -> None:
    runs = load_runs([write_fake_run(tmp_path / "run", BOTH, fusion=True)])
    bench = load_bench(write_fake_bench(tmp_path / "bench"))
    mtl = _tables(compare_section(runs, bench).blocks)["toy: multi-task vs single-task (benchmark)"]
    assert mtl.rows[0][:4] == ["like/auc", "max", "0.8100 ± 0.010", "0.8000 ± 0.020"]
    assert mtl.rows[0][-1] == "MTL"

    fusion = fusion_section(runs, bench)
    tables = _tables(fusion.blocks)
    cascade = tables["run: ranking head vs cascade (test)"]
    assert [r[0] for r in cascade.rows] == [
        "like head of the multi-task model",
        "cascade, linear fusion (all users)",
        "cascade, linear fusion (warm users)",
        "cascade, linear fusion (cold users)",
    ]
    assert "coverage@10" not in cascade.columns and "ndcg@10" in cascade.columns
    accuracy = tables["toy: accuracy (test, mean ± std over 2 seeds)"]
    assert accuracy.columns == ["model", "kind", "ndcg@10", "recall@10"]
    assert accuracy.rows[1] == ["cascade", "cascade", "0.3000 ± 0.010", "0.2000 ± 0.010"]
    weights = next(b for b in fusion.blocks if isinstance(b, KeyValues))
    assert dict(weights.items)["popularity"] == 0.4
    assert "per_seed" in tables  # the summary's list of rows

    beyond = _tables(beyond_section(runs, bench).blocks)
    assert beyond["toy: beyond-accuracy (test, mean ± std over 2 seeds)"].columns == [
        "model",
        "kind",
        "coverage@10",
    ]
    ours = beyond["Runs: beyond-accuracy metrics (test)"]
    assert ours.columns[3:] == ["coverage@10", "diversity@10", "novelty@10", "arp@10"]
    assert len(ours.rows) == 6  # head and cascade, three slices each


def test_peers_are_rendered_generically_or_said_missing(tmp_path: Path) -> None:
    bench = load_bench(write_fake_bench(tmp_path / "bench"))
    section = peers_section(bench)
    heading, note, table, summary = section.blocks[:4]
    assert isinstance(heading, Heading) and "peers_ranking" in heading.text
    assert isinstance(note, Note) and "benchmarks/peers/ranking.py" in note.text
    assert isinstance(table, Table) and table.rows[0] == ["mtlrec", "mmoe", 0.123456, 12]
    assert table.notes == ["same split for every framework"]
    assert isinstance(summary, KeyValues)
    assert dict(summary.items) == {"winner": "mtlrec", "margin": 0.023456, "details.seeds": 3}
    assert peers_section(None).blocks == [] and "no --bench" in peers_section(None).missing
    no_peers = load_bench(write_fake_bench(tmp_path / "nopeers", peers=False))
    assert "peers_census.json" in peers_section(no_peers).missing


def test_summary_lists_become_tables() -> None:
    blocks = summary_blocks("s", {"a": 1, "rows": [{"x": 1}, {"x": 2, "y": "b"}], "l": [1, 2]})
    assert isinstance(blocks[0], KeyValues) and dict(blocks[0].items) == {"a": 1, "l": "1, 2"}
    assert isinstance(blocks[1], Table) and blocks[1].rows == [[1, None], [2, "b"]]


def test_overview_and_gates_say_what_is_missing(tmp_path: Path) -> None:
    paths = [
        write_fake_run(tmp_path / "new", BOTH),
        write_fake_run(tmp_path / "old", {"like": "binary"}, files=("train.jsonl",)),
        write_fake_run(tmp_path / "flat", BOTH, backbone="shared_bottom", dataset="d2"),
    ]
    runs = load_runs(paths)
    overview = overview_section(runs)
    runs_table = _tables(overview.blocks)["Runs"]
    assert runs_table.rows[1][-1] == "missing config.yaml, results.json, fusion/results.json"
    assert "split: random" in _tables(overview.blocks)
    notes = [b.text for b in overview.blocks if isinstance(b, Note)]
    assert any("unknown" in n and "not available" in n for n in notes)
    gates = gates_section(runs)
    assert [b.key for b in gates.blocks if b.kind == "plot"] == ["gates-new"]  # type: ignore[union-attr]
    assert any(isinstance(b, Note) and "old, flat" in b.text for b in gates.blocks)
    assert gates_section(runs[1:]).blocks == []  # -> "not available in these runs"


def test_peers_list_every_command_of_a_commands_list() -> None:
    payload = {"benchmark": "b", "commands": ["python a.py", "python b.py"], "tables": []}
    notes = [b.text for b in peer_blocks("peers_census", payload) if isinstance(b, Note)]
    assert notes == ["Command: python a.py", "Command: python b.py"]


def test_a_task_benchmark_is_drawn_in_the_multi_task_section(tmp_path: Path) -> None:
    folder = write_fake_bench(tmp_path / "bench")
    payload = {
        "benchmark": "sentiment",
        "command": "python benchmarks/sentiment.py --seeds 0",
        "tables": [
            {
                "title": "review sentiment, test macro-F1",
                "columns": ["model", "macro-F1"],
                "rows": [["TF-IDF + LR", 0.56], ["mtlrec", 0.62]],
                "notes": ["same split"],
            }
        ],
        "summary": {"ratio": 1.107, "met": True},
    }
    (folder / "sentiment_toy.json").write_text(json.dumps(payload))
    bench = load_bench(folder)
    assert list(bench.tasks) == ["sentiment_toy"]
    tables = _tables(compare_section([], bench).blocks)
    assert tables["review sentiment, test macro-F1"].rows[1] == ["mtlrec", 0.62]


def test_the_report_leads_with_the_runs_headline_results_and_says_what_to_look_at(
    tmp_path: Path,
) -> None:
    run = write_fake_run(tmp_path / "mtl", {"like": "binary", "rating": "regression"})
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["model"] = {"name": "sequential", "params": {"encoder": "pooled"}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    document = build_document([run], write_fake_bench(tmp_path / "bench"))
    first = document.sections[0]
    assert first.key == "headline" and document.sections[-1].key == "config"
    (table,) = [b for b in first.blocks if isinstance(b, Table)]
    (row,) = table.rows
    assert row[2] == "sequential (pooled encoder)"
    assert "like auc 0.7" in str(row[4]) and "rating rmse" in str(row[4])
    for section in document.sections:  # a sentence first wherever there is something
        if section.blocks:
            assert isinstance(section.blocks[0], Note), section.key


def test_a_summary_of_one_row_of_numbers_per_model_is_a_table_with_readable_columns() -> None:
    summary = {
        "SharedBottom": {"income_auc_delta": 0.003, "train_throughput_ratio": 12.0},
        "MMoE": {"income_auc_delta": 0.004, "train_throughput_ratio": 5.5},
    }
    (table,) = summary_blocks("summary", summary)
    assert isinstance(table, Table)
    assert table.columns == ["", "income auc delta", "train throughput ratio"]
    assert table.rows == [["SharedBottom", 0.003, 12.0], ["MMoE", 0.004, 5.5]]
    (listed,) = summary_blocks("s", {"census": {"best_model": "MMoE", "nested": {"x": 1}}})
    assert isinstance(listed, KeyValues)
    assert [k for k, _ in listed.items] == ["census.best model", "census.nested.x"]


def test_a_cold_item_column_says_why_interaction_models_read_zero(tmp_path: Path) -> None:
    bench = write_fake_bench(tmp_path / "bench")
    path = bench / "fusion_toy.json"
    payload = json.loads(path.read_text())
    for row in payload["aggregate"]["table"].values():
        row["test"]["cold_ndcg@10"] = {"mean": 0.0, "std": 0.0}
    path.write_text(json.dumps(payload))
    section = fusion_section(load_runs([write_fake_run(tmp_path / "run", BOTH)]), load_bench(bench))
    (table,) = [t for t in _tables(section.blocks).values() if "cold_ndcg@10" in t.columns]
    assert any("interactions alone" in note for note in table.notes)
