"""The LM cross-encoder inputs: packing, fine-tuning modes, and learning a toy task."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast  # type: ignore[attr-defined]

from mtlrec.core.types import TaskSpec
from mtlrec.models import BACKBONES, HEADS, InputSchema, MultiTaskModel
from mtlrec.models.cross_encoder import CrossEncoderInputs, pack_pairs, token_table
from mtlrec.text import TextEncoder

WORDS = ["cheap", "guitar", "strings", "drum", "sticks", "loves", "rock", "jazz", "piano"]
"""The toy vocabulary; every word is one token, and the leak test's item texts are words."""
SPEC = {"like": TaskSpec("like", "binary")}


@pytest.fixture(scope="module")
def vocab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("v") / "vocab.txt"
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    return path


def encoder(vocab: Path) -> TextEncoder:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    tokenizer = BertTokenizerFast(vocab=str(vocab))  # transformers 5 ignores vocab_file=
    return TextEncoder(BertModel(config), tokenizer, "mean", 32, False, "tiny")  # type: ignore[arg-type]


def inputs(vocab: Path, mode: str) -> CrossEncoderInputs:
    text = encoder(vocab)
    users = token_table(text.tokenizer, ["loves rock", "loves jazz piano"], 6)
    items = token_table(text.tokenizer, ["guitar strings", "piano", "drum sticks cheap"], 6)
    return CrossEncoderInputs(
        InputSchema(),
        {"users.tokens": users, "items.tokens": items},
        mode=mode,
        top_k=1,
        lora_r=2,
        encoder=text,
    )  # type: ignore[arg-type]


def test_pack_pairs_is_left_aligned_with_separators() -> None:
    ids, mask = pack_pairs(
        torch.tensor([[5, 6, 0], [7, 0, 0]]), torch.tensor([[8, 0], [9, 10]]), cls_id=2, sep_id=3
    )
    assert ids.tolist() == [[2, 5, 6, 3, 8, 3, 0, 0], [2, 7, 3, 9, 10, 3, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 1, 1, 1, 0, 0]] * 2


@pytest.mark.parametrize(
    ("mode", "trains_lm"), [("frozen", False), ("top_k", True), ("lora", True), ("full", True)]
)
def test_modes_decide_which_lm_weights_learn(vocab: Path, mode: str, trains_lm: bool) -> None:
    cross = inputs(vocab, mode)
    body = BACKBONES.get("shared_bottom")(cross.out_dim, ["like"], shared=(), tower=(8,))
    model = MultiTaskModel(
        cross, body, {"like": HEADS.get("fc")(body.out_dim("like"), SPEC["like"])}, SPEC
    )
    model.train()
    assert cross.encoder.training is (mode != "frozen")  # a frozen LM keeps dropout off
    features = {"user_row": torch.tensor([0, 1, 1]), "item_row": torch.tensor([0, 1, 2])}
    out = model(features)["like"]
    assert out.shape == (3,)
    out.sum().backward()
    lm_grads = [p.grad for p in cross.encoder.parameters() if p.grad is not None]
    assert bool(lm_grads) is trains_lm
    assert cross.report.trainable_params == sum(
        p.numel() for p in cross.encoder.parameters() if p.requires_grad
    )
    if mode == "lora":
        assert 0 < cross.report.trainable_params < cross.report.total_params / 4


def test_cross_encoder_learns_which_user_likes_which_item(vocab: Path) -> None:
    cross = inputs(vocab, "full")
    body = BACKBONES.get("shared_bottom")(
        cross.out_dim, ["like"], shared=(), tower=(16,), dropout=0.0
    )
    model = MultiTaskModel(
        cross, body, {"like": HEADS.get("fc")(body.out_dim("like"), SPEC["like"])}, SPEC
    )
    users = torch.tensor([0, 0, 0, 1, 1, 1])
    items = torch.tensor([0, 1, 2, 0, 1, 2])
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])  # rock: guitar, drums; jazz: piano
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(150):
        logits = model({"user_row": users, "item_row": items})["like"]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.2 * losses[0]


def _leak_run(vocab: Path) -> tuple[object, TextEncoder]:
    """A run's data with 2 users: u0 trained on guitar, piano, drum (newest first: drum),
    u1 on jazz; u0's valid item is strings. Its profile lists every training item."""
    import polars as pl

    from mtlrec.data.examples import EntityData, ExampleSet
    from mtlrec.pipeline.run_data import RunData

    interactions = pl.DataFrame(
        {
            "interaction_id": [0, 1, 2, 3, 4],
            "user_id": ["u0", "u0", "u0", "u1", "u0"],
            "item_id": ["guitar", "piano", "drum", "jazz", "strings"],
            "timestamp": [1, 2, 3, 1, 4],
            "split": ["train", "train", "train", "train", "valid"],
        }
    )
    items = ["guitar", "piano", "drum", "jazz", "strings"]
    entities = EntityData(["u0", "u1"], items, torch.tensor([1, 2]), torch.tensor([1, 2, 3, 4, 0]))
    n = interactions.height
    examples = ExampleSet(
        "interaction",
        {"user_row": torch.tensor([0, 0, 0, 1, 0]), "item_row": torch.tensor([0, 1, 2, 3, 4])},
        {},
        {},
        torch.tensor([0, 0, 0, 0, 1]),
        torch.zeros(n, dtype=torch.bool),
    )

    class Dataset:
        tables = {"interactions": interactions}

    return RunData(Dataset(), examples, entities, {}, set()), encoder(vocab)  # type: ignore[arg-type]


def test_a_training_positive_never_sees_its_own_item_in_the_user_profile(vocab: Path) -> None:
    """The cross-encoder's user side for a training example (u, i) is u's profile of recent
    training items WITHOUT i (before the fix, u0's profile listed all three of its items,
    so every training positive read its own item); valid / ranking pairs read the plain
    profile, which holds only training items."""
    from mtlrec.pipeline.run_data import _attach_token_tables

    data, text = _leak_run(vocab)
    items = list(data.entities.item_ids)  # type: ignore[attr-defined]
    _attach_token_tables(data, text, items, 8)  # type: ignore[arg-type]
    tables = data.entities.tables  # type: ignore[attr-defined]
    model = CrossEncoderInputs(InputSchema(), tables, encoder=text)
    features = data.examples.features  # type: ignore[attr-defined]
    profiles = model.user_profile_tokens(features)  # (N, L)
    vocab_ids = text.tokenizer.convert_tokens_to_ids(items)
    for row, (item, is_train) in enumerate(
        zip(features["item_row"].tolist(), (data.examples.split == 0).tolist(), strict=True)  # type: ignore[attr-defined]
    ):
        seen = set(profiles[row].tolist())
        if is_train:
            assert vocab_ids[item] not in seen, f"training example {row} reads its own item"
    # u0's other training items stay in the left-out profiles, and the plain profile (what
    # ranking and serving read) holds every training item of u0 and nothing else
    first = set(profiles[0].tolist())
    assert {vocab_ids[1], vocab_ids[2]} <= first
    plain = set(tables["users.tokens"][0].tolist()) - {0, text.tokenizer.unk_token_id}
    assert plain == {vocab_ids[0], vocab_ids[1], vocab_ids[2]}
    # the valid example reads the plain profile
    assert features["user_tokens_row"][4] == -1
    assert torch.equal(profiles[4], tables["users.tokens"][0])
