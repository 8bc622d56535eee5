"""Weighting strategies on hand-built cases, plus property tests of their guarantees."""

from __future__ import annotations

import math
import random

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from mtlrec.core.registry import UnknownNameError
from mtlrec.weighting import (
    MGDA,
    WEIGHTINGS,
    CAGrad,
    DynamicWeightAverage,
    EqualWeighting,
    GradNorm,
    PCGrad,
    StaticWeighting,
    UncertaintyWeighting,
    WeightingContext,
    make_weighting,
    weighted_backward,
)
from mtlrec.weighting.cagrad import cagrad_dual
from mtlrec.weighting.pcgrad import project_conflicting

CTX = WeightingContext()


def _grad(t: Tensor) -> Tensor:
    assert t.grad is not None
    return t.grad


def _scalars(**values: float) -> dict[str, Tensor]:
    return {k: torch.tensor(v, requires_grad=True) for k, v in values.items()}


def _matrices(min_tasks: int = 2, max_tasks: int = 5) -> st.SearchStrategy[Tensor]:
    """Random task-by-parameter gradient matrices ``(T, P)`` in float64."""

    @st.composite
    def build(draw: st.DrawFn) -> Tensor:
        t = draw(st.integers(min_tasks, max_tasks))
        p = draw(st.integers(1, 6))
        values = st.floats(-10, 10, allow_nan=False, allow_subnormal=False)
        rows = draw(st.lists(st.lists(values, min_size=p, max_size=p), min_size=t, max_size=t))
        return torch.tensor(rows, dtype=torch.float64)

    return build()


# --- registry and construction ---------------------------------------------------------


def test_make_weighting_builds_by_name_and_unknown_names_list_the_known() -> None:
    strategy = make_weighting("static", ["a", "b"], lambdas={"a": 2.0})
    assert isinstance(strategy, StaticWeighting)
    assert strategy.lambdas == {"a": 2.0}  # stored untouched
    with pytest.raises(UnknownNameError, match="pcgrad"):
        make_weighting("pcgard", ["a"])
    assert {WEIGHTINGS.get(n).kind for n in WEIGHTINGS.names()} == {"loss", "gradient"}


def test_tasks_must_be_unique_and_lambdas_must_name_known_tasks() -> None:
    with pytest.raises(ValueError, match="unique"):
        StaticWeighting(["a", "a"])
    with pytest.raises(KeyError, match="zz"):
        StaticWeighting(["a"], lambdas={"zz": 1.0})


# --- loss-level ------------------------------------------------------------------------


def test_static_is_the_lambda_weighted_sum_and_missing_lambdas_are_one() -> None:
    strategy = StaticWeighting(["a", "b", "c"], lambdas={"a": 0.5, "c": 3.0})
    losses = _scalars(a=2.0, b=3.0, c=0.25)
    assert strategy.combine(losses, CTX).item() == pytest.approx(0.5 * 2 + 3 + 3 * 0.25)
    assert strategy.weights() == {"a": 0.5, "b": 1.0, "c": 3.0}
    # A step without task "b" sums the others only.
    del losses["b"]
    assert strategy.combine(losses, CTX).item() == pytest.approx(1.75)


def test_equal_is_the_plain_sum() -> None:
    strategy = EqualWeighting(["a", "b"])
    assert strategy.combine(_scalars(a=2.0, b=3.0), CTX).item() == pytest.approx(5.0)
    assert strategy.weights() == {"a": 1.0, "b": 1.0}


def test_loss_level_backward_doubles_when_called_twice_without_zero_grad() -> None:
    for name in ("static", "equal", "uncertainty", "dwa"):
        strategy = make_weighting(name, ["a", "b"])
        losses = _scalars(a=2.0, b=3.0)
        weighted_backward(strategy, losses, CTX)
        once = [_grad(losses[t]).clone() for t in "ab"]
        weighted_backward(strategy, losses, CTX)
        assert [losses[t].grad for t in "ab"] == [2 * g for g in once], name


def test_uncertainty_gradients_match_the_analytic_formula() -> None:
    strategy = UncertaintyWeighting(["a", "b"])
    s = torch.tensor([0.3, -0.7])
    with torch.no_grad():
        strategy.log_variances.copy_(s)
    losses = _scalars(a=2.0, b=0.5)
    total = strategy.combine(losses, CTX)
    torch.autograd.backward(total)
    values = torch.tensor([2.0, 0.5])
    # L = sum exp(-s_k) L_k + s_k: dL/ds_k = 1 - exp(-s_k) L_k and dL/dL_k = exp(-s_k).
    assert total.item() == pytest.approx(float((torch.exp(-s) * values + s).sum()))
    torch.testing.assert_close(strategy.log_variances.grad, 1 - torch.exp(-s) * values)
    torch.testing.assert_close(torch.stack([_grad(losses["a"]), _grad(losses["b"])]), torch.exp(-s))
    assert strategy.weights() == pytest.approx(dict(zip("ab", torch.exp(-s).tolist(), strict=True)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-80, 80, allow_nan=False), min_size=1, max_size=6))
def test_uncertainty_weights_stay_positive_and_finite_for_any_log_variance(
    s: list[float],
) -> None:
    strategy = UncertaintyWeighting([f"t{i}" for i in range(len(s))])
    with torch.no_grad():
        strategy.log_variances.copy_(torch.tensor(s))
    assert all(0 < w < math.inf for w in strategy.weights().values())


def test_dwa_weights_follow_the_last_two_epochs_loss_ratio() -> None:
    strategy = DynamicWeightAverage(["a", "b"])
    assert strategy.weights() == {"a": 1.0, "b": 1.0}
    strategy.end_epoch({"a": 2.0, "b": 1.0})
    assert strategy.weights() == {"a": 1.0, "b": 1.0}  # epochs 1 and 2 weigh equally
    strategy.end_epoch({"a": 1.0, "b": 0.9})
    # r = (1.0 / 2.0, 0.9 / 1.0); w_k = 2 exp(r_k / 2) / (exp(r_a / 2) + exp(r_b / 2))
    ea, eb = math.exp(0.5 / 2), math.exp(0.9 / 2)
    expected = {"a": 2 * ea / (ea + eb), "b": 2 * eb / (ea + eb)}
    assert strategy.weights() == pytest.approx(expected)
    assert sum(strategy.weights().values()) == pytest.approx(2.0)
    losses = _scalars(a=3.0, b=4.0)
    assert strategy.combine(losses, CTX).item() == pytest.approx(
        3 * expected["a"] + 4 * expected["b"]
    )
    strategy.end_epoch({"a": 0.5, "b": 0.9})  # the window moves: r = (0.5, 1.0)
    ea, eb = math.exp(0.5 / 2), math.exp(1.0 / 2)
    assert strategy.weights() == pytest.approx({"a": 2 * ea / (ea + eb), "b": 2 * eb / (ea + eb)})


def test_dwa_with_a_task_missing_from_an_epoch_still_sums_to_the_task_count() -> None:
    strategy = DynamicWeightAverage(["a", "b", "c"])
    strategy.end_epoch({"a": 2.0, "b": 1.0})
    strategy.end_epoch({"a": 1.0, "b": 1.0})
    w = strategy.weights()
    assert w["c"] == 1.0  # never seen: no ratio
    assert w["a"] < w["b"]  # a's loss fell faster
    assert sum(w.values()) == pytest.approx(3.0)
    with pytest.raises(KeyError, match="unknown"):
        strategy.end_epoch({"typo": 1.0})


def _gradnorm_toy(n_tasks: int) -> tuple[nn.Linear, nn.ModuleList, Tensor]:
    torch.manual_seed(0)
    shared = nn.Linear(4, 3)
    heads = nn.ModuleList(nn.Linear(3, 1) for _ in range(n_tasks))
    return shared, heads, torch.randn(8, 4)


def _gradnorm_losses(
    shared: nn.Linear, heads: nn.ModuleList, x: Tensor, factors: list[float]
) -> list[Tensor]:
    h = torch.relu(shared(x))  # (8, 3)
    return [f * head(h).pow(2).mean() for f, head in zip(factors, heads, strict=True)]


def test_gradnorm_first_step_matches_an_autograd_reference() -> None:
    shared, heads, x = _gradnorm_toy(3)
    strategy = GradNorm(["a", "b", "c"])
    losses = _gradnorm_losses(shared, heads, x, [1.0, 2.0, 0.5])
    ctx = WeightingContext(shared_parameters=list(shared.parameters()))  # weight, bias
    total = strategy.combine(dict(zip("abc", losses, strict=True)), ctx)
    # The model's loss uses the weights before the update (all 1 at the first step).
    assert total.item() == pytest.approx(sum(v.item() for v in losses))

    # Reference: GradNorm's L_grad through autograd, gradients on the shared WEIGHT
    # (the bias comes last in shared_parameters and is skipped), the target a constant.
    w = torch.ones(3, requires_grad=True)
    norms = torch.stack(
        [
            torch.autograd.grad(w[k] * losses[k], shared.weight, create_graph=True)[0].norm()
            for k in range(3)
        ]
    )
    target = (norms.mean() * torch.ones(3)).detach()  # r_k = 1 at the first step
    (grad,) = torch.autograd.grad((norms - target).abs().sum(), w)
    # Adam's first step moves each weight by lr * sign(grad), then weights renormalise.
    stepped = 1 - 0.025 * torch.sign(grad)
    expected = stepped * 3 / stepped.sum()
    assert list(strategy.weights().values()) == pytest.approx(expected.tolist(), rel=1e-5)
    assert torch.isfinite(strategy.initial_losses).all()
    assert not strategy.task_weights.requires_grad  # the trainer's optimizer never moves it


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.floats(0.01, 100.0), min_size=3, max_size=3),
            st.lists(st.booleans(), min_size=3, max_size=3).filter(any),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_gradnorm_weights_stay_positive_and_sum_to_the_task_count(
    steps: list[tuple[list[float], list[bool]]],
) -> None:
    shared, heads, x = _gradnorm_toy(3)
    strategy = GradNorm(["a", "b", "c"], lr=0.5)  # large steps to stress the clipping
    ctx = WeightingContext(shared_parameters=list(shared.parameters()))
    for factors, present in steps:
        losses = _gradnorm_losses(shared, heads, x, factors)
        before = strategy.weights()
        strategy.combine({t: v for t, v, p in zip("abc", losses, present, strict=True) if p}, ctx)
        weights = strategy.weights()
        assert all(w > 0 for w in weights.values())
        assert sum(weights.values()) == pytest.approx(3.0, rel=1e-5)
        assert all(weights[t] == before[t] for t, p in zip("abc", present, strict=True) if not p)


# --- gradient-level --------------------------------------------------------------------


def test_pcgrad_projects_a_conflicting_pair_as_computed_by_hand() -> None:
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])  # g1 . g2 = -1: conflict
    # g1' = g1 - (g1.g2 / |g2|^2) g2 = (1, 0) + (-1, 1) / 2 = (0.5, 0.5)
    # g2' = g2 - (g2.g1 / |g1|^2) g1 = (-1, 1) + (1, 0)   = (0, 1)
    torch.testing.assert_close(
        project_conflicting(g, [[1], [0]]), torch.tensor([[0.5, 0.5], [0.0, 1.0]])
    )
    strategy = PCGrad(["a", "b"])
    torch.testing.assert_close(strategy.aggregate(g), torch.tensor([0.5, 1.5]))
    assert strategy.weights() == pytest.approx({"a": 2.0, "b": 1.5})  # 2 g1 + 1.5 g2
    agree = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(strategy.aggregate(agree), agree.sum(0))  # nothing to project


@settings(max_examples=80, deadline=None)
@given(_matrices(2, 2))
def test_pcgrad_two_tasks_never_conflict_after_projection(g: Tensor) -> None:
    """Paper, Sec. 2 (two tasks): g1' . g2 >= 0 and g2' . g1 >= 0, so the update
    g1' + g2' has a non-negative inner product with both task gradients."""
    tol = 1e-9 * (1 + float(g.norm(dim=1).prod()))
    projected = project_conflicting(g, [[1], [0]])
    assert float(projected[0] @ g[1]) >= -tol
    assert float(projected[1] @ g[0]) >= -tol
    update = PCGrad(["a", "b"]).aggregate(g)
    assert float(update @ g[0]) >= -tol and float(update @ g[1]) >= -tol


@settings(max_examples=60, deadline=None)
@given(_matrices(2, 5), st.randoms(use_true_random=False))
def test_pcgrad_each_projection_removes_the_conflict_with_its_gradient(
    g: Tensor,
    rng: random.Random,
) -> None:
    """Algorithm 1, any number of tasks: right after g_i' is projected against g_j it
    satisfies g_i' . g_j >= 0 (for the ORIGINAL g_j), and projections never lengthen
    g_i. (A later projection may reintroduce a conflict with an earlier g_j; the paper
    guarantees none only for two tasks.)"""
    n = g.shape[0]
    norms = g.norm(dim=1)
    orders = [rng.sample(range(n), n) for _ in range(n)]
    for i in range(n):
        for m in range(1, n + 1):
            prefix = [orders[k][:m] if k == i else [] for k in range(n)]
            j = orders[i][m - 1]
            if j == i:  # a task is not projected against itself
                continue
            g_i = project_conflicting(g, prefix)[i]
            assert float(g_i @ g[j]) >= -1e-9 * (1 + float(norms[i] * norms[j]))
            assert float(g_i.norm()) <= float(norms[i]) * (1 + 1e-9) + 1e-12


def test_pcgrad_orders_come_from_its_seed() -> None:
    g = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [-0.5, -1.0, 1.0]])
    one, two = PCGrad(["a", "b", "c"], seed=3), PCGrad(["a", "b", "c"], seed=3)
    for _ in range(5):
        torch.testing.assert_close(one.aggregate(g), two.aggregate(g))
    outputs = {tuple(one.aggregate(g).tolist()) for _ in range(20)}
    assert len(outputs) > 1  # three tasks: the order matters and changes every step


def test_mgda_on_two_orthogonal_unit_gradients_gives_their_midpoint() -> None:
    strategy = MGDA(["a", "b"])
    torch.testing.assert_close(strategy.aggregate(torch.eye(2)), torch.tensor([0.5, 0.5]))
    assert strategy.weights() == pytest.approx({"a": 0.5, "b": 0.5})


def test_mgda_min_norm_point_and_l2_normalisation_by_hand() -> None:
    g = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    # min_a |a g1 + (1 - a) g2|^2 = a^2 + 9 (1 - a)^2  ->  a = 0.9
    torch.testing.assert_close(MGDA(["a", "b"]).aggregate(g), torch.tensor([0.9, 0.3]))
    # l2: solved on unit gradients (a = 0.5), applied to the raw gradients
    torch.testing.assert_close(
        MGDA(["a", "b"], normalization="l2").aggregate(g), torch.tensor([0.5, 1.5])
    )
    # A gradient that is a shorter multiple of the other is itself the min-norm point.
    torch.testing.assert_close(
        MGDA(["a", "b"]).aggregate(torch.tensor([[2.0, 2.0], [1.0, 1.0]])), torch.tensor([1.0, 1.0])
    )


@settings(max_examples=80, deadline=None)
@given(_matrices(1, 5))
def test_mgda_result_is_no_longer_than_any_task_gradient(g: Tensor) -> None:
    strategy = MGDA([f"t{i}" for i in range(g.shape[0])])
    d = strategy.aggregate(g)
    assert float(d.norm()) <= float(g.norm(dim=1).min()) * (1 + 1e-9) + 1e-12
    coef = torch.tensor(list(strategy.weights().values()))
    assert (coef >= 0).all() and float(coef.sum()) == pytest.approx(1.0)


def test_cagrad_with_c_zero_is_the_mean_gradient() -> None:
    g = torch.tensor([[1.0, 2.0, -1.0], [-3.0, 0.5, 2.0], [0.0, 1.0, 1.0]])
    torch.testing.assert_close(CAGrad(["a", "b", "c"], c=0.0).aggregate(g), g.mean(0))


@pytest.mark.parametrize(
    "rows",
    [
        [[1.0, 0.2], [-0.6, 1.0]],
        [[1.0, 0.2, 0.0], [-0.6, 1.0, 0.3], [0.1, -1.0, 0.5]],
    ],
)
def test_cagrad_matches_a_grid_search_of_its_dual(rows: list[list[float]]) -> None:
    g = torch.tensor(rows, dtype=torch.float64)
    c = 0.4
    g0 = g.mean(0)

    def dual(w: Tensor) -> float:
        gw = w @ g
        return float(gw @ g0 + c * g0.norm() * gw.norm())

    n, steps = g.shape[0], 200
    cells = [(i, j) for i in range(steps + 1) for j in range(steps + 1 - i)]
    grid = [
        torch.tensor([i, steps - i] if n == 2 else [i, j, steps - i - j], dtype=torch.float64)
        / steps
        for i, j in cells
        if n == 3 or j == 0
    ]
    best = min(grid, key=dual)
    w = cagrad_dual(g @ g.T, c)
    assert dual(w) <= dual(best) + 1e-9
    gw = w @ g
    expected = (g0 + c * g0.norm() / gw.norm() * gw) / (1 + c**2)
    torch.testing.assert_close(CAGrad(list("abc")[:n], c=c).aggregate(g), expected)


@settings(max_examples=80, deadline=None)
@given(_matrices(1, 5), st.floats(0.05, 1.0))
def test_cagrad_improves_the_worst_task_at_least_as_much_as_the_mean(g: Tensor, c: float) -> None:
    """Paper, Eq. 3: d maximises min_k g_k . d over the ball ||d - g0|| <= c ||g0||, which
    contains g0 itself (``rescale=0``, so d is the ball's maximiser). Stated for linearly
    independent task gradients: then zero is not in their convex hull and the direction
    CAGrad adds, g_w / ||g_w||, is well defined."""
    d = CAGrad([f"t{i}" for i in range(g.shape[0])], c=c, rescale=0).aggregate(g)
    g0 = g.mean(0)
    scale = 1e-7 * (1 + float(g.norm(dim=1).max()) ** 2)
    assert float((d - g0).norm()) <= c * float(g0.norm()) * (1 + 1e-9) + 1e-12
    singular = torch.linalg.svdvals(g)
    assume(g.shape[0] <= g.shape[1] and float(singular[-1]) > 1e-3 * float(singular[0]))
    assert float((g @ d).min()) >= float((g @ g0).min()) - scale


def test_cagrad_symmetric_pair_scales_the_mean_as_the_paper_says() -> None:
    # Orthogonal unit gradients: by symmetry w = (1/2, 1/2), g_w = g0, so
    # d = (1 + c) g0, and rescale=1 divides by 1 + c^2.
    torch.testing.assert_close(
        CAGrad(["a", "b"], c=0.4).aggregate(torch.eye(2)), torch.full((2,), 0.5 * 1.4 / 1.16)
    )


def test_gradient_level_backward_splits_shared_and_task_specific_gradients() -> None:
    torch.manual_seed(0)
    shared = nn.Linear(3, 2)
    heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 1)})
    x = torch.randn(5, 3)

    def losses() -> dict[str, Tensor]:
        h = shared(x)  # (5, 2)
        return {"a": heads["a"](h).pow(2).mean(), "b": (heads["b"](h) - 1).abs().mean()}

    params = list(shared.parameters())
    ref = losses()
    g = torch.stack(
        [
            torch.cat(
                [d.reshape(-1) for d in torch.autograd.grad(ref[t], params, retain_graph=True)]
            )
            for t in "ab"
        ]
    )  # (2, P)
    expected_shared = MGDA(["a", "b"]).aggregate(g)
    expected_heads = torch.autograd.grad(ref["a"] + ref["b"], list(heads.parameters()))

    strategy = MGDA(["a", "b"])
    used = weighted_backward(strategy, losses(), WeightingContext(shared_parameters=params))
    assert used == strategy.weights()
    got = torch.cat([_grad(p).reshape(-1) for p in params])
    torch.testing.assert_close(got, expected_shared)
    for p, e in zip(heads.parameters(), expected_heads, strict=True):
        torch.testing.assert_close(p.grad, e)


def test_gradient_level_backward_needs_shared_parameters() -> None:
    with pytest.raises(ValueError, match="shared_parameters"):
        weighted_backward(MGDA(["a"]), _scalars(a=1.0), CTX)


def test_scale_is_applied_to_every_loss() -> None:
    for name in ("equal", "pcgrad"):
        p = nn.Parameter(torch.tensor([1.0, 2.0]))
        losses = {"a": (p * p).sum(), "b": p.sum()}
        weighted_backward(
            make_weighting(name, ["a", "b"]),
            losses,
            WeightingContext(shared_parameters=[p]),
            scale=lambda v: 8 * v,
        )
        # 8 * (d(p.p)/dp + d(sum p)/dp); the two gradients do not conflict
        torch.testing.assert_close(p.grad, 8 * (2 * p.detach() + 1), msg=name)
