"""FeatureInputs: the initial scale of id and attribute embeddings."""

from __future__ import annotations

from collections.abc import Callable

import torch

from conftest import TOY_SCHEMA
from mtlrec.data.examples import ExampleSet
from mtlrec.models import FeatureInputs

SCHEMA = TOY_SCHEMA
Toy = Callable[..., tuple[ExampleSet, dict[str, torch.Tensor]]]


def test_embedding_init_std_sets_the_scale_of_every_id_and_attribute_table(toy: Toy) -> None:
    _, tables = toy(n=64)
    torch.manual_seed(0)
    default = FeatureInputs(SCHEMA, tables, embedding_dim=64, text_dim=8)
    torch.manual_seed(0)
    small = FeatureInputs(SCHEMA, tables, embedding_dim=64, text_dim=8, embedding_init_std=0.01)
    assert small.embedding_init_std == 0.01 and default.embedding_init_std is None
    for name in ("user_idx", "item_idx"):
        assert 0.5 < float(default.ids[name].weight.detach().std()) < 1.5  # PyTorch's N(0, 1)
        assert 0.005 < float(small.ids[name].weight.detach().std()) < 0.02
    for table in small.categorical.values():
        assert 0.005 < float(table.weight.detach().std()) < 0.02
    assert small.out_dim == default.out_dim
