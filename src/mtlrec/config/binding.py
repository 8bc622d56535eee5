"""Whether a component's ``params`` bind to its constructor, before anything is built.

The config layer knows no components: callers (:mod:`mtlrec.models.check`,
:mod:`mtlrec.fusion.check`) pass the registered class or function to check against, and
:mod:`mtlrec.config.fast_check` passes its entry of the component index instead
(:func:`signature_entry` writes one, :func:`entry_signature` reads it back as the same
:class:`inspect.Signature`), so both checks bind with the one :func:`binding_problems`.

A parameter binds when the constructor has a keyword of that name (or takes ``**kwargs``)
that the framework does not pass itself; required keywords left out are problems too.
Where the keyword is annotated, :func:`parameter_problems` (live components only) also
validates the value against the annotation (:class:`pydantic.TypeAdapter`, lax mode: YAML
lists pass for tuples, ``1`` for a float).
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ConfigDict, PydanticUserError, TypeAdapter, ValidationError

from mtlrec.config.loading import ConfigProblem
from mtlrec.core.registry import did_you_mean

Where = tuple[str, ...]

_KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_VARIADIC_KINDS = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
_KINDS = {
    kind.name.lower(): kind
    for kind in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.VAR_POSITIONAL,
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.VAR_KEYWORD,
    )
}
"""An index entry's ``kind`` (``"keyword_only"``, ...) -> the :mod:`inspect` kind."""

_OPTIONAL = "<has a default>"
"""The default an index-built signature gives an optional parameter (the index records
whether a parameter has a default, not the default itself)."""


def parameter_problems(
    target: Callable[..., Any], params: Mapping[str, Any], supplied: int, where: Where
) -> list[ConfigProblem]:
    """What is wrong with calling ``target`` with ``params`` after its first ``supplied``
    arguments (those the framework passes itself, e.g. a backbone's ``in_dim, tasks``):
    :func:`binding_problems`, then each value that does not fit its annotation.

    ``where`` is the dotted key of ``params`` in the config (problems extend it by the
    parameter's name).
    """
    signature = inspect.signature(target)
    problems = binding_problems(signature, params, supplied, where)
    hints = _type_hints(target)
    for p in own_parameters(signature, supplied):
        if p.name in params and p.name in hints:
            mismatch = type_mismatch(hints[p.name], params[p.name], p.annotation)
            if mismatch is not None:
                problems.append(ConfigProblem((*where, p.name), mismatch))
    return problems


def own_parameters(signature: inspect.Signature, supplied: int) -> list[inspect.Parameter]:
    """The keywords a config may set: those after the ``supplied`` leading arguments."""
    parameters = list(signature.parameters.values())
    return [p for p in parameters[supplied:] if p.kind in _KEYWORD_KINDS]


def binding_problems(
    signature: inspect.Signature, params: Mapping[str, Any], supplied: int, where: Where
) -> list[ConfigProblem]:
    """The names in ``params`` that ``signature`` does not accept after its first
    ``supplied`` arguments (with the accepted ones and the closest), and its required
    keywords that ``params`` leaves out. Values are not looked at."""
    parameters = list(signature.parameters.values())
    own = own_parameters(signature, supplied)
    accepted = [p.name for p in own]
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    framework = {p.name for p in parameters[:supplied]}
    problems = [
        ConfigProblem((*where, key), unknown_message(key, accepted, framework))
        for key in params
        if key in framework or (key not in accepted and not open_ended)
    ]
    problems += [
        ConfigProblem(where, f"missing required parameter {p.name!r}")
        for p in own
        if p.default is inspect.Parameter.empty and p.name not in params
    ]
    return problems


def signature_entry(target: Callable[..., Any], supplied: int) -> dict[str, Any]:
    """``target``'s constructor as the component index stores it (plain JSON): the
    ``supplied`` count and each parameter's name, kind, whether it is required, and its
    annotation as written (``None`` when there is none)."""
    parameters = inspect.signature(target).parameters.values()
    return {
        "supplied": supplied,
        "parameters": [
            {
                "name": p.name,
                "kind": p.kind.name.lower(),
                "required": p.default is inspect.Parameter.empty and p.kind not in _VARIADIC_KINDS,
                "annotation": _annotation_text(p.annotation),
            }
            for p in parameters
        ],
    }


def entry_signature(entry: Mapping[str, Any]) -> inspect.Signature:
    """The :class:`inspect.Signature` that a :func:`signature_entry` describes (optional
    parameters get a placeholder default), for :func:`binding_problems`."""
    return inspect.Signature(
        [
            inspect.Parameter(
                p["name"],
                _KINDS[p["kind"]],
                default=(
                    inspect.Parameter.empty
                    if p["required"] or _KINDS[p["kind"]] in _VARIADIC_KINDS
                    else _OPTIONAL
                ),
                annotation=inspect.Parameter.empty if p["annotation"] is None else p["annotation"],
            )
            for p in entry["parameters"]
        ]
    )


def _annotation_text(annotation: Any) -> str | None:
    """An annotation as source text (``from __future__ import annotations`` keeps it so)."""
    if annotation is inspect.Parameter.empty:
        return None
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def unknown_message(key: str, accepted: list[str], framework: set[str]) -> str:
    """Why ``key`` cannot be a parameter: supplied by mtlrec, or unknown (with the
    accepted names and the closest one)."""
    names = ", ".join(accepted) or "(none)"
    if key in framework:
        return f"{key!r} is passed by mtlrec itself, not set in a config; accepted: {names}"
    return f"unknown parameter; accepted: {names}{did_you_mean(key, accepted)}"


def type_mismatch(hint: Any, value: Any, annotation: Any) -> str | None:
    """``"expected <annotation>, got <value>: <reason>"`` when ``value`` does not validate
    against ``hint``; ``None`` when it does or the type cannot be checked."""
    adapter = _adapter(hint)
    if adapter is None:
        return None
    try:
        adapter.validate_python(value)
    except ValidationError as error:
        expected = annotation if isinstance(annotation, str) else _type_name(hint)
        reason = error.errors()[0]["msg"]
        return f"expected {expected}, got {value!r} ({reason})"
    return None


def _type_hints(target: Callable[..., Any]) -> dict[str, Any]:
    """The resolved annotations of ``target`` (a class: its ``__init__``); none when they
    cannot be resolved (names imported only for type checkers)."""
    function = target.__init__ if isinstance(target, type) else target  # type: ignore[misc]
    try:
        return typing.get_type_hints(function)
    except Exception:  # an unresolvable annotation: binding is still checked, types are not
        return {}


@functools.lru_cache(maxsize=256)
def _cached_adapter(hint: Any) -> TypeAdapter[Any] | None:
    try:
        return TypeAdapter(hint, config=ConfigDict(arbitrary_types_allowed=True))
    except PydanticUserError:  # models and dataclasses carry their own config
        try:
            return TypeAdapter(hint)
        except Exception:
            return None
    except Exception:  # a type pydantic cannot describe: not checked
        return None


def _adapter(hint: Any) -> TypeAdapter[Any] | None:
    try:
        return _cached_adapter(hint)
    except TypeError:  # an unhashable annotation
        return None


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or repr(hint)
