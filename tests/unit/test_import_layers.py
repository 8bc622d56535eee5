"""The package's import graph follows its layers (docs/design.md, "Layers").

Every ``import`` of an ``mtlrec`` module counts, also one inside a function: a lazy import
is still a dependency. A module may import its own package and any package of a lower
layer; the service's path is checked transitively (serving loads an artifact from its files
alone, without data preparation, training or the pipeline).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import mtlrec

ROOT = Path(mtlrec.__file__).parent

LAYERS: dict[str, int] = {
    "core": 0,
    "config": 1,
    "data": 2,
    "text": 3,
    "weighting": 3,
    "retrieval": 3,
    "models": 4,
    "training": 5,
    "evaluation": 5,
    "baselines": 5,
    "fusion": 6,
    "pipeline": 7,
    "export": 8,
    "serving": 9,
    "report": 9,
    "cli": 10,
}
"""Layer of each subpackage: a module imports only from its own package or lower layers."""

EXCEPTIONS: dict[tuple[str, str], str] = {
    ("mtlrec.config.experiment", "mtlrec.data.catalog"): (
        "a dataset name's default split and labels are filled in when the config is "
        "validated, so the resolved config (and the prepared-data cache key) says what is "
        "prepared; the catalog is a table of constants, imported inside the validator"
    ),
}
"""The upward imports allowed, each with its reason."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


@cache
def imports_of(module: str) -> frozenset[str]:
    """The ``mtlrec`` modules ``module`` imports anywhere in its source (resolved to modules
    that exist: ``from mtlrec.x import name`` counts as ``mtlrec.x``)."""
    tree = ast.parse(_modules()[module].read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found.update(n for n in names if n in _modules())
    return frozenset(found)


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def _closure(module: str) -> set[str]:
    """Every module importing ``module`` loads: itself, its imports, and the ``__init__`` of
    each package on the way."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        parts = current.split(".")
        parents = [".".join(parts[:i]) for i in range(1, len(parts))]
        todo.extend(p for p in parents if p in _modules())
        todo.extend(imports_of(current))
    return seen


def test_every_subpackage_has_a_layer() -> None:
    packages = {m.split(".")[1] for m in _modules() if m.count(".") >= 1}
    files = {p.removesuffix(".py") for p in packages if (ROOT / p).is_file() or p == "py"}
    assert packages - files <= set(LAYERS), sorted(packages - set(LAYERS) - files)


def test_no_module_imports_a_higher_layer() -> None:
    violations = []
    for module in sorted(_modules()):
        source = _package(module)
        if source is None:
            continue
        for target in sorted(imports_of(module)):
            goal = _package(target)
            upward = goal is not None and goal != source and LAYERS[goal] >= LAYERS[source]
            if upward and (module, target) not in EXCEPTIONS:
                violations.append(f"{module} -> {target}")
    assert not violations, "imports against the layers:\n" + "\n".join(violations)


def test_data_imports_no_models_training_or_pipeline() -> None:
    bad = [
        f"{m} -> {t}"
        for m in _modules()
        if _package(m) == "data"
        for t in imports_of(m)
        if _package(t) in {"models", "training", "pipeline"}
    ]
    assert not bad, bad


def test_serving_loads_without_data_preparation_training_or_pipeline() -> None:
    forbidden = ("mtlrec.training", "mtlrec.pipeline", "mtlrec.data.prepare")
    bad = []
    for module in _modules():
        if _package(module) != "serving":
            continue
        reached = _closure(module)
        bad += [f"{module} reaches {t}" for t in sorted(reached) if t.startswith(forbidden)]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The walk itself works: a known import is found, and a planted one would be caught."""
    assert "mtlrec.models.scoring" in imports_of("mtlrec.serving.heads")
    assert "mtlrec.pipeline.experiment" in _closure("mtlrec.cli.train")
