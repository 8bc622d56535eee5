"""Shared test fixtures: the real datasets folder beside the checkout, the toy dataset, the
service's tiny artifacts and headless Chromium (the browser tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

# Two xdist workers share two cores: one intra-op thread each keeps them from fighting.
torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; fails (never skips) when the real datasets are not beside us."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the real datasets are expected in {SHARED_DATA} (see README)")
    return SHARED_DATA


# ----------------------------------------------------------------------------- toy data
from collections.abc import Callable  # noqa: E402

from mtlrec.core.types import TaskSpec  # noqa: E402
from mtlrec.data.examples import ExampleSet  # noqa: E402
from mtlrec.models import InputSchema  # noqa: E402

TOY_SPECS = {
    "click": TaskSpec("click", "binary"),
    "score": TaskSpec("score", "regression"),
    "tags": TaskSpec("tags", "multilabel", n_outputs=3),
}
TOY_SCHEMA = InputSchema(
    n_user_ids=21,
    n_item_ids=31,
    categorical={"items.kind": 3},
    numeric=("users.age",),
    text={"items.text": 8},
)
"""The input schema of :func:`make_toy`'s entity tables (ids with one padding row each)."""


def make_toy(
    n: int = 512, n_users: int = 20, n_items: int = 30, seed: int = 0
) -> tuple[ExampleSet, dict[str, torch.Tensor]]:
    """A learnable toy: labels are functions of item attributes and a user attribute.

    Returns the examples (all in the train split but the last quarter, which is valid) and
    the entity tables (``items.kind`` categorical, ``users.age`` numeric, ``items.text``).
    """
    generator = torch.Generator().manual_seed(seed)
    item_kind = torch.randint(0, 3, (n_items,), generator=generator)
    user_age = torch.randn(n_users, generator=generator)
    item_text = torch.randn(n_items, 8, generator=generator)
    users = torch.randint(0, n_users, (n,), generator=generator)
    items = torch.randint(0, n_items, (n,), generator=generator)
    kind, age = item_kind[items], user_age[users]
    labels = {
        "click": ((kind == 1) ^ (age > 0)).float(),
        "score": kind.float() + age + item_text[items, 0],
        "tags": torch.nn.functional.one_hot(kind, 3).float(),
    }
    masks = {t: torch.ones(n, dtype=torch.bool) for t in labels}
    masks["score"][::3] = False  # some labels unknown
    split = torch.zeros(n, dtype=torch.int8)
    split[3 * n // 4 :] = 1
    features = {"user_row": users, "item_row": items, "user_idx": users + 1, "item_idx": items + 1}
    examples = ExampleSet(
        "interaction", features, labels, masks, split, torch.zeros(n, dtype=torch.bool)
    )
    tables = {"items.kind": item_kind, "users.age": user_age, "items.text": item_text}
    return examples, tables


@pytest.fixture
def toy() -> Callable[..., tuple[ExampleSet, dict[str, torch.Tensor]]]:
    """Factory of the learnable toy dataset (see :func:`make_toy`)."""
    return make_toy


# ----------------------------------------------------------------------------- the service
from serving_support import TinyServing, make_tiny_artifacts  # noqa: E402


@pytest.fixture(scope="session")
def tiny_serving(tmp_path_factory: pytest.TempPathFactory) -> TinyServing:
    """Two real tiny artifacts (plain and fused) and API keys (see ``serving_support``)."""
    return make_tiny_artifacts(tmp_path_factory.mktemp("serving"))


# ----------------------------------------------------------------------------- browser tests
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium with the browser console log kept."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run `make browser` (Debian packages)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
