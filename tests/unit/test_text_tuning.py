"""Fine-tuning the LM on a text classification task (staged training's first stage) with the
packaged MiniLM, offline: it learns a split no frozen pooling hands it, picks its epoch on
validation, and is tuned once, then served from the cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from mtlrec.text import EmbeddingCache, TextEncoder
from mtlrec.text.tuning import (
    TunedEncoder,
    TuningSettings,
    length_bucketed_batches,
    predict_classes,
    tune_classifier,
)

GOOD = ["works great, love it", "excellent sound, five stars", "perfect, very happy"]
BAD = ["broke after a day, awful", "terrible build, returned it", "worst purchase, avoid"]


def _data(repeat: int) -> tuple[list[str], np.ndarray]:
    texts = (GOOD + BAD) * repeat
    return texts, np.array(([1] * 3 + [0] * 3) * repeat)


def test_tuning_learns_the_classes_and_keeps_the_best_validation_epoch() -> None:
    torch.set_num_threads(1)
    encoder = TextEncoder.from_pretrained()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    train, valid = _data(4), _data(1)
    settings = TuningSettings(top_k=1, epochs=2, batch_size=8, lr=1e-4, max_length=16)
    lines: list[str] = []
    classifier, result = tune_classifier(
        encoder, *train, *valid, n_classes=2, settings=settings, log=lines.append
    )
    assert len(result.valid_macro_f1) == 2 and len(lines) == 2
    assert result.best_epoch == int(np.argmax(result.valid_macro_f1))
    predicted = predict_classes(encoder, classifier, valid[0])
    assert len(set(predicted.tolist())) == 2  # not one class for every example
    changed = {k for k, v in encoder.state_dict().items() if not torch.equal(v, before[k])}
    # only the top layer trained (top_k=1), the embeddings and lower layers did not
    assert changed and all(".layer.5." in k for k in changed)


def test_a_tuned_encoder_tunes_on_a_cache_miss_only(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    base = TextEncoder.from_pretrained()
    calls: list[int] = []

    def load() -> TextEncoder:
        calls.append(1)
        return TextEncoder.from_pretrained()

    settings = TuningSettings(top_k=1, epochs=1, batch_size=8, max_length=16)

    def tuned(digest: str) -> TunedEncoder:
        return TunedEncoder(
            load, base.model_id, base.dim, settings, digest, _data(2), _data(1), n_classes=2
        )

    first = tuned("data-a")
    assert first.model_id.startswith(base.model_id) and first.model_id != base.model_id
    assert tuned("data-b").model_id != first.model_id  # other training data, other vectors
    cache = EmbeddingCache(tmp_path / "embeddings")
    vectors = cache.get_or_encode(first, GOOD)
    assert calls == [1] and first.result is not None
    again = tuned("data-a")
    np.testing.assert_array_equal(cache.get_or_encode(again, GOOD), vectors)
    assert calls == [1] and again.result is None  # served from the cache, not tuned again
    assert json.dumps(first.result.to_json())


def test_length_bucketed_batches_cover_every_row_once_with_similar_lengths() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 120, size=1000)
    batches = length_bucketed_batches(lengths, size=32, window=10, rng=np.random.default_rng(1))
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(1000))
    assert all(len(b) <= 32 for b in batches)
    padded = sum(int(lengths[b].max()) * len(b) for b in batches)
    plain = length_bucketed_batches(lengths, size=32, window=0, rng=np.random.default_rng(1))
    assert sorted(np.concatenate(plain).tolist()) == list(range(1000))
    assert padded < 0.8 * sum(int(lengths[b].max()) * len(b) for b in plain)
