"""``training.ema``: the exponential moving average of the weights is what validation,
the best epoch and the final model see, and it resumes exactly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from test_trainer import StopAfter, flat, loader, model_for, trainer_for
from torch import nn

from mtlrec.models import MultiTaskModel
from mtlrec.training.averaging import WeightAverage


def test_the_debiased_average_is_the_normalised_weighted_sum_of_every_step() -> None:
    torch.manual_seed(0)
    model, decay = nn.Linear(3, 2), 0.9
    average = WeightAverage(model, decay=decay, debias=True)
    steps: list[list[torch.Tensor]] = []
    for _ in range(6):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        steps.append([p.detach().clone() for p in model.parameters()])
        average.update(model)
        t = len(steps)
        # avg_t = sum_s decay**(t-s) (1-decay) w_s / (1 - decay**t)
        shares = [decay ** (t - s) * (1 - decay) / (1 - decay**t) for s in range(1, t + 1)]
        assert sum(shares) == pytest.approx(1.0)
        with average.swapped_in(model):
            for i, p in enumerate(model.parameters()):
                expected = sum(share * w[i] for share, w in zip(shares, steps, strict=True))
                torch.testing.assert_close(p.detach(), expected)


def test_the_plain_average_follows_the_ema_formula_and_swaps_back() -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    average = WeightAverage(model, decay=0.75)  # plain by default
    expected = [p.detach().clone() for p in model.parameters()]
    average.update(model)  # the first update copies the weights
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        average.update(model)
        pairs = zip(expected, model.parameters(), strict=True)
        expected = [0.75 * e + 0.25 * p.detach() for e, p in pairs]
    live = [p.detach().clone() for p in model.parameters()]
    with average.swapped_in(model):
        for p, e in zip(model.parameters(), expected, strict=True):
            torch.testing.assert_close(p.detach(), e)
    for p, kept in zip(model.parameters(), live, strict=True):
        assert torch.equal(p.detach(), kept)  # the live weights are back
    assert average.updates == 4


def test_a_decay_outside_zero_one_and_another_model_are_refused() -> None:
    with pytest.raises(ValueError, match=r"decay must be in \(0, 1\)"):
        WeightAverage(nn.Linear(2, 2), decay=1.0)
    average = WeightAverage(nn.Linear(2, 2), decay=0.5)
    average.update(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="another model"):
        average.copy_to(nn.Linear(3, 2))


def test_validation_and_the_best_epoch_see_the_average(toy: Callable[..., Any]) -> None:
    examples, tables = toy(n=128)
    model = model_for(tables)
    seen: list[torch.Tensor] = []
    scores = iter([0.5, 0.9, 0.6])

    def validate(_: MultiTaskModel) -> dict[str, float]:  # reads the captured model
        seen.append(flat(model).clone())
        return {"valid/click/auc": next(scores)}

    trainer = trainer_for(model, 3, monitor="valid/click/auc", ema=0.9)
    averages: list[torch.Tensor] = []
    lives: list[torch.Tensor] = []
    original_end = trainer._end_epoch

    def end_epoch(*args: Any) -> dict[str, float]:
        live = flat(model).clone()
        lives.append(live)
        assert trainer.average is not None
        with trainer.average.swapped_in(model):
            averages.append(flat(model).clone())
        metrics = original_end(*args)
        assert torch.equal(flat(model), live)  # training goes on from the live weights
        return metrics

    trainer._end_epoch = end_epoch  # type: ignore[method-assign]
    state = trainer.fit(loader(examples), validate)
    assert state.best_epoch == 1
    for validated, average in zip(seen, averages, strict=True):
        assert torch.equal(validated, average)
    assert all(not torch.equal(a, live) for a, live in zip(averages, lives, strict=True))
    assert torch.equal(flat(model), averages[1])  # the best epoch's average is restored


def test_without_a_monitor_the_final_weights_are_the_average(toy: Callable[..., Any]) -> None:
    examples, tables = toy(n=128)
    model = model_for(tables)
    trainer = trainer_for(model, 2, ema=0.8)
    trainer.fit(loader(examples))
    assert trainer.average is not None
    fresh = model_for(tables, seed=5)
    trainer.average.copy_to(fresh)
    assert torch.equal(flat(model), flat(fresh))


def test_kill_and_resume_keep_the_average_exact(toy: Callable[..., Any], tmp_path: Path) -> None:
    examples, tables = toy(n=256)
    straight = model_for(tables)
    trainer_for(straight, 2, ema=0.9).fit(loader(examples))

    first = model_for(tables)
    trainer_for(first, 2, tmp_path, callbacks=[StopAfter(1)], ema=0.9).fit(loader(examples))
    resumed = model_for(tables, seed=123)
    trainer_for(resumed, 2, tmp_path, ema=0.9).fit(
        loader(examples), resume_from=tmp_path / "last.pt"
    )
    assert torch.equal(flat(straight), flat(resumed))


def test_resuming_a_run_without_an_average_into_one_with_it_is_refused(
    toy: Callable[..., Any], tmp_path: Path
) -> None:
    examples, tables = toy(n=128)
    trainer_for(model_for(tables), 2, tmp_path, callbacks=[StopAfter(1)]).fit(loader(examples))
    with pytest.raises(ValueError, match="no weight average"):
        trainer_for(model_for(tables), 2, tmp_path, ema=0.9).fit(
            loader(examples), resume_from=tmp_path / "last.pt"
        )
