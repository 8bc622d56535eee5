"""schemathesis, every one of its checks, against the live service: 0 failures.

The service runs under a real uvicorn server on 127.0.0.1 (:class:`LiveServer`), and the
schemathesis command line (``st run``, in a subprocess) reads its ``/openapi.json`` and runs
all four phases (examples, coverage, fuzzing, stateful) with ``--checks all``: no 5xx,
status codes / content types / headers / bodies as documented, invalid data rejected and
valid data accepted, missing required headers, unsupported methods and ``Allow`` headers,
auth that is not ignored (each request sent again without the key and with a wrong one),
use after free, resource availability, object-level authorization. It sends a key with
every scope; the service runs twice, with ``/metrics`` open and with ``/metrics`` behind a
key, so the schema's security is checked both ways.

One setting: a body can be valid for the schema and still larger than the service's byte
limit (``include_items`` may hold 10,000 ids of 256 characters, far over 64 KiB), or invalid
and too large at once. The 413 that answers it is documented on every operation with a
body, so it is added to the statuses the acceptance and rejection checks allow.

The run is seeded (``--seed``), so a failure reproduces; the output, with a ``curl`` line
per failure, is the assertion message.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mtlrec.serving.app import create_app
from mtlrec.serving.settings import ServeSettings
from serving_support import LiveServer, TinyServing

SCHEMATHESIS_CONFIG = """\
# A body over the service's byte limit gets its documented 413, valid or not.
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422",
                     "428", "429", "5xx"]

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "413", "429", "5xx"]
"""
MAX_EXAMPLES = 30
"""Generated cases per operation and phase (the coverage phase adds its boundary cases)."""


def run_schemathesis(url: str, key: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """``st run`` against the service at ``url`` with every check, every phase, ``key``
    sent on every request; its caches stay in ``workdir``."""
    config = workdir / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG, encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--no-color",
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--header",
        f"X-API-Key: {key}",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "20261207",
        "--workers",
        "1",
        "--request-timeout",
        "30",
    ]
    return subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=900, check=False
    )


@pytest.mark.parametrize("metrics_require_key", [False, True], ids=["open", "locked_metrics"])
def test_schemathesis_with_all_checks_finds_no_failure(
    tiny_serving: TinyServing, tmp_path: Path, metrics_require_key: bool
) -> None:
    settings = ServeSettings(
        artifact=tiny_serving.fused,
        api_keys=tiny_serving.key_file,
        metrics_require_key=metrics_require_key,
    )
    app = create_app(settings)
    operations = sum(len(methods) for methods in app.openapi()["paths"].values())
    with LiveServer(app) as server:
        result = run_schemathesis(server.url, tiny_serving.keys["all"], tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-12_000:]
    tested = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", output)
    assert tested is not None, output[-4000:]
    assert tested.groups() == (str(operations),) * 3, output[-4000:]  # every operation ran
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert re.search(rf"✅\s+{phase} \(in ", output), (phase, output[-4000:])
