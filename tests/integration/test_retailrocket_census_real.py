"""The Retailrocket and Census-Income parsers on the real files in ../shared/data (read in place).

Expected numbers were measured on these files: Retailrocket has 78,371 views, 9,028 add-to-cart
and 5,088 purchase rows with no bad or repeated row; 8 users and 7 items occur only in the cart
or purchase files. census-income.test.gz has 99,762 records, all well formed, 883 of them exact
copies of an earlier record (kept: census rows are people).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from mtlrec.data.read_report import ReadReport
from mtlrec.data.sources.census import CENSUS_COLUMNS, CensusSource
from mtlrec.data.sources.retailrocket import RETAILROCKET_FILES, RetailrocketSource

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def data_dir(shared_data: Path) -> Path:
    """The real datasets, read in place (``tests/conftest.py`` fails if they are missing)."""
    return shared_data


def test_retailrocket_counts(data_dir: Path) -> None:
    folder = data_dir / "retailrocket"
    report = ReadReport()
    tables = RetailrocketSource().load(
        {role: folder / name for role, name in RETAILROCKET_FILES.items()}, report
    )
    for tally in report.files.values():
        tally.check()
        assert tally.rows_quarantined == 0, tally.summary()
    events = tables.interactions["event"].value_counts().rows()
    assert dict(events) == {"view": 78_371, "cart": 9_028, "purchase": 5_088}
    assert report.rows_read == report.rows_kept == 92_487
    assert tables.interactions["interaction_id"].to_list() == list(range(92_487))
    assert tables.interactions["timestamp"].null_count() == 92_487
    assert set(tables.interactions["value"].unique().to_list()) == {1.0}

    views = tables.interactions.filter(pl.col("event") == "view")
    assert views["user_id"].n_unique() == 3_423
    assert views["item_id"].n_unique() == 8_878
    assert tables.users.height == 3_431 and tables.items.height == 8_885
    assert report.notes == {
        "users in cart/purchase files but never in views": 8,
        "items in cart/purchase files but never in views": 7,
    }


def test_census_counts(data_dir: Path) -> None:
    path = data_dir / "census-income" / "census-income.test.gz"
    report = ReadReport()
    tables = CensusSource().load({"data": path}, report)
    tally = report.files[str(path)]
    tally.check()
    assert (tally.rows_read, tally.rows_kept, tally.rows_quarantined) == (99_762, 99_762, 0)
    assert tables.kind == "tabular"
    users = tables.users
    assert users.height == 99_762 and users.columns == ["user_id", *CENSUS_COLUMNS]
    assert users["user_id"][0] == "r1" and users["user_id"][-1] == "r99762"
    assert dict(users["income_50k"].value_counts().rows()) == {"-50000": 93_576, "50000+": 6_186}
    assert tally.notes["exact duplicate row (kept)"] == 883
    assert users.drop("user_id").is_duplicated().sum() == 883 + 803  # 803 first copies
    assert tally.notes["missing value in mig_chg_msa"] == 49_946
    assert users["mig_chg_msa"].null_count() == 49_946
    assert users["age"].min() == 0.0 and users["age"].max() == 90.0
