"""``formula``: combine the heads of one multi-task model with a hand-written formula.

For example ``"sigmoid(interest) * (1 + 0.5 * (rating - 3) / 2) + 0.2 * sigmoid(sentiment)"``
ranks by predicted interest, boosted by the predicted rating and sentiment. Variables are
source names (so only sources whose names are Python identifiers can be used); the raw,
un-normalised scores are combined. Nothing is learnt: :meth:`FormulaFusion.fit` only
checks that every variable is a source, and sources the formula does not mention are
ignored by :meth:`FormulaFusion.fuse`.

The formula is parsed at construction with :mod:`ast` and evaluated by walking the tree
(never ``eval``). Allowed: numbers, variable names, ``+ - * / **``, unary ``-``/``+``,
parentheses and the functions in :data:`FUNCTIONS`; anything else is a ``ValueError``
naming the offending part. Evaluation is float64 with numpy's error flags silenced; an
item that any variable of the formula does not score (``-inf``) gets ``-inf``, as does
any nan produced along the way (``log(-1)``, ``inf - inf``). :meth:`Fusion.fuse` then
places such items below every other allowed item (its output is finite except at
``exclude``).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from mtlrec.fusion.base import FUSIONS, Fusion, FusionInput


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.exp(-np.logaddexp(0.0, -x)), dtype=np.float64)


FUNCTIONS: dict[str, tuple[int, Callable[..., np.ndarray]]] = {
    "sigmoid": (1, _sigmoid),
    "exp": (1, np.exp),
    "log": (1, np.log),
    "log1p": (1, np.log1p),
    "sqrt": (1, np.sqrt),
    "abs": (1, np.abs),
    "clip": (3, np.clip),
    "minimum": (2, np.minimum),
    "maximum": (2, np.maximum),
}
"""Functions a formula may call: name -> (number of arguments, implementation)."""

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Pow: np.power,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: np.negative,
    ast.UAdd: np.positive,
}


def _describe(node: ast.AST) -> str:
    try:
        return repr(ast.unparse(node))
    except Exception:  # pragma: no cover - unparse handles every parsed node
        return type(node).__name__


def parse_formula(formula: str) -> tuple[ast.expr, tuple[str, ...]]:
    """The checked expression tree of ``formula`` and its variables (sorted).

    Raises ``ValueError`` for syntax errors, unsupported syntax (attribute access,
    subscripts, comparisons, keywords, strings, ...), unknown functions, wrong numbers of
    arguments and formulas without variables.
    """
    if not isinstance(formula, str):
        raise ValueError(f"formula must be a string, got {type(formula).__name__}")
    try:
        tree = ast.parse(formula.strip(), mode="eval")
    except SyntaxError as err:
        raise ValueError(f"formula {formula!r} is not valid syntax: {err.msg}") from None
    variables: set[str] = set()

    def check(node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"formula: unsupported constant {_describe(node)}")
        elif isinstance(node, ast.Name):
            if node.id in FUNCTIONS:
                raise ValueError(f"formula: {node.id!r} is a function, call it with (...)")
            variables.add(node.id)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise ValueError(f"formula: unsupported operator in {_describe(node)}")
            check(node.left)
            check(node.right)
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise ValueError(f"formula: unsupported operator in {_describe(node)}")
            check(node.operand)
        elif isinstance(node, ast.Call):
            func = node.func
            if not isinstance(func, ast.Name):
                raise ValueError(f"formula: unsupported call {_describe(node)}")
            if func.id not in FUNCTIONS:
                raise ValueError(
                    f"formula: unknown function {func.id!r} in {_describe(node)}; "
                    f"allowed: {', '.join(FUNCTIONS)}"
                )
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
                raise ValueError(f"formula: only positional arguments in {_describe(node)}")
            arity = FUNCTIONS[func.id][0]
            if len(node.args) != arity:
                raise ValueError(
                    f"formula: {func.id} takes {arity} argument(s), got {len(node.args)} "
                    f"in {_describe(node)}"
                )
            for arg in node.args:
                check(arg)
        else:
            raise ValueError(f"formula: unsupported {type(node).__name__} {_describe(node)}")

    check(tree.body)
    if not variables:
        raise ValueError(f"formula {formula!r} uses no source")
    return tree.body, tuple(sorted(variables))


def evaluate_formula(node: ast.expr, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """Evaluate a tree from :func:`parse_formula` on float64 arrays ``values`` (one per
    variable, all the same shape); returns that shape, nan replaced by ``-inf``."""

    def walk(n: ast.AST) -> Any:
        if isinstance(n, ast.Constant) and isinstance(n.value, int | float):
            return float(n.value)
        if isinstance(n, ast.Name):
            return values[n.id]
        if isinstance(n, ast.BinOp):
            return _BINARY[type(n.op)](walk(n.left), walk(n.right))
        if isinstance(n, ast.UnaryOp):
            return _UNARY[type(n.op)](walk(n.operand))
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
            return FUNCTIONS[n.func.id][1](*(walk(a) for a in n.args))
        raise ValueError(f"formula: unsupported {type(n).__name__}")  # parse_formula rules out

    shape = next(iter(values.values())).shape
    with np.errstate(all="ignore"):
        out = np.broadcast_to(np.asarray(walk(node), dtype=np.float64), shape).copy()
    out[np.isnan(out)] = -np.inf
    return out


@FUSIONS.register("formula")
class FormulaFusion(Fusion):
    """A fixed formula over the raw scores of named sources (e.g. task heads)."""

    name = "formula"
    extra_sources_ok = True
    example_params = {"formula": "good + 0.1 * bad"}

    def __init__(self, formula: str) -> None:
        self._tree, self._variables = parse_formula(formula)
        self.formula = formula

    @property
    def variables(self) -> tuple[str, ...]:
        """The sources the formula reads, sorted."""
        return self._variables

    def _fit(self, inputs: FusionInput, relevant: np.ndarray) -> None:
        missing = [v for v in self._variables if v not in inputs.scores]
        if missing:
            raise ValueError(
                f"formula variables {missing} are not sources; available: {list(inputs.names)}"
            )
        self.sources_ = self._variables

    def _fuse(self, inputs: FusionInput) -> np.ndarray:
        values = {v: inputs.scores[v].astype(np.float64) for v in self._variables}
        out = evaluate_formula(self._tree, values)
        unscored = np.zeros(out.shape, dtype=bool)
        for v in values.values():
            unscored |= np.isneginf(v)
        out[unscored] = -np.inf
        return out

    def _get_state(self) -> dict[str, Any]:
        return {}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        if tuple(self.sources_) != self._variables:
            raise ValueError("formula state: sources do not match the formula's variables")
