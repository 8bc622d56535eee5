"""Item content for content retrievers, the two-tower model, MMR and the diversity metric.

An item's text is its catalogue text (title, categories, brand, description, ...). Some
datasets ship no catalogue at all (Amazon 2014 5-core review files have no metadata), so
every item would read "(no description)" and every LM item embedding would be the same.
For such items the text falls back to what the *training* reviews say about them (summary
and text of each, at most ``max_reviews``): reviews of the validation and test
interactions never enter it, so no held-out review reaches a ranking model.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from mtlrec.config.experiment import ExperimentConfig
from mtlrec.data.fetch import FetchSettings
from mtlrec.pipeline.run_data import RunData
from mtlrec.text.templates import TextTemplates

MAX_REVIEWS = 20
"""Training reviews per item in a review-based item text."""


def review_texts(reviews: pl.DataFrame, max_reviews: int = MAX_REVIEWS) -> dict[str, str]:
    """Item id -> the summaries and texts of its first ``max_reviews`` training reviews."""
    if reviews.height == 0:
        return {}
    train = (
        reviews.filter(pl.col("split") == "train")
        .sort("item_id", "timestamp", "interaction_id")
        .with_columns(
            pl.concat_str(
                [pl.col("summary").fill_null(""), pl.col("text").fill_null("")], separator=". "
            ).alias("review")
        )
        .group_by("item_id", maintain_order=True)
        .agg(pl.col("review").head(max_reviews))
    )
    return {
        item: " ".join(r.strip() for r in parts if r.strip()) for item, parts in train.iter_rows()
    }


def item_content_texts(data: RunData, max_reviews: int = MAX_REVIEWS) -> list[str]:
    """One text per item row: its catalogue text, else its training reviews, else ""."""
    templates = TextTemplates()
    items = data.dataset.tables["items"]
    reviews = review_texts(data.dataset.tables.get("reviews", pl.DataFrame()), max_reviews)
    texts = []
    for row in items.iter_rows(named=True):
        text = templates.item_text(row)
        texts.append(text if text else reviews.get(row["item_id"], ""))
    return texts


def _degenerate(table: np.ndarray) -> bool:
    """True when every row is the same vector (items without any text)."""
    return bool(table.shape[0] < 2 or np.allclose(table, table[:1], atol=1e-6))


def item_content_embeddings(
    config: ExperimentConfig, data: RunData, settings: FetchSettings
) -> np.ndarray:
    """LM item embeddings ``(n_items, D)``: the run's own table when it tells items apart,
    otherwise :func:`item_content_texts` encoded by the run's LM (through the cache)."""
    table = data.entities.tables.get("items.text")
    if table is not None and not _degenerate(table.numpy()):
        return table.numpy().astype(np.float32)
    from mtlrec.text import EmbeddingCache, TextEncoder

    text = config.text
    encoder = TextEncoder.from_pretrained(
        text.model if text is not None else None,
        pooling=text.pooling if text is not None else "auto",
        max_length=text.max_length if text is not None else 128,
    )
    cache = EmbeddingCache(settings.cache_dir / "embeddings")
    texts = [t or "(no description)" for t in item_content_texts(data)]
    vectors = cache.get_or_encode(encoder, texts, batch_size=64, progress=False)
    return np.ascontiguousarray(vectors, dtype=np.float32)
