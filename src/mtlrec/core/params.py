"""Constructor parameters read back from attributes (scikit-learn's estimator rule).

A component takes explicit keyword arguments in ``__init__`` and stores each untouched as
an attribute of the same name; :class:`KeywordParams` then gives it ``get_params`` (to
clone, compare and save it) and a ``repr`` that shows them.
"""

from __future__ import annotations

import inspect
from typing import Any


class KeywordParams:
    """Mixin: ``get_params()`` and ``repr`` from the ``__init__`` signature."""

    def get_params(self) -> dict[str, Any]:
        """The constructor keyword arguments, read back from the attributes."""
        sig = inspect.signature(type(self).__init__)
        return {
            p: getattr(self, p)
            for p, param in sig.parameters.items()
            if p != "self"
            and param.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
