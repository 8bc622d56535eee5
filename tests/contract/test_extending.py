"""``docs/extending.md``, executed: each component it shows passes its family's contract.

The page's ``python`` blocks are run (so the page cannot drift from the code); they
register one throwaway component per family. Each is then put through the very checks
the shipped components go through: every ``test_*`` function of the family's contract
module that is parametrized over the component's name, called with the new name. The
registries are restored afterwards, so no other test sees the throwaways.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import test_baselines_contract as baselines_contract
import test_fusion_contract as fusion_contract
import test_models_contract as models_contract
import test_weighting_contract as weighting_contract
import torch

from conftest import REPO_ROOT, make_toy
from mtlrec.baselines import BASELINES
from mtlrec.core.registry import Registry
from mtlrec.core.types import TaskSpec
from mtlrec.fusion import FUSIONS
from mtlrec.models import BACKBONES, HEADS, LOSSES, masked_task_loss
from mtlrec.weighting import WEIGHTINGS

PAGE = REPO_ROOT / "docs" / "extending.md"
FAMILIES: dict[str, Registry[Any]] = {
    "backbone": BACKBONES,
    "head": HEADS,
    "weighting": WEIGHTINGS,
    "loss": LOSSES,
    "baseline": BASELINES,
    "fusion": FUSIONS,
}


def import_test_module(path: Path) -> ModuleType:
    """The test module at ``path``, imported under its file name as pytest imports it."""
    module = sys.modules.get(path.stem)
    if module is None:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
    return module


onnx_export = import_test_module(REPO_ROOT / "tests" / "unit" / "test_onnx_export.py")

# (family, module, the parameter through which its checks take the component's name)
CONTRACTS: list[tuple[str, ModuleType, str]] = [
    ("backbone", models_contract, "backbone"),
    ("backbone", onnx_export, "backbone"),
    ("head", models_contract, "head"),
    ("weighting", weighting_contract, "name"),
    ("baseline", baselines_contract, "name"),
    ("fusion", fusion_contract, "name"),
]


def contract_checks(module: ModuleType, argument: str) -> list[Callable[..., None]]:
    """The tests of ``module`` parametrized over a registry through ``argument``."""
    return [
        check
        for name, check in inspect.getmembers(module, inspect.isfunction)
        if name.startswith("test_")
        and check.__module__ == module.__name__
        and any(
            mark.name == "parametrize" and mark.args[0] == argument
            for mark in getattr(check, "pytestmark", [])
        )
    ]


def fixture_makers(module: ModuleType, name: str, tmp_path: Path) -> dict[str, Callable[[], Any]]:
    """How to make the values of the pytest fixtures the contract checks of ``module`` take,
    from the module's own helpers (the contract modules' fixtures cannot be called)."""
    makers: dict[str, Callable[[], Any]] = {"tmp_path": lambda: tmp_path}
    if module is models_contract:
        makers["toy"] = lambda: make_toy
    elif module is weighting_contract:
        makers["trained"] = lambda: {name: weighting_contract._train(name)}
    elif module is baselines_contract:
        toy = baselines_contract.make_toy()
        makers["toy"] = lambda: toy
        makers["popularity_recall"] = lambda: baselines_contract.recall_at_5(
            baselines_contract.fitted("popularity", toy), toy
        )
    elif module is fusion_contract:
        makers["validation"] = lambda: fusion_contract.make_batch(0)
        makers["test_batch"] = lambda: fusion_contract.make_batch(1)
    return makers


CASES = [
    pytest.param(family, module, argument, check, id=f"{family}-{module.__name__}-{check.__name__}")
    for family, module, argument in CONTRACTS
    for check in contract_checks(module, argument)
]


@pytest.fixture(scope="module")
def documented() -> Iterator[dict[str, str]]:
    """Runs the page's python blocks; yields the name each family gained, then restores
    every registry to what it held before."""
    saved = {family: dict(registry._entries) for family, registry in FAMILIES.items()}
    try:
        blocks = re.findall(r"^```python\n(.*?)^```$", PAGE.read_text(), re.MULTILINE | re.DOTALL)
        for i, block in enumerate(blocks):
            exec(compile(block, f"{PAGE}:python-block-{i}", "exec"), {"__name__": f"doc_{i}"})
        added = {
            family: sorted(set(registry.names()) - set(saved[family]))
            for family, registry in FAMILIES.items()
        }
        assert all(len(names) == 1 for names in added.values()), (
            f"docs/extending.md should register one component per family, got {added}"
        )
        yield {family: names[0] for family, names in added.items()}
    finally:
        for family, registry in FAMILIES.items():
            registry._entries.clear()
            registry._entries.update(saved[family])


def test_every_family_but_losses_has_contract_checks() -> None:
    families = {case.values[0] for case in CASES}
    assert families == set(FAMILIES) - {"loss"}, families


@pytest.mark.parametrize(("family", "module", "argument", "check"), CASES)
def test_documented_component_passes_its_contract(
    family: str,
    module: ModuleType,
    argument: str,
    check: Callable[..., None],
    documented: dict[str, str],
    tmp_path: Path,
) -> None:
    name = documented[family]
    makers = fixture_makers(module, name, tmp_path)
    arguments: dict[str, Any] = {}
    for parameter in inspect.signature(check).parameters:
        if parameter == argument:
            arguments[parameter] = name
        elif parameter in makers:
            arguments[parameter] = makers[parameter]()
        else:
            pytest.fail(
                f"{module.__name__}.{check.__name__} takes the fixture {parameter!r}: "
                "teach fixture_makers here to make it"
            )
    check(**arguments)


def test_documented_loss_is_a_regression_loss(documented: dict[str, str]) -> None:
    """Losses have no contract module yet: the page's regression loss is checked here."""
    spec = TaskSpec("score", "regression", loss=documented["loss"])
    generator = torch.Generator().manual_seed(0)
    label = torch.randn(64, generator=generator)
    mask = torch.rand(64, generator=generator) > 0.25

    def loss(prediction: torch.Tensor) -> torch.Tensor:
        value = masked_task_loss(spec, prediction, label, mask)
        assert value is not None and value.shape == ()
        return value

    assert float(loss(label.clone())) == pytest.approx(0.0, abs=1e-6)
    noisy = torch.where(mask, label, label + 100.0)  # masked rows are ignored
    assert float(loss(noisy)) == pytest.approx(0.0, abs=1e-6)
    assert math.isfinite(float(loss(label + 1e4)))  # no overflow for large errors

    prediction = torch.zeros(64, requires_grad=True)
    optimizer = torch.optim.SGD([prediction], lr=20.0)
    start = float(loss(prediction.detach()))
    for _ in range(100):
        optimizer.zero_grad()
        loss(prediction).backward()
        optimizer.step()
    assert start > 0.0 and float(loss(prediction.detach())) < 0.01 * start
