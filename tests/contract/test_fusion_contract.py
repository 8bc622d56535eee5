"""Contract of every registered fusion, on a "checkerboard" of three sources.

Each user has 3 excluded (seen) items and one held-out relevant item among the others.
Sources: ``good`` puts the relevant item first among the non-excluded items with a margin
(noise elsewhere), ``bad`` is random, ``anti`` scores the relevant item lowest and does
not score (``-inf``) a fifth of the other items. A fusion fitted on a validation batch
must put the held-out item first for nearly every user of a *different* test batch (other
users, other held-out items). A new fusion is checked here by registering it: it is built
with its own ``example_params`` (see ``docs/extending.md``); no table here names it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mtlrec.fusion import FUSIONS, Fusion, FusionInput, make_fusion

NAMES = FUSIONS.names()
N_USERS, N_ITEMS, N_SEEN = 40, 30, 3


def params(name: str) -> dict[str, Any]:
    """The fusion's own parameters for this toy (the defaults are sized for real data)."""
    return FUSIONS.get(name).example_params


def make_batch(seed: int) -> tuple[FusionInput, np.ndarray]:
    """A checkerboard batch and its relevant mask ``(N_USERS, N_ITEMS)``."""
    rng = np.random.default_rng(seed)
    exclude = np.zeros((N_USERS, N_ITEMS), dtype=bool)
    relevant = np.zeros((N_USERS, N_ITEMS), dtype=bool)
    good = rng.normal(size=(N_USERS, N_ITEMS)).astype(np.float32)
    bad = rng.normal(size=(N_USERS, N_ITEMS)).astype(np.float32)
    anti = rng.normal(size=(N_USERS, N_ITEMS)).astype(np.float32)
    for u in range(N_USERS):
        picked = rng.choice(N_ITEMS, size=N_SEEN + 1, replace=False)
        exclude[u, picked[:N_SEEN]] = True
        target = picked[N_SEEN]
        relevant[u, target] = True
        good[u, picked[:N_SEEN]] += 5.0  # seen items score high (they are excluded anyway)
        good[u, target] = good[u, ~exclude[u]].max() + 2.0
        anti[u, target] = anti[u].min() - 2.0
    unscored = (rng.random((N_USERS, N_ITEMS)) < 0.2) & ~relevant
    anti[unscored] = -np.inf
    inputs = FusionInput(
        scores={"good": good, "bad": bad, "anti": anti},
        exclude=exclude,
        user_activity=rng.integers(1, 50, size=N_USERS).astype(np.float64),
        item_popularity=rng.integers(0, 100, size=N_ITEMS).astype(np.float64),
    )
    return inputs, relevant


@pytest.fixture(scope="module")
def validation() -> tuple[FusionInput, np.ndarray]:
    return make_batch(0)


@pytest.fixture(scope="module")
def test_batch() -> tuple[FusionInput, np.ndarray]:
    return make_batch(1)


def fitted(name: str, validation: tuple[FusionInput, np.ndarray]) -> Fusion:
    inputs, relevant = validation
    return make_fusion(name, **params(name)).fit(inputs, relevant)


@pytest.mark.parametrize("name", NAMES)
def test_checkerboard_puts_the_held_out_item_first(
    name: str, validation: tuple[FusionInput, np.ndarray], test_batch: tuple[FusionInput, Any]
) -> None:
    fusion = fitted(name, validation)
    inputs, relevant = test_batch
    fused = fusion.fuse(inputs)
    top = np.argmax(fused, axis=1)
    hit_rate = float(relevant[np.arange(N_USERS), top].mean())
    assert hit_rate >= 0.95, (name, hit_rate, fusion.weights())


@pytest.mark.parametrize("name", NAMES)
def test_output_shape_dtype_and_exclusion(
    name: str, validation: tuple[FusionInput, np.ndarray], test_batch: tuple[FusionInput, Any]
) -> None:
    fusion = fitted(name, validation)
    inputs, _ = test_batch
    fused = fusion.fuse(inputs)
    assert fused.shape == (N_USERS, N_ITEMS) and fused.dtype == np.float32
    assert inputs.exclude is not None
    assert np.all(fused[inputs.exclude] == -np.inf)
    assert np.isfinite(fused[~inputs.exclude]).all()
    # without an exclusion mask every entry is finite
    open_inputs = FusionInput(
        scores=inputs.scores,
        user_activity=inputs.user_activity,
        item_popularity=inputs.item_popularity,
    )
    assert np.isfinite(fusion.fuse(open_inputs)).all()


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(
    name: str, validation: tuple[FusionInput, np.ndarray], test_batch: tuple[FusionInput, Any]
) -> None:
    a = fitted(name, validation).fuse(test_batch[0])
    b = fitted(name, validation).fuse(test_batch[0])
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(
    name: str,
    validation: tuple[FusionInput, np.ndarray],
    test_batch: tuple[FusionInput, Any],
    tmp_path: Path,
) -> None:
    fusion = fitted(name, validation)
    path = tmp_path / f"{name}.json"
    fusion.save(path)
    document = json.loads(path.read_text())
    assert document["format"] == 1 and document["fusion"] == name
    assert set(document) == {"format", "fusion", "params", "state"}
    loaded = Fusion.load(path)
    assert type(loaded) is type(fusion)
    assert loaded.get_params() == fusion.get_params()
    assert loaded.sources_ == fusion.sources_
    assert loaded.weights() == fusion.weights()
    np.testing.assert_array_equal(loaded.fuse(test_batch[0]), fusion.fuse(test_batch[0]))
    # loading through the right subclass works, through another one fails
    assert type(type(fusion).load(path)) is type(fusion)
    other = next(FUSIONS.get(n) for n in NAMES if n != name)
    with pytest.raises(TypeError):
        other.load(path)


@pytest.mark.parametrize("name", NAMES)
def test_params_untouched_and_clonable(
    name: str, validation: tuple[FusionInput, np.ndarray], test_batch: tuple[FusionInput, Any]
) -> None:
    own = params(name)
    fusion = make_fusion(name, **own)
    got = fusion.get_params()
    for key, value in own.items():
        assert got[key] is value
    clone = FUSIONS.get(name)(**got)
    assert clone.get_params() == got
    fusion.fit(*validation)
    assert fusion.get_params() == got  # fitting changes no parameter
    np.testing.assert_array_equal(
        clone.fit(*validation).fuse(test_batch[0]), fusion.fuse(test_batch[0])
    )
    assert repr(fusion).startswith(type(fusion).__name__ + "(")


@pytest.mark.parametrize("name", NAMES)
def test_missing_source_raises(
    name: str, validation: tuple[FusionInput, np.ndarray], test_batch: tuple[FusionInput, Any]
) -> None:
    fusion = fitted(name, validation)
    inputs, _ = test_batch
    partial = FusionInput(
        scores={k: v for k, v in inputs.scores.items() if k != "good"},
        exclude=inputs.exclude,
        user_activity=inputs.user_activity,
        item_popularity=inputs.item_popularity,
    )
    with pytest.raises(ValueError, match="good"):
        fusion.fuse(partial)


@pytest.mark.parametrize("name", NAMES)
def test_unfitted_fuse_and_bad_relevant_fail(
    name: str, validation: tuple[FusionInput, np.ndarray]
) -> None:
    inputs, relevant = validation
    fusion = make_fusion(name, **params(name))
    with pytest.raises(RuntimeError, match="not fitted"):
        fusion.fuse(inputs)
    with pytest.raises(ValueError, match="relevant"):
        fusion.fit(inputs, relevant[:, :-1])
    with pytest.raises(ValueError, match="relevant"):
        fusion.fit(inputs, np.zeros_like(relevant))
