"""Text rendered from the canonical tables, for the language-model encoder.

Every function skips missing fields (null, empty, NaN, empty list) and never invents
text. :class:`TextTemplates` bundles the knobs, for configs::

    templates = TextTemplates(description_chars=200)
    texts = templates.item_texts(tables.items)          # {item_id: "Toy Story (1995). ..."}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

TRAIN = "train"


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple):
        return any(_present(v) for v in value)
    return True


def _clean(text: str) -> str:
    return " ".join(text.split())


def _sentence(text: str) -> str:
    """``text`` with whitespace collapsed, ending in ``.``, ``!`` or ``?``."""
    text = _clean(text)
    return text if text.endswith((".", "!", "?")) else text + "."


def _truncate(text: str, chars: int) -> str:
    """``text`` cut to at most ``chars`` characters, at a word boundary, marked by ``...``."""
    text = _clean(text)
    if len(text) <= chars:
        return text
    cut = text[:chars]
    space = cut.rfind(" ")
    if space > chars // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + "..."


def _names(values: Iterable[Any] | None, limit: int | None = None) -> list[str]:
    """Distinct non-empty strings of ``values``, in order, at most ``limit``."""
    names = list(dict.fromkeys(_clean(str(v)) for v in values or () if _present(v)))
    return names if limit is None else names[:limit]


def item_text(row: Mapping[str, Any], description_chars: int = 300, max_categories: int = 5) -> str:
    """One item as text: title (year), genres, categories, brand, price, description.

    >>> item_text({"title": "Toy Story", "year": 1995,
    ...            "genres": ["Animation", "Children's", "Comedy"]})
    "Toy Story (1995). Genres: Animation, Children's, Comedy."
    >>> item_text({"title": "Wooden Train Set", "categories": ["Toys & Games", "Trains"],
    ...            "brand": "Brio", "price": 12.99, "description": "A classic toy."})
    'Wooden Train Set. Categories: Toys & Games, Trains. Brand: Brio. Price: $12.99. A classic toy.'

    The description is cut to ``description_chars`` characters and comes last, so that
    token truncation drops it first. An item with no field at all gives ``""``.
    """
    parts: list[str] = []
    title, year = row.get("title"), row.get("year")
    if _present(title):
        parts.append(_sentence(f"{title} ({year})" if _present(year) else str(title)))
    elif _present(year):
        parts.append(f"Year: {year}.")
    genres = _names(row.get("genres"))
    if genres:
        parts.append(f"Genres: {', '.join(genres)}.")
    categories = _names(row.get("categories"), max_categories)
    if categories:
        parts.append(f"Categories: {', '.join(categories)}.")
    if _present(row.get("brand")):
        parts.append(_sentence(f"Brand: {row['brand']}"))
    if _present(row.get("price")):
        parts.append(f"Price: ${float(row['price']):,.2f}.")
    if _present(row.get("description")):
        parts.append(_truncate(str(row["description"]), description_chars))
    return " ".join(parts)


def item_texts(
    items: pl.DataFrame, description_chars: int = 300, max_categories: int = 5
) -> dict[str, str]:
    """:func:`item_text` of every row of the items table, by ``item_id``."""
    return {
        str(row["item_id"]): item_text(row, description_chars, max_categories)
        for row in items.iter_rows(named=True)
    }


def review_text(row: Mapping[str, Any], review_chars: int = 300) -> str:
    """A review's summary then its text (cut to ``review_chars``); ``""`` if it has neither.

    >>> review_text({"summary": "Great fun", "text": "My kids loved it."})
    'Great fun. My kids loved it.'
    """
    parts: list[str] = []
    summary, text = row.get("summary"), row.get("text")
    if _present(summary):
        parts.append(_sentence(str(summary)))
    if _present(text) and _clean(str(text)) != _clean(str(summary or "")):
        parts.append(_truncate(str(text), review_chars))
    return " ".join(parts)


def _recent_first(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows newest first: by ``timestamp`` (nulls last) then ``interaction_id``."""
    columns = [c for c in ("timestamp", "interaction_id") if c in frame.columns]
    return frame.sort(columns, descending=True, nulls_last=True) if columns else frame


def _recent_items(train: pl.DataFrame, items_text: Mapping[str, str], n: int) -> pl.DataFrame:
    """``user_id, item_id (list)``: each user's ``n`` most recent distinct training items
    that have a text, newest first (``train`` sorted newest first)."""
    known = pl.Series(list(items_text), dtype=pl.String())
    return (
        train.select("user_id", "item_id")
        .filter(pl.col("item_id").is_in(known.implode()))
        .unique(subset=["user_id", "item_id"], keep="first", maintain_order=True)
        .group_by("user_id", maintain_order=True)
        .agg(pl.col("item_id").head(n))
    )


def user_profile_texts(
    interactions_with_split: pl.DataFrame,
    items_text: Mapping[str, str],
    reviews: pl.DataFrame | None = None,
    max_items: int = 10,
    max_reviews: int = 3,
    review_chars: int = 300,
) -> dict[str, str]:
    """Each user's profile from their TRAIN split only, by ``user_id``.

    The profile lists the texts (``items_text``, e.g. from :func:`item_texts`) of the
    user's ``max_items`` most recent distinct training items, then :func:`review_text` of
    their ``max_reviews`` most recent reviews whose ``interaction_id`` is a training row.
    Valid and test rows are never read, so nothing leaks. Users without training items
    or reviews are absent (cold users: the caller falls back). Example::

        "Recent items: Heat (1995). Genres: Action. | Toy Story (1995). Genres: Comedy.
         Reviews: Great fun. My kids loved it."
    """
    if "split" not in interactions_with_split.columns:
        raise ValueError("user profiles need interactions with a 'split' column (data.split)")
    if max_items < 0 or max_reviews < 0:
        raise ValueError("max_items and max_reviews must be >= 0")
    train = _recent_first(interactions_with_split.filter(pl.col("split") == TRAIN))
    recent = _recent_items(train, items_text, max_items)
    item_parts = {
        user: [items_text[i] for i in ids if items_text[i]]
        for user, ids in recent.iter_rows()
        if ids
    }
    review_parts: dict[str, list[str]] = {}
    if reviews is not None and max_reviews > 0:
        words = [pl.col(c).str.strip_chars().str.len_chars() > 0 for c in ("summary", "text")]
        has_words = pl.any_horizontal(words).fill_null(False)
        in_train = (
            _recent_first(reviews.join(train.select("interaction_id"), on="interaction_id"))
            .filter(has_words)
            .group_by("user_id", maintain_order=True)
            .head(max_reviews)
        )
        for row in in_train.iter_rows(named=True):
            review_parts.setdefault(str(row["user_id"]), []).append(review_text(row, review_chars))
    profiles: dict[str, str] = {}
    for user in dict.fromkeys([*item_parts, *review_parts]):
        sections = []
        if item_parts.get(user):
            sections.append("Recent items: " + " | ".join(item_parts[user]))
        if review_parts.get(user):
            sections.append("Reviews: " + " | ".join(review_parts[user]))
        if sections:
            profiles[user] = " ".join(sections)
    return profiles


def leave_one_out_profile_texts(
    interactions_with_split: pl.DataFrame,
    items_text: Mapping[str, str],
    max_items: int = 10,
) -> dict[tuple[str, str], str]:
    """The item profile of :func:`user_profile_texts` (no reviews) with one item left out.

    For every user and each item among the user's ``max_items`` most recent distinct
    training items: the profile of that user without that item (the next most recent
    training item, if any, takes its place), keyed by ``(user_id, item_id)``. A training
    example of that pair reads this profile, so it never sees its own item; pairs absent
    here (valid / test examples, older items) read the user's plain profile.
    """
    if "split" not in interactions_with_split.columns:
        raise ValueError("user profiles need interactions with a 'split' column (data.split)")
    train = _recent_first(interactions_with_split.filter(pl.col("split") == TRAIN))
    recent = _recent_items(train, items_text, max_items + 1)
    profiles: dict[tuple[str, str], str] = {}
    for user, ids in recent.iter_rows():
        for left_out in ids[:max_items]:
            parts = [items_text[i] for i in ids if i != left_out and items_text[i]][:max_items]
            profiles[(str(user), str(left_out))] = (
                "Recent items: " + " | ".join(parts) if parts else ""
            )
    return profiles


@dataclass(frozen=True)
class TextTemplates:
    """The knobs of the text templates, with methods that apply them."""

    description_chars: int = 300
    max_categories: int = 5
    review_chars: int = 300
    max_items: int = 10
    max_reviews: int = 3

    def item_text(self, row: Mapping[str, Any]) -> str:
        """:func:`item_text` with these knobs."""
        return item_text(row, self.description_chars, self.max_categories)

    def item_texts(self, items: pl.DataFrame) -> dict[str, str]:
        """:func:`item_texts` with these knobs."""
        return item_texts(items, self.description_chars, self.max_categories)

    def review_text(self, row: Mapping[str, Any]) -> str:
        """:func:`review_text` with these knobs."""
        return review_text(row, self.review_chars)

    def user_profile_texts(
        self,
        interactions_with_split: pl.DataFrame,
        items_text: Mapping[str, str],
        reviews: pl.DataFrame | None = None,
    ) -> dict[str, str]:
        """:func:`user_profile_texts` with these knobs."""
        return user_profile_texts(
            interactions_with_split,
            items_text,
            reviews,
            self.max_items,
            self.max_reviews,
            self.review_chars,
        )
