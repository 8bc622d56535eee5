"""``mtlrec report`` on a real trained run, opened in headless Chromium (selenium).

Trains a tiny MMoE on Amazon Gift Cards (no text, a few seconds), adds a hand-written
single-task run of the same dataset and a fake benchmark folder, writes the report and checks
in the browser that every figure decodes, that the expected figures and sections are there,
and that the console shows no errors. Needs Debian's chromium + chromium-driver
(``make browser``); without them the test fails, it never skips.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fake_runs import write_fake_bench, write_fake_run
from mtlrec.cli.main import app

pytestmark = pytest.mark.integration
runner = CliRunner()

SECTIONS = [
    "1. Headline results",
    "2. Runs and datasets",
    "3. Training curves",
    "4. Task weights over time",
    "5. Gate utilisation (MMoE / PLE)",
    "6. Multi-task vs single-task",
    "7. Baselines and fusion",
    "8. Beyond-accuracy metrics",
    "9. Peer frameworks",
    "10. Resolved configuration",
]

RUN = """
name: report-browser
data: {dataset: {name: amazon-2018-gift-cards}}
tasks:
  interest: {negative_label: 0.0}
  rating: {loss: huber}
  sentiment: {}
text: null
model:
  inputs: {name: features, params: {embedding_dim: 8}}
  backbone: {name: mmoe, params: {n_experts: 3, expert: [16], tower: [8]}}
weighting: {name: uncertainty}
training:
  epochs: 2
  batch_size: 256
  negatives: {per_positive: 1}
evaluation: {ranking_task: interest, ks: [10]}
"""


def test_report_opens_in_chromium_with_every_figure(
    shared_data: Path, tmp_path: Path, browser: Any
) -> None:
    (tmp_path / "run.yaml").write_text(RUN)
    run = tmp_path / "runs" / "mmoe"
    common = ["--mirror", str(shared_data), "--cache-dir", str(tmp_path / "cache"), "--offline"]
    trained = runner.invoke(
        app, ["train", "--config", str(tmp_path / "run.yaml"), "--out", str(run), *common]
    )
    assert trained.exit_code == 0, trained.output
    results = json.loads((run / "results.json").read_text())
    (level,) = results["gate_utilisation"]["levels"]
    assert set(level["tasks"]) == {"interest", "rating", "sentiment"}
    for weights in level["tasks"].values():
        assert sum(weights) == pytest.approx(1.0)
    assert results["data_stats"]["examples"]["test"] > 0

    single = write_fake_run(
        tmp_path / "runs" / "stl-interest",
        {"interest": "binary"},
        dataset="amazon-2018-gift-cards",
        backbone="shared_bottom",
    )
    bench = write_fake_bench(tmp_path / "bench")
    page = tmp_path / "report" / "report.html"
    made = runner.invoke(
        app, ["report", str(run), str(single), "--bench", str(bench), "--out", str(page)]
    )
    assert made.exit_code == 0, made.output

    browser.get(page.as_uri())
    assert browser.title == "mtlrec experiment report"
    headings = [h.text for h in browser.find_elements("css selector", "h2")]
    assert headings == SECTIONS
    figures = browser.execute_script(
        """return Array.from(document.querySelectorAll('figure.plot')).map(f => {
             const img = f.querySelector('img');
             return [f.dataset.plot, img.complete, img.naturalWidth, img.naturalHeight,
                     img.getAttribute('src').slice(0, 22), img.alt];
           });"""
    )
    kinds = sorted(f[0] for f in figures)
    assert kinds == [
        "curves-mmoe",
        "curves-stl-interest",
        "gates-mmoe",
        "weights-mmoe",
        "weights-stl-interest",
    ]
    for key, complete, width, height, src, alt in figures:
        assert complete and width > 0 and height > 0, f"{key} did not decode"
        assert src == "data:image/png;base64," and alt, key
    assert browser.execute_script("return document.scripts.length") == 0
    tables = browser.execute_script(
        "return Array.from(document.querySelectorAll('caption')).map(c => c.textContent)"
    )
    assert "amazon-2018-gift-cards: multi-task vs single-task (given runs)" in tables
    assert "ML-100K full ranking <peers>" in tables  # from the fake peers_ranking.json
    # the first screen (1280 x 900) shows the runs' own test results, not benchmark tables
    browser.set_window_size(1280, 900)
    browser.execute_script("window.scrollTo(0, 0)")
    headline = browser.find_element("css selector", "#headline table")
    assert headline.location["y"] + 120 < 900
    assert "interest auc" in headline.text and "rating rmse" in headline.text
    browser.save_screenshot(str(tmp_path / "report" / "first-screen.png"))
    overflowing = browser.execute_script(
        """return Array.from(document.querySelectorAll('table'))
             .filter(t => t.scrollWidth > t.parentElement.clientWidth + 1)
             .map(t => (t.querySelector('caption') || {}).textContent || '?');"""
    )
    assert overflowing == [], overflowing  # every table fits its column
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == [], severe
    assert (tmp_path / "report" / "report.md").is_file()
