"""Shared test fixtures: the real datasets folder beside the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; fails (never skips) when the real datasets are not beside us."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the real datasets are expected in {SHARED_DATA} (see README)")
    return SHARED_DATA
