"""Reading run folders, train.jsonl sessions and benchmark files for the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_runs import write_fake_bench, write_fake_run
from mtlrec.report.collect import (
    NotARunError,
    ReportInputError,
    load_bench,
    load_run,
    load_runs,
    run_labels,
)
from mtlrec.report.trainlog import read_train_log


def test_a_complete_run_reads_every_file(tmp_path: Path) -> None:
    path = write_fake_run(tmp_path / "mtl", {"like": "binary", "rating": "regression"}, fusion=True)
    run = load_run(path)
    assert run.name == "mtl" and run.dataset == "toy" and run.backbone == "mmoe"
    assert run.tasks == {"like": "binary", "rating": "regression"}
    assert run.weighting == "uncertainty"
    assert all(run.files().values())
    assert run.log is not None and len(run.log.steps) == 12 and len(run.log.epochs) == 3
    assert run.log.tasks() == ["like", "rating"]
    assert run.gate_utilisation is not None and run.data_stats is not None
    test = run.split_results("test")
    assert test is not None and test["like"]["auc"] == 0.7


def test_a_run_with_only_train_jsonl_takes_its_tasks_from_the_log(tmp_path: Path) -> None:
    path = write_fake_run(tmp_path / "old", {"like": "binary"}, files=("train.jsonl",))
    run = load_run(path)
    assert run.results is None and run.config is None and run.dataset is None
    assert run.tasks == {"like": None} and run.name == "old"
    assert run.files() == {
        "config.yaml": False,
        "results.json": False,
        "train.jsonl": True,
        "fusion/results.json": False,
    }
    assert run.history[-1]["valid/like/auc"] == pytest.approx(0.7)  # epoch events
    assert run.split_results("test") is None and run.gate_utilisation is None


def test_a_folder_that_is_not_a_run_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotARunError, match="empty.*not a run folder"):
        load_run(tmp_path / "empty")
    with pytest.raises(NotARunError, match="nowhere"):
        load_run(tmp_path / "nowhere")


def test_broken_results_json_names_the_file(tmp_path: Path) -> None:
    path = write_fake_run(tmp_path / "r", {"like": "binary"})
    (path / "results.json").write_text("{not json")
    with pytest.raises(ReportInputError, match=r"results\.json: not valid JSON"):
        load_run(path)


def test_labels_are_folder_names_made_unique_with_parents(tmp_path: Path) -> None:
    paths = [tmp_path / "a" / "mtl-0", tmp_path / "b" / "mtl-0", tmp_path / "b" / "stl-0"]
    assert run_labels(paths) == ["a/mtl-0", "b/mtl-0", "stl-0"]
    for path in paths:
        write_fake_run(path, {"like": "binary"})
    assert [r.label for r in load_runs(paths)] == ["a/mtl-0", "b/mtl-0", "stl-0"]


def _write_log(path: Path, records: list[dict[str, object]], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)
    return path


def test_a_fresh_start_appended_to_the_log_replaces_the_old_session(tmp_path: Path) -> None:
    old = [{"event": "step", "epoch": 0, "step": s, "loss/a": 9.0} for s in (10, 20)]
    old.append({"event": "epoch", "epoch": 0, "step": 20, "valid/a/auc": 0.1})
    new = [{"event": "step", "epoch": 0, "step": s, "loss/a": 1.0} for s in (1, 2, 3)]
    new.append({"event": "epoch", "epoch": 0, "step": 3, "valid/a/auc": 0.9})
    log = read_train_log(_write_log(tmp_path / "train.jsonl", old + new, tail='{"event": "st'))
    assert [s["step"] for s in log.steps] == [1, 2, 3]
    assert [e["valid/a/auc"] for e in log.epochs] == [0.9]
    assert log.replaced == 1 and log.unreadable == 1  # the half-written last line
    assert log.series("loss/") == {"a": ([1, 2, 3], [1.0, 1.0, 1.0])}


def test_a_resume_keeps_the_steps_before_the_checkpoint(tmp_path: Path) -> None:
    first = [{"event": "step", "epoch": 0, "step": s, "loss/a": 1.0} for s in (1, 2)]
    first.append({"event": "epoch", "epoch": 0, "step": 2, "valid/a/auc": 0.5})
    first += [{"event": "step", "epoch": 1, "step": s, "loss/a": 9.0} for s in (3, 4)]
    resumed = [{"event": "step", "epoch": 1, "step": s, "loss/a": 0.5} for s in (3, 4)]
    resumed.append({"event": "epoch", "epoch": 1, "step": 4, "valid/a/auc": 0.6})
    log = read_train_log(_write_log(tmp_path / "train.jsonl", first + resumed))
    assert [(s["step"], s["loss/a"]) for s in log.steps] == [(1, 1.0), (2, 1.0), (3, 0.5), (4, 0.5)]
    assert [e["epoch"] for e in log.epochs] == [0, 1]


def test_bench_folder_reads_the_known_files(tmp_path: Path) -> None:
    bench = load_bench(write_fake_bench(tmp_path / "results"))
    assert bench.mtl_vs_stl is not None
    assert list(bench.fusion) == ["fusion_toy"] and list(bench.peers) == ["peers_ranking"]
    empty = load_bench(write_fake_bench(tmp_path / "other", peers=False))
    assert empty.peers == {}
    with pytest.raises(FileNotFoundError, match="missing"):
        load_bench(tmp_path / "missing")


def test_bench_folder_merges_the_datasets_of_every_mtl_vs_stl_file(tmp_path: Path) -> None:
    folder = write_fake_bench(tmp_path / "results")
    first = json.loads((folder / "mtl_vs_stl.json").read_text())
    extra = {**first, "datasets": {"amazon-mi-seq": {"summary": {}}}}
    (folder / "mtl_vs_stl_sequential.json").write_text(json.dumps(extra))
    merged = load_bench(folder).mtl_vs_stl
    assert merged is not None
    assert set(merged["datasets"]) == {*first["datasets"], "amazon-mi-seq"}
