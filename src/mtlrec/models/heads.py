"""Task heads: a task's representation ``(B, H)`` -> its prediction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mtlrec.core.registry import Registry
from mtlrec.core.types import TaskSpec
from mtlrec.models.layers import MLP, AttentionPooling


class Head(nn.Module):
    """Base head. ``forward(rep (B, H), features) -> (B,)`` for one output, else ``(B, C)``.

    ``needs_tokens``: the head reads the items' LM token table (``items.tokens``), which the
    run then builds; declared here so shared machinery never tests a head's name.

    ``example_params`` are the keyword parameters (beside ``in_dim`` and ``spec``) of a tiny
    instance: the contract tests build every registered head with them. The contract toy
    offers the features ``item_tokens`` ``(B, 3)`` (ids below 40, 0 = padding) and
    ``item_vector`` ``(B, 8)``.
    """

    needs_tokens: ClassVar[bool] = False
    example_params: ClassVar[dict[str, Any]] = {}

    def __init__(self, in_dim: int, spec: TaskSpec) -> None:
        super().__init__()
        if not self.supports(spec):
            raise ValueError(f"{type(self).__name__} cannot serve {spec.kind} task {spec.name!r}")
        self.in_dim, self.spec = in_dim, spec

    @classmethod
    def supports(cls, spec: TaskSpec) -> bool:
        """Whether this head can produce the prediction ``spec`` needs."""
        return True

    def output_bias(self) -> Tensor | None:
        """The bias of the output layer (``(n_outputs,)``), if the head has one."""
        out = getattr(self, "out", None)
        return out.bias if isinstance(out, nn.Linear) else None

    @torch.no_grad()
    def init_output(self, prior: Tensor) -> None:
        """Start from the training prior: the label mean (regression) or its logit.

        ``prior`` is ``(n_outputs,)``; heads without an output bias ignore it.
        """
        bias = self.output_bias()
        if bias is not None and bias.shape == prior.shape:
            bias.copy_(prior)

    def _shape(self, out: Tensor) -> Tensor:
        return (
            out.squeeze(-1) if self.spec.n_outputs == 1 and self.spec.kind != "similarity" else out
        )


HEADS: Registry[type[Head]] = Registry("head")


@HEADS.register("fc")
class FullyConnectedHead(Head):
    """An MLP then a linear layer to ``spec.n_outputs`` logits (or values)."""

    example_params = {"hidden": (8,)}

    def __init__(
        self, in_dim: int, spec: TaskSpec, hidden: Sequence[int] = (), dropout: float = 0.0
    ):
        super().__init__(in_dim, spec)
        self.hidden, self.dropout = tuple(hidden), dropout
        self.mlp = MLP(in_dim, hidden, dropout)
        self.out = nn.Linear(self.mlp.out_dim, spec.n_outputs)

    def forward(self, rep: Tensor, features: Mapping[str, Tensor]) -> Tensor:
        return self._shape(self.out(self.mlp(rep)))


@HEADS.register("self_attention")
class SelfAttentionHead(Head):
    """Attends from the task representation over token embeddings of the item.

    ``tokens`` names a feature ``(B, L)`` of token ids (0 = padding), e.g. the item's
    attribute or text tokens; they are embedded by the head (``vocab_size`` x ``dim``),
    contextualised by one self-attention layer, then pooled by attention from ``rep``. The
    pooled vector and ``rep`` feed a linear output. Used for item attribute matching.
    """

    needs_tokens: ClassVar[bool] = True
    example_params = {"tokens": "item_tokens", "vocab_size": 40, "dim": 8, "heads": 2}

    def __init__(
        self,
        in_dim: int,
        spec: TaskSpec,
        tokens: str = "item_tokens",
        vocab_size: int = 30522,
        dim: int = 64,
        heads: int = 2,
    ) -> None:
        super().__init__(in_dim, spec)
        self.tokens, self.vocab_size, self.dim, self.heads = tokens, vocab_size, dim, heads
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.encoder = nn.TransformerEncoderLayer(
            dim, heads, dim * 2, dropout=0.0, batch_first=True
        )
        self.pool = AttentionPooling(in_dim, dim, dim, heads)
        self.out = nn.Linear(in_dim + dim, spec.n_outputs)

    def forward(self, rep: Tensor, features: Mapping[str, Tensor]) -> Tensor:
        ids = features[self.tokens]  # (B, L)
        mask = ids > 0
        tokens = self.encoder(self.embed(ids), src_key_padding_mask=~mask)  # (B, L, dim)
        pooled, _ = self.pool(rep, tokens, mask)  # (B, dim)
        return self._shape(self.out(torch.cat([rep, pooled], dim=-1)))


@HEADS.register("cosine")
class CosineHead(Head):
    """Cosine similarity.

    Without ``against``: projects ``rep`` to ``spec.n_outputs`` dims and returns the unit
    vector ``(B, D)`` (similarity tasks, cosine / InfoNCE losses against a target embedding).
    With ``against`` (a feature ``(B, E)``, e.g. the item's LM embedding): returns the
    logit ``scale * cos(W rep, V against) + bias`` ``(B,)``.
    """

    example_params = {"against": "item_vector", "against_dim": 8, "dim": 8}

    def __init__(
        self,
        in_dim: int,
        spec: TaskSpec,
        against: str | None = None,
        against_dim: int = 384,
        dim: int = 64,
        scale: float = 10.0,
    ) -> None:
        super().__init__(in_dim, spec)
        self.against, self.against_dim, self.dim, self.scale = against, against_dim, dim, scale
        out_dim = spec.n_outputs if against is None else dim
        self.left = nn.Linear(in_dim, out_dim)
        self.right = nn.Linear(against_dim, dim) if against is not None else None
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, rep: Tensor, features: Mapping[str, Tensor]) -> Tensor:
        left = F.normalize(self.left(rep), dim=-1)
        if self.right is None or self.against is None:
            return left
        right = F.normalize(self.right(features[self.against]), dim=-1)
        return self.scale * (left * right).sum(-1) + self.bias

    @classmethod
    def supports(cls, spec: TaskSpec) -> bool:
        return spec.kind in ("binary", "regression", "similarity")
