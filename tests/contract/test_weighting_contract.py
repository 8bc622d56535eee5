"""Contract of every registered weighting strategy, on a learnable two-task toy.

The toy is a shared-bottom model (one shared Linear + ReLU, a Linear head per task) on
fixed synthetic data: ``reg`` is a regression target (MSE) and ``clf`` a binary one
(BCE with logits). A new strategy is checked here by registering it: it is built with its
own ``example_params`` (see ``docs/extending.md``); no table here names it.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

from mtlrec.weighting import WEIGHTINGS, Weighting, WeightingContext, make_weighting
from mtlrec.weighting import weighted_backward as backward

TASKS = ("reg", "clf")
STEPS = 150
STEPS_PER_EPOCH = 10
NAMES = WEIGHTINGS.names()


class SharedBottom(nn.Module):
    def __init__(self, n_in: int = 6, hidden: int = 16) -> None:
        super().__init__()
        self.shared = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU())
        self.heads = nn.ModuleDict({t: nn.Linear(hidden, 1) for t in TASKS})

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        h = self.shared(x)  # (B, hidden)
        return {t: head(h).squeeze(-1) for t, head in self.heads.items()}  # (B,) each


def _data() -> tuple[Tensor, dict[str, Tensor]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 6, generator=g)
    reg = x @ torch.tensor([1.0, -2.0, 0.5, 0.0, 1.5, -1.0]) + 0.1 * torch.randn(256, generator=g)
    clf = ((x[:, 0] - x[:, 3] + 0.5 * x[:, 5]) > 0).float()
    return x, {"reg": reg, "clf": clf}


def _losses(model: SharedBottom, x: Tensor, y: dict[str, Tensor]) -> dict[str, Tensor]:
    out = model(x)
    return {
        "reg": nn.functional.mse_loss(out["reg"], y["reg"]),
        "clf": nn.functional.binary_cross_entropy_with_logits(out["clf"], y["clf"]),
    }


def _make(name: str) -> Weighting:
    """The strategy ``name`` for the toy's tasks, with its own example parameters."""
    return make_weighting(name, TASKS, **WEIGHTINGS.get(name).example_params)


def _context(model: SharedBottom, step: int = 0) -> WeightingContext:
    return WeightingContext(
        step=step, epoch=step // STEPS_PER_EPOCH, shared_parameters=list(model.shared.parameters())
    )


Run = tuple[SharedBottom, Weighting, dict[str, float], dict[str, float]]


def _grads(model: nn.Module) -> list[Tensor]:
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    return [g.clone() for g in grads if g is not None]


def _train(name: str) -> Run:
    """150 full-batch Adam steps; returns model, strategy, first and last task losses."""
    torch.manual_seed(0)
    model = SharedBottom()
    strategy = _make(name)
    optimizer = torch.optim.Adam([*model.parameters(), *strategy.parameters()], lr=0.02)
    x, y = _data()
    first: dict[str, float] = {}
    epoch_sums = dict.fromkeys(TASKS, 0.0)
    for step in range(STEPS):
        optimizer.zero_grad()
        losses = _losses(model, x, y)
        if step == 0:
            first = {t: float(v.detach()) for t, v in losses.items()}
        used = backward(strategy, losses, _context(model, step))
        assert set(used) == set(TASKS)
        optimizer.step()
        for t in TASKS:
            epoch_sums[t] += float(losses[t].detach())
        if (step + 1) % STEPS_PER_EPOCH == 0:
            strategy.end_epoch({t: s / STEPS_PER_EPOCH for t, s in epoch_sums.items()})
            epoch_sums = dict.fromkeys(TASKS, 0.0)
    with torch.no_grad():
        last = {t: float(v) for t, v in _losses(model, x, y).items()}
    return model, strategy, first, last


@pytest.fixture(scope="module")
def trained() -> dict[str, Run]:
    return {name: _train(name) for name in NAMES}


def test_every_strategy_is_registered() -> None:
    expected = {"static", "equal", "uncertainty", "dwa", "gradnorm", "pcgrad", "cagrad", "mgda"}
    assert expected <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_training_reduces_every_task_loss(name: str, trained: dict[str, Run]) -> None:
    _, _, first, last = trained[name]
    # The MSE starts near 9 and the BCE near log 2; both must fall well below that.
    assert last["reg"] < 0.3 * first["reg"], (first, last)
    assert last["clf"] < 0.3 * first["clf"], (first, last)


@pytest.mark.parametrize("name", NAMES)
def test_weights_are_one_finite_float_per_task(name: str, trained: dict[str, Run]) -> None:
    _, strategy, _, _ = trained[name]
    weights = strategy.weights()
    assert list(weights) == list(TASKS)
    assert all(isinstance(w, float) and torch.isfinite(torch.tensor(w)) for w in weights.values())


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trips_into_a_fresh_instance(name: str, trained: dict[str, Run]) -> None:
    model, trained_strategy, _, _ = trained[name]
    strategy = copy.deepcopy(trained_strategy)  # the fixture stays untouched
    fresh = _make(name)
    fresh.load_state_dict(strategy.state_dict())
    assert fresh.weights() == strategy.weights()
    # The next step behaves the same too (optimizer and generator state came along).
    x, y = _data()
    grads = []
    for s in (strategy, fresh):
        m = copy.deepcopy(model)
        backward(s, _losses(m, x, y), _context(m))
        grads.append([p.grad.clone() for p in m.parameters() if p.grad is not None])
    assert fresh.weights() == strategy.weights()
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_gives_the_same_parameters(name: str, trained: dict[str, Run]) -> None:
    model, strategy, _, _ = trained[name]
    again, strategy_again, _, _ = _train(name)
    for a, b in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)
    assert strategy.weights() == strategy_again.weights()


@pytest.mark.parametrize("name", NAMES)
def test_weighted_backward_accumulates_into_existing_grads(name: str) -> None:
    torch.manual_seed(1)
    model = SharedBottom()
    strategy = _make(name)
    x, y = _data()

    # One strategy calls twice without zero_grad; its twin calls once per fresh grad.
    twin = copy.deepcopy(strategy)
    backward(strategy, _losses(model, x, y), _context(model))
    backward(strategy, _losses(model, x, y), _context(model))
    accumulated = _grads(model)

    separate = []
    for _ in range(2):
        model.zero_grad()
        backward(twin, _losses(model, x, y), _context(model))
        separate.append(_grads(model))
    for acc, g1, g2 in zip(accumulated, *separate, strict=True):
        torch.testing.assert_close(acc, g1 + g2)
        if torch.allclose(g1, g2):  # the strategy did not change between calls: doubled
            torch.testing.assert_close(acc, 2 * g1)


@pytest.mark.parametrize("name", NAMES)
def test_a_step_with_a_missing_task_leaves_its_weight_alone(name: str) -> None:
    torch.manual_seed(2)
    model = SharedBottom()
    strategy = _make(name)
    x, y = _data()
    backward(strategy, _losses(model, x, y), _context(model))  # both tasks once
    before = strategy.weights()["clf"]
    model.zero_grad()
    used = backward(strategy, {"reg": _losses(model, x, y)["reg"]}, _context(model))
    assert list(used) == ["reg"]
    assert strategy.weights()["clf"] == before
    assert model.heads["clf"].weight.grad is None  # the absent task's head got nothing
    assert model.heads["reg"].weight.grad is not None
    assert all(p.grad is not None for p in model.shared.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_unknown_task_fails_naming_the_known_ones(name: str) -> None:
    model = SharedBottom()
    strategy = _make(name)
    x, y = _data()
    losses = {**_losses(model, x, y), "typo": torch.tensor(1.0, requires_grad=True)}
    with pytest.raises(KeyError, match="reg"):
        backward(strategy, losses, _context(model))
