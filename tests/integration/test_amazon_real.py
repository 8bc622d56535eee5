"""The Amazon parsers on the real files in ../shared/data (read in place, never copied).

The expected numbers were measured on these files and checked against the dataset README.
Where they differ from the README, the README counts raw lines; the parser quarantines
repeated ``(reviewerID, asin, unixReviewTime)`` events and repeated metadata asins.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mtlrec.data.read_report import ReadReport
from mtlrec.data.schema import CanonicalTables
from mtlrec.data.sources.amazon import AmazonReviewsSource, parse_meta

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def data_dir(shared_data: Path) -> Path:
    """The real datasets, read in place (``tests/conftest.py`` fails if they are missing)."""
    return shared_data


def load(folder: Path, **files: str) -> tuple[CanonicalTables, ReadReport]:
    report = ReadReport()
    tables = AmazonReviewsSource().load(
        {role: folder / name for role, name in files.items()}, report
    )
    for tally in report.files.values():
        tally.check()
    return tables, report


def test_musical_instruments_2014(data_dir: Path) -> None:
    folder = data_dir / "amazon-2014-musical-instruments"
    tables, report = load(folder, reviews="reviews_Musical_Instruments_5.json.gz")
    assert tables.counts() == {"users": 1429, "items": 900, "interactions": 10261, "reviews": 10261}
    tally = report.files[str(folder / "reviews_Musical_Instruments_5.json.gz")]
    assert (tally.rows_read, tally.rows_kept, tally.rows_quarantined) == (10261, 10261, 0)
    assert tally.notes["empty review text kept"] == 7
    assert tally.notes["reviewerName missing"] == 27
    reviews = tables.reviews
    assert (~reviews["has_text"]).sum() == 7
    assert reviews["text"].null_count() == 7
    assert reviews["helpful_total"].null_count() == 0  # 2014 has [up, total] on every row
    assert (reviews["helpful_up"] <= reviews["helpful_total"]).all()
    assert sorted(reviews["stars"].unique().to_list()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert tables.interactions["interaction_id"].to_list() == list(range(10261))
    # 27 reviews lack reviewerName; all but one of their authors are named on another review
    assert tables.users["name"].null_count() == 1
    assert not report.notes  # no metadata file: no join notes


def test_magazine_subscriptions_2018(data_dir: Path) -> None:
    folder = data_dir / "amazon-2018-magazine-subscriptions"
    tables, report = load(
        folder,
        reviews="Magazine_Subscriptions_5.json.gz",
        meta="meta_Magazine_Subscriptions.json.gz",
    )
    # The README's 2,375 reviews are raw lines; 47 of them repeat an earlier
    # (reviewerID, asin, unixReviewTime) event (42 are byte-identical copies, 5 differ
    # only in text, summary, vote or style), so 2,328 are kept. Users and items are
    # unchanged because the first review of every repeated event is kept.
    reviews_tally = report.files[str(folder / "Magazine_Subscriptions_5.json.gz")]
    assert (reviews_tally.rows_read, reviews_tally.rows_kept) == (2375, 2328)
    assert reviews_tally.reasons == {"duplicate review": 47}
    assert reviews_tally.notes["empty review text kept"] == 1
    assert tables.counts() == {"users": 348, "items": 157, "interactions": 2328, "reviews": 2328}
    assert tables.reviews["helpful_total"].null_count() == 2328  # 2018 has no vote total

    # 3,385 metadata rows, of which 1,065 repeat an asin (all identical copies): 2,320 kept.
    meta_tally = report.files[str(folder / "meta_Magazine_Subscriptions.json.gz")]
    assert (meta_tally.rows_read, meta_tally.rows_kept) == (3385, 2320)
    assert meta_tally.reasons == {"duplicate asin": 1065}
    assert report.notes["items without metadata"] == 6
    assert report.notes["metadata rows for unreviewed items"] == 2320 - 151

    items = tables.items
    assert items["main_cat"].null_count() == 6  # exactly the items without metadata
    # Most titles are only an unclosed '<span class=...' tag: cleaned to null.
    titles = items["title"].drop_nulls().to_list()
    assert all("<" not in title and "&amp;" not in title for title in titles)
    assert meta_tally.notes["title only HTML, set to null"] > 2000
    assert all("&amp;" not in c for cats in items["categories"].drop_nulls() for c in cats)


def test_gift_cards_2018(data_dir: Path) -> None:
    folder = data_dir / "amazon-2018-gift-cards"
    tables, report = load(folder, reviews="Gift_Cards_5.json.gz", meta="meta_Gift_Cards.json.gz")
    # The README's 2,972 reviews are raw lines; 3 repeat an earlier (reviewerID, asin,
    # unixReviewTime) event (same user, card and day; different text), so 2,969 are kept.
    reviews_tally = report.files[str(folder / "Gift_Cards_5.json.gz")]
    assert (reviews_tally.rows_read, reviews_tally.rows_kept) == (2972, 2969)
    assert reviews_tally.reasons == {"duplicate review": 3}
    assert reviews_tally.notes["empty review text kept"] == 6
    assert tables.counts() == {"users": 458, "items": 148, "interactions": 2969, "reviews": 2969}
    assert (tables.reviews["stars"] == 5.0).mean() == pytest.approx(0.93, abs=0.01)

    meta_tally = report.files[str(folder / "meta_Gift_Cards.json.gz")]
    assert (meta_tally.rows_read, meta_tally.rows_kept, meta_tally.rows_quarantined) == (
        1547,
        1547,
        0,
    )
    assert report.notes["items without metadata"] == 0
    assert report.notes["metadata rows for unreviewed items"] == 1547 - 148
    items = tables.items
    assert items["main_cat"].null_count() == 0
    assert items["title"].null_count() == 0
    assert all("&#39;" not in title for title in items["title"].to_list())
    prices = items["price"].drop_nulls()
    assert prices.len() > 0 and (prices > 0).all()


def test_meta_file_alone_keeps_one_row_per_asin(data_dir: Path) -> None:
    path = data_dir / "amazon-2018-magazine-subscriptions" / "meta_Magazine_Subscriptions.json.gz"
    items = parse_meta(path, ReadReport())
    assert items.height == 2320
    assert items["item_id"].n_unique() == 2320
