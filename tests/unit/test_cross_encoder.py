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
    tokenizer = BertTokenizerFast(vocab_file=str(vocab))
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
