"""The pretrained LM itself as the shared encoder: a cross-encoder over user and item text.

Each example becomes ``[CLS] user profile [SEP] item text [SEP]``: both sides are
pre-tokenised into entity tables (``users.tokens`` ``(N_users, Lu)``, ``items.tokens``
``(N_items, Li)``, 0 = padding, no special tokens), and each batch packs its rows
left-aligned. The LM's pooled output ``(B, H)`` feeds the backbone (use ``shared_bottom``
with ``shared: []`` to give it to every head directly). The LM is frozen, fine-tuned in its
top ``top_k`` layers, through LoRA adapters, or fully (``mode``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from torch import Tensor

from mtlrec.core.schema import InputSchema
from mtlrec.models.inputs import INPUTS, InputEncoder

if TYPE_CHECKING:
    from mtlrec.config.experiment import ExperimentConfig

FinetuneMode = Literal["frozen", "top_k", "lora", "full"]


def pack_pairs(
    left: Tensor, right: Tensor, cls_id: int, sep_id: int, pad_id: int = 0
) -> tuple[Tensor, Tensor]:
    """``[CLS] left [SEP] right [SEP]`` per row, left-aligned, padded with ``pad_id``.

    ``left`` ``(B, Lu)`` and ``right`` ``(B, Li)`` hold token ids with 0 as padding. Returns
    ``input_ids`` and ``attention_mask``, both ``(B, Lu + Li + 3)``.
    """
    b = left.shape[0]
    cls = torch.full((b, 1), cls_id, dtype=left.dtype, device=left.device)
    sep = torch.full((b, 1), sep_id, dtype=left.dtype, device=left.device)
    ids = torch.cat([cls, left, sep, right, sep], dim=1)
    valid = torch.cat(
        [
            torch.ones_like(cls, dtype=torch.bool),
            left > 0,
            torch.ones_like(sep, dtype=torch.bool),
            right > 0,
            torch.ones_like(sep, dtype=torch.bool),
        ],
        dim=1,
    )
    order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)  # valid tokens first
    ids, valid = ids.gather(1, order), valid.gather(1, order)
    return ids.masked_fill(~valid, pad_id), valid.long()


class CrossEncoderInputs(InputEncoder):
    """LM cross-encoder over the user's profile tokens and the item's text tokens."""

    needs_tokens: ClassVar[bool] = True

    @classmethod
    def config_params(cls, config: ExperimentConfig) -> dict[str, Any]:
        """The LM and its fine-tuning mode come from the config's ``text`` section."""
        text = config.text
        if text is None:
            return {}
        return {"model": text.model, "mode": text.mode, "top_k": text.top_k, "lora_r": text.lora_r}

    user_tokens: Tensor
    item_tokens: Tensor
    user_tokens_left_out: Tensor

    def __init__(
        self,
        schema: InputSchema,
        tables: Mapping[str, Tensor],
        model: str | Path | None = None,
        mode: FinetuneMode = "frozen",
        top_k: int = 2,
        lora_r: int = 8,
        encoder: torch.nn.Module | None = None,
    ) -> None:
        super().__init__()
        from mtlrec.text import TextEncoder, configure_finetuning

        self.schema, self.model_path, self.mode, self.top_k, self.lora_r = (
            schema,
            model,
            mode,
            top_k,
            lora_r,
        )
        text_encoder = encoder if encoder is not None else TextEncoder.from_pretrained(model)
        assert isinstance(text_encoder, TextEncoder)
        self.report = configure_finetuning(text_encoder, mode, top_k=top_k, lora_r=lora_r)
        self.encoder = text_encoder
        tokenizer = text_encoder.tokenizer
        self.cls_id, self.sep_id = int(tokenizer.cls_token_id), int(tokenizer.sep_token_id)
        self.pad_id = int(tokenizer.pad_token_id or 0)
        for name in ("users.tokens", "items.tokens"):
            if name not in tables:
                raise ValueError(f"the cross-encoder needs the entity table {name!r}")
        self.register_buffer("user_tokens", tables["users.tokens"], persistent=False)
        self.register_buffer("item_tokens", tables["items.tokens"], persistent=False)
        left_out = tables.get("users.tokens_left_out", tables["users.tokens"][:0])
        self.register_buffer("user_tokens_left_out", left_out, persistent=False)
        self.out_dim = text_encoder.dim

    def train(self, mode: bool = True) -> CrossEncoderInputs:
        super().train(mode)
        if self.mode == "frozen":
            self.encoder.eval()  # a frozen LM keeps dropout off during training too
        return self

    def user_profile_tokens(self, features: Mapping[str, Tensor]) -> Tensor:
        """The profile tokens of each example's user ``(B, Lu)``: the profile without the
        example's own item where ``user_tokens_row`` points to one (training positives),
        else the user's profile (``users.tokens``)."""
        user = self.user_tokens[features["user_row"]]  # (B, Lu)
        rows = features.get("user_tokens_row")
        if rows is None or not len(self.user_tokens_left_out):
            return user
        own = rows >= 0
        left_out = self.user_tokens_left_out[rows.clamp(min=0)]  # (B, Lu)
        return torch.where(own[:, None], left_out, user)

    def forward(self, features: Mapping[str, Tensor]) -> Tensor:
        user = self.user_profile_tokens(features)  # (B, Lu)
        item = self.item_tokens[features["item_row"]]  # (B, Li)
        ids, mask = pack_pairs(user, item, self.cls_id, self.sep_id, self.pad_id)
        keep = int(mask.sum(dim=1).max())  # trim the all-padding tail
        context = torch.no_grad() if self.mode == "frozen" else torch.enable_grad()
        with context:
            pooled: Tensor = self.encoder(ids[:, :keep], mask[:, :keep])  # (B, H)
        return pooled


INPUTS.register("cross_encoder")(CrossEncoderInputs)


def token_table(tokenizer: object, texts: list[str], max_tokens: int) -> Tensor:
    """Token ids ``(N, max_tokens)`` of ``texts`` without special tokens, 0-padded."""
    encoded = tokenizer(  # type: ignore[operator]
        texts,
        add_special_tokens=False,
        truncation=True,
        max_length=max_tokens,
        padding="max_length",
        return_tensors="pt",
    )
    ids: Tensor = encoded["input_ids"]
    return ids.masked_fill(encoded["attention_mask"] == 0, 0)
