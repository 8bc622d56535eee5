"""Building blocks shared by backbones and heads: MLP, experts, gates, attention pooling,
a faster dropout on CPU."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


class FastDropout(nn.Dropout):
    """:class:`torch.nn.Dropout` with the mask drawn by ``rand_like`` on CPU: the same
    distribution (each element kept with probability ``1 - p``, kept ones scaled by
    ``1 / (1 - p)``), about 3x faster than ``F.dropout``'s CPU Bernoulli draw, which cost
    as much as the matrix products it follows in the sequential model's training. Other
    devices, ``inplace`` and eval mode use :func:`torch.nn.functional.dropout` as it is.
    Input and output ``(..., D)``."""

    def forward(self, input: Tensor) -> Tensor:
        if not self.training or self.p == 0.0 or input.device.type != "cpu" or self.inplace:
            return super().forward(input)
        if self.p == 1.0:
            return input * 0.0
        keep = torch.rand_like(input).ge_(self.p).div_(1.0 - self.p)
        return input * keep


def use_fast_dropout(module: nn.Module) -> nn.Module:
    """Replace every :class:`torch.nn.Dropout` submodule of ``module`` (e.g. inside
    :class:`torch.nn.TransformerEncoderLayer`) by a :class:`FastDropout` of the same ``p``;
    returns ``module``. Dropout inside attention (a ``dropout_p`` argument) stays."""
    for name, child in module.named_children():
        if type(child) is nn.Dropout:
            setattr(module, name, FastDropout(child.p))
        else:
            use_fast_dropout(child)
    return module


class MLP(nn.Sequential):
    """``in_dim -> hidden[0] -> ... -> hidden[-1]``: Linear, norm, activation, dropout per layer.

    With ``hidden=()`` it is the identity and ``out_dim == in_dim``. Input ``(B, in_dim)``,
    output ``(B, out_dim)``.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        dropout: float = 0.0,
        activation: str = "relu",
        norm: bool = True,
    ) -> None:
        layers: list[nn.Module] = []
        width = in_dim
        for size in hidden:
            layers.append(nn.Linear(width, size))
            if norm:
                layers.append(nn.LayerNorm(size))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(FastDropout(dropout))
            width = size
        super().__init__(*layers)
        self.out_dim = width


class Gate(nn.Module):
    """Softmax gate over ``n_experts``: ``(B, in_dim) -> (B, n_experts)`` weights."""

    def __init__(self, in_dim: int, n_experts: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, n_experts)

    def forward(self, x: Tensor) -> Tensor:
        return torch.softmax(self.linear(x), dim=-1)


def mix_experts(expert_outputs: Tensor, weights: Tensor) -> Tensor:
    """Weighted sum of experts: ``(B, E, H)`` and ``(B, E)`` -> ``(B, H)``."""
    return torch.einsum("beh,be->bh", expert_outputs, weights)


class AttentionPooling(nn.Module):
    """Attend from a query ``(B, Q)`` over keys ``(B, L, K)`` with a padding mask ``(B, L)``.

    Multi-head scaled dot-product attention; returns ``(B, out_dim)`` and the attention
    weights ``(B, L)`` averaged over heads (for explanations).
    """

    def __init__(self, query_dim: int, key_dim: int, out_dim: int, heads: int = 2) -> None:
        super().__init__()
        self.query = nn.Linear(query_dim, out_dim)
        self.attention = nn.MultiheadAttention(
            out_dim, heads, kdim=key_dim, vdim=key_dim, batch_first=True
        )

    def forward(self, query: Tensor, keys: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        q = self.query(query).unsqueeze(1)  # (B, 1, out)
        empty = ~mask.any(dim=1)  # rows with no key at all attend to a zero key instead
        safe_mask = mask.clone()
        safe_mask[empty, 0] = True
        out, weights = self.attention(q, keys, keys, key_padding_mask=~safe_mask)
        out = out.squeeze(1).masked_fill(empty.unsqueeze(1), 0.0)  # (B, out)
        return out, weights.squeeze(1)
