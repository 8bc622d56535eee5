"""The README's "After `make demo`" block, run as it is written (issue 13).

The demo run is trained the way ``make demo`` trains it (the same config, the same
``runs/ml-100k`` folder) with one epoch, through ``--set``; then the README block runs
unchanged in bash: fuse, recommend, export, an API key, the service with a curl call,
the report.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def readme_block() -> str:
    """The bash between the README's after-demo markers."""
    text = (ROOT / "README.md").read_text()
    found = re.search(
        r"<!-- after-demo:start -->\n```bash\n(.*?)```\n<!-- after-demo:end -->", text, re.S
    )
    assert found is not None, "README lost its after-demo block"
    return found.group(1)


def test_the_readme_after_demo_block_runs_as_written(shared_data: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "MTLREC_DATA_MIRRORS": str(shared_data),
        "MTLREC_CACHE_DIR": str(tmp_path / "cache"),
        "COLUMNS": "100",
    }
    demo = [
        "mtlrec", "train", "--config", str(ROOT / "configs" / "ml-100k-sequential.yaml"),
        "--out", "runs/ml-100k", "--set", "model.params.stride=25",  # as make demo
        "--set", "training.ema=null",
        "--set", "training.epochs=1", "--set", "training.refit_heads.epochs=1",
    ]  # fmt: skip
    trained = subprocess.run(demo, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    script = "set -euo pipefail\n" + readme_block()
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "top 10 for user 1" in out  # recommend
    reply = next(line for line in out.splitlines() if line.startswith('{"model_version"'))
    answer, _ = json.JSONDecoder().raw_decode(reply)
    assert len(answer["items"]) == 5  # the service answered the curl call
    run = tmp_path / "runs" / "ml-100k"
    assert (run / "fusion" / "fusion.yaml").is_file()
    assert any((tmp_path / "runs" / "ml-100k-artifacts").iterdir())
    assert (run / "report.html").stat().st_size > 10_000
