"""Input encoders: a batch's features -> one input vector ``(B, D)`` per example.

Entity attributes live in *entity tables* held by the model as buffers, indexed by the
entity's row (``user_row`` / ``item_row``, every user or item of the dataset, cold ones
included), while id embeddings use the train-only vocabularies (``user_idx`` /
``item_idx``, 0 = unseen). So a cold item still brings its attributes and its LM text
embedding, and the batch only carries four integer columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, cast

import torch
from torch import Tensor, nn

from mtlrec.core.registry import Registry
from mtlrec.core.schema import InputSchema

if TYPE_CHECKING:
    from mtlrec.config.experiment import ExperimentConfig


def _row_key(name: str) -> str:
    return "user_row" if name.startswith("users.") else "item_row"


def _buffer_name(name: str) -> str:
    return "table_" + name.replace(".", "__")


class InputEncoder(nn.Module):
    """Base of input encoders: ``forward(features) -> (B, out_dim)``.

    A subclass declares what it needs instead of being special-cased by name:
    ``needs_tokens`` (the run must build the ``users.tokens`` / ``items.tokens`` tables) and
    :meth:`config_params` (constructor parameters taken from other config sections).
    """

    out_dim: int
    needs_tokens: ClassVar[bool] = False

    @classmethod
    def config_params(cls, config: ExperimentConfig) -> dict[str, Any]:
        """Constructor parameters this encoder takes from the experiment config beyond its
        own ``model.inputs.params`` (which override them); none by default."""
        return {}


class FeatureInputs(InputEncoder):
    """Concatenates id embeddings, attribute embeddings, numeric values and projected LM text.

    With ``dot_interactions`` the pairwise dot products of all those vectors are appended
    (DLRM's interaction layer), so user-side and item-side vectors meet explicitly, e.g.
    the user's history profile against the item's text.

    ``embedding_init_std``: id and attribute embeddings start from ``N(0, std^2)`` (the
    padding row of list-valued attributes stays zero); ``None`` keeps PyTorch's ``N(0, 1)``.
    Small values (0.01, as CTR libraries such as torch-rechub use) help on wide tabular
    data such as census-income.

    ``forward(features)`` reads ``user_idx``, ``item_idx``, ``user_row``, ``item_row``
    (each ``(B,)`` int64) and returns ``(B, out_dim)``.
    """

    def __init__(
        self,
        schema: InputSchema,
        tables: Mapping[str, Tensor],
        embedding_dim: int = 32,
        text_dim: int = 64,
        use_ids: bool = True,
        dot_interactions: bool = False,
        embedding_init_std: float | None = None,
    ) -> None:
        super().__init__()
        if dot_interactions:
            text_dim = embedding_dim  # every vector is paired with every other: one width
        self.schema, self.embedding_dim, self.text_dim, self.use_ids = (
            schema,
            embedding_dim,
            text_dim,
            use_ids,
        )
        self.dot_interactions = dot_interactions
        self.embedding_init_std = embedding_init_std
        self.ids = nn.ModuleDict()
        if use_ids and schema.n_user_ids:
            self.ids["user_idx"] = nn.Embedding(schema.n_user_ids, embedding_dim)
        if use_ids and schema.n_item_ids:
            self.ids["item_idx"] = nn.Embedding(schema.n_item_ids, embedding_dim)
        for name in (*schema.categorical, *schema.numeric, *schema.text):
            if name not in tables:
                raise ValueError(f"no entity table for input feature {name!r}")
            self.register_buffer(_buffer_name(name), tables[name], persistent=True)
        self.categorical = nn.ModuleDict(
            {
                _buffer_name(n): nn.EmbeddingBag(size, embedding_dim, mode="mean", padding_idx=0)
                if tables[n].dim() == 2
                else nn.Embedding(size, embedding_dim)
                for n, size in schema.categorical.items()
            }
        )
        self.text = nn.ModuleDict(
            {
                _buffer_name(n): nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, text_dim))
                for n, dim in schema.text.items()
            }
        )
        self.dense = nn.ModuleDict(
            {
                name: nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, text_dim))
                for name, dim in schema.dense.items()
            }
        )
        if embedding_init_std is not None:
            for module in (*self.ids.values(), *self.categorical.values()):
                table = cast(nn.Embedding | nn.EmbeddingBag, module)
                nn.init.normal_(table.weight, 0.0, embedding_init_std)
                if table.padding_idx is not None:
                    with torch.no_grad():
                        table.weight[table.padding_idx].zero_()
        n_vectors = len(self.ids) + len(self.categorical) + len(self.text) + len(self.dense)
        self.out_dim = (
            embedding_dim * (len(self.ids) + len(self.categorical))
            + len(schema.numeric)
            + text_dim * (len(self.text) + len(self.dense))
            + (n_vectors * (n_vectors - 1) // 2 if dot_interactions else 0)
        )
        if self.out_dim == 0:
            raise ValueError("the input encoder has no input: enable ids, attributes or text")

    def table(self, name: str) -> Tensor:
        """The entity table of feature ``name`` (rows = entities)."""
        value = getattr(self, _buffer_name(name))
        assert isinstance(value, Tensor)
        return value

    def forward(self, features: Mapping[str, Tensor]) -> Tensor:
        vectors = [embedding(features[key]) for key, embedding in self.ids.items()]  # (B, E)
        for name in self.schema.categorical:
            codes = self.table(name)[features[_row_key(name)]]  # (B,) or (B, L)
            vectors.append(self.categorical[_buffer_name(name)](codes))
        for name in self.schema.text:
            table = self.table(name)[features[_row_key(name)]]  # (B, D_lm)
            vectors.append(self.text[_buffer_name(name)](table))  # (B, text_dim)
        for name, projection in self.dense.items():
            vectors.append(projection(features[name]))  # (B, D) -> (B, text_dim)
        parts = list(vectors)
        if self.schema.numeric:
            values = [self.table(n)[features[_row_key(n)]] for n in self.schema.numeric]
            parts.append(torch.nan_to_num(torch.stack(values, dim=-1), nan=0.0))  # (B, n)
        if self.dot_interactions and len(vectors) > 1:
            stacked = torch.stack(vectors, dim=1)  # (B, F, E)
            dots = stacked @ stacked.transpose(1, 2)  # (B, F, F)
            upper = torch.triu_indices(len(vectors), len(vectors), offset=1)
            parts.append(dots[:, upper[0], upper[1]])  # (B, F(F-1)/2), DLRM's dot interaction
        return torch.cat(parts, dim=-1)  # (B, out_dim)


INPUTS: Registry[type[InputEncoder]] = Registry("input encoder")
INPUTS.register("features")(FeatureInputs)
