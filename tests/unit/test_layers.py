"""The shared building blocks: FastDropout's distribution and where it is used."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtlrec.models.layers import MLP, FastDropout, use_fast_dropout


def test_fast_dropout_keeps_one_minus_p_and_rescales_them() -> None:
    torch.manual_seed(0)
    x = torch.ones(400, 500, requires_grad=True)
    out = FastDropout(0.3).train()(x)
    kept = out > 0
    assert float(kept.float().mean()) == pytest.approx(0.7, abs=0.005)
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 1 / 0.7))
    assert float(out.detach().mean()) == pytest.approx(1.0, abs=0.01)  # unbiased
    out.sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad, out.detach())  # the gradient is the scaled mask


def test_fast_dropout_is_the_identity_in_eval_and_at_p_zero() -> None:
    x = torch.randn(8, 4)
    assert torch.equal(FastDropout(0.5).eval()(x), x)
    assert torch.equal(FastDropout(0.0).train()(x), x)
    assert torch.equal(FastDropout(1.0).train()(x), torch.zeros_like(x))


def test_transformer_layers_and_mlps_use_it() -> None:
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.1, batch_first=True)
    encoder = use_fast_dropout(nn.TransformerEncoder(layer, 2, enable_nested_tensor=False))
    dropouts = [m for m in encoder.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == 6 and all(type(m) is FastDropout for m in dropouts)
    assert all(m.p == 0.1 for m in dropouts)
    assert any(type(m) is FastDropout for m in MLP(4, [8], dropout=0.2).modules())
    encoder.train()(torch.randn(3, 5, 16)).sum().backward()  # trains as before
