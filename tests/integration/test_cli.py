"""The ``mtlrec`` command line, driven as a user would (Typer's runner, no subprocess)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mtlrec.cli.main import app

runner = CliRunner()

GOOD = {
    "reviewerID": "U1",
    "asin": "I1",
    "overall": 5.0,
    "reviewText": "great",
    "summary": "s",
    "unixReviewTime": 1400000000,
    "reviewerName": "A",
}


def _broken_reviews(path: Path) -> None:
    lines = [
        json.dumps(GOOD),
        '{"reviewerID": "U2", "asin": ',  # 2: broken JSON
        json.dumps({**GOOD, "reviewerID": "U3", "overall": 9}),  # 3: out of range
        json.dumps({**GOOD, "reviewerID": "U4", "overall": "five"}),  # 4: not numeric
        json.dumps({**GOOD, "reviewerID": "", "asin": "I2"}),  # 5: missing id
        json.dumps({**GOOD, "reviewerID": "U5", "unixReviewTime": "yesterday"}),  # 6
        json.dumps(GOOD),  # 7: duplicate of line 1
        json.dumps({**GOOD, "reviewerID": "U6", "reviewText": ""}),  # 8: kept, no text
    ]
    path.write_text("\n".join(lines) + "\n")


EXPECTED = [
    (2, "broken JSON"),
    (3, "stars out of range (1..5)"),
    (4, "non-numeric stars"),
    (5, "missing reviewerID"),
    (6, "bad timestamp"),
    (7, "duplicate review"),
]


def test_prepare_a_broken_file_names_each_line_and_reason(tmp_path: Path) -> None:
    reviews = tmp_path / "reviews.json"
    _broken_reviews(reviews)
    config = tmp_path / "mine.yaml"
    config.write_text(
        f"dataset: {{source: amazon, files: {{reviews: {reviews}}}}}\n"
        "split: {strategy: random, ratios: [1.0, 0.0, 0.0]}\n"
        "labels: [{name: like}, {name: rating}]\n"
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["data", "prepare", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["read"]["rows_read"] == 8
    assert manifest["read"]["rows_kept"] == 2
    assert manifest["read"]["rows_quarantined"] == 6
    assert manifest["counts"]["reviews_without_text"] == 1
    rows = [json.loads(x) for x in (out / "quarantine.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rows] == EXPECTED
    assert all(r["file"] == str(reviews) for r in rows)


def test_validate_prints_lines_and_reasons_and_exits_1(tmp_path: Path) -> None:
    reviews = tmp_path / "reviews.json"
    _broken_reviews(reviews)
    quarantine = tmp_path / "bad.jsonl"
    result = runner.invoke(
        app,
        [
            "data",
            "validate",
            str(reviews),
            "--format",
            "amazon-reviews",
            "--quarantine",
            str(quarantine),
        ],
    )
    assert result.exit_code == 1
    for _line, reason in EXPECTED:
        assert reason in result.output
    assert len(quarantine.read_text().splitlines()) == 6


def test_validate_unknown_format_lists_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a\n")
    result = runner.invoke(app, ["data", "validate", str(path), "--format", "exel"])
    assert result.exit_code == 2
    assert "unknown file format 'exel'" in result.output and "amazon-reviews" in result.output


def test_missing_dataset_offline_says_where_to_put_it(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "data",
            "prepare",
            "retailrocket",
            "--out",
            str(tmp_path / "o"),
            "--offline",
            "--cache-dir",
            str(tmp_path / "c"),
            "--mirror",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2
    assert "view_ecommerce.dat" in result.output
    assert "Kaggle" in result.output and "--mirror DIR" in result.output
    assert not (tmp_path / "o").exists()


def test_missing_required_column_is_fatal_and_named(tmp_path: Path) -> None:
    inter = tmp_path / "ml.inter"
    inter.write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3\n")
    result = runner.invoke(
        app, ["data", "validate", str(inter), "--format", "movielens-atomic-inter"]
    )
    assert result.exit_code == 2
    assert str(inter) in result.output.replace("\n", "") and "rating" in result.output


def test_stats_on_a_prepared_folder_and_on_a_wrong_one(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "mi"
    result = runner.invoke(
        app,
        [
            "data",
            "prepare",
            "amazon-2014-musical-instruments",
            "--out",
            str(out),
            "--mirror",
            str(shared_data),
            "--offline",
            "--cache-dir",
            str(tmp_path / "c"),
            "--set",
            "split.seed=3",
        ],
    )
    assert result.exit_code == 0, result.output
    stats = runner.invoke(app, ["data", "stats", str(out)])
    assert stats.exit_code == 0
    for text in ("10,261", "1,429", "900", "reviews_without_text", "leave_one_out"):
        assert text in stats.output
    # the share of users whose held-out review shares a day with an earlier one
    assert "inside a tie: 922 of 1,429 (64.5%" in stats.output
    assert "ties: random (seed 3)" in stats.output
    wrong = runner.invoke(app, ["data", "stats", str(tmp_path)])
    assert wrong.exit_code == 2 and "manifest.json" in wrong.output


@pytest.mark.parametrize("args", [["data", "list"], ["version"]])
def test_listing_commands(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0
    if args == ["data", "list"]:
        assert "ml-100k" in result.output and "census-income" in result.output
