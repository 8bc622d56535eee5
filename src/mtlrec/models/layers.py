"""Building blocks shared by backbones and heads: MLP, experts, gates, attention pooling."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


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
                layers.append(nn.Dropout(dropout))
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
