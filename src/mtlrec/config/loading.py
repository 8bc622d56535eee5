"""YAML loading with ``--set a.b=c`` overrides, validated into pydantic models.

Every problem is reported with its dotted key and blamed on where it came from: the YAML
file, or the ``--set`` override that wrote that key.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from mtlrec.core.registry import did_you_mean

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a configuration: the dotted key ``where`` and what is wrong."""

    where: tuple[str, ...]
    message: str

    def describe(self) -> str:
        """``"a.b.c: message"`` (``<top>`` for the whole config)."""
        return f"{'.'.join(self.where) or '<top>'}: {self.message}"


class ConfigError(ValueError):
    """A configuration file or override is wrong; the message names the file and the key.

    ``problems`` holds each problem found (possibly none, for a file-level error such as a
    missing file), so a caller can say where each one came from.
    """

    def __init__(self, message: str, problems: Sequence[ConfigProblem] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)

    @classmethod
    def of(cls, problems: Sequence[ConfigProblem], origin: str = "") -> ConfigError:
        """One error listing every problem, one per line, under ``origin``."""
        head = f"{origin}: invalid configuration" if origin else "invalid configuration"
        lines = [f"  {problem.describe()}" for problem in problems]
        return cls("\n".join([head, *lines]), problems)


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping from ``path`` (an empty file is an empty mapping)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a YAML config file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the config file ({error})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def override_key(override: str) -> tuple[str, ...]:
    """The dotted key an ``"a.b.c=value"`` override writes, as ``("a", "b", "c")``."""
    key, sep, _ = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {override!r} is not of the form a.b.c=value")
    return tuple(key.strip().split("."))


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``"a.b.c=value"`` applied (value parsed as YAML)."""
    result = copy.deepcopy(data)
    for override in overrides:
        parts = override_key(override)
        raw = override.partition("=")[2]
        node = result
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {override!r}: {part!r} is not a mapping")
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as error:
            raise ConfigError(f"--set {override!r}: the value is not valid YAML: {error}") from None
    return result


def blamed_override(where: Sequence[str], overrides: Sequence[str], loose: bool) -> str | None:
    """The last override whose key is ``where``, above it or inside it; with ``loose``,
    failing that, one whose key is beside it (``--set model.head.params=...`` leaves
    ``model.head.name`` missing)."""
    targets = (tuple(where), tuple(where[:-1])) if loose else (tuple(where),)
    for target in targets:
        for override in reversed(overrides):
            key = override_key(override)
            shared = min(len(key), len(target))
            if shared and key[:shared] == target[:shared]:
                return override
    return None


def problems_of(
    error: ValidationError, model: type[BaseModel] | None = None
) -> list[ConfigProblem]:
    """Each pydantic validation error as a :class:`ConfigProblem`; an unknown key of
    ``model`` (or of a config section inside it) gets the nearest known key suggested."""
    problems = []
    for item in error.errors():
        where = tuple(str(p) for p in item["loc"])
        message = item["msg"]
        if item["type"] == "extra_forbidden" and model is not None:
            message += did_you_mean(where[-1], _fields_at(model, where[:-1]))
        problems.append(ConfigProblem(where, message))
    return problems


def _fields_at(model: type[BaseModel], path: Sequence[str]) -> list[str]:
    """The field names of the config section at ``path`` inside ``model`` (none when the
    path leaves the typed sections, e.g. through a free-form parameter dict)."""
    current: Any = model
    for part in path:
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return []
        current = _section_type(fields[part].annotation)
        if current is None:
            return []
    fields = getattr(current, "model_fields", None)
    return list(fields) if fields is not None else []


def _section_type(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside a field's annotation (``X``, ``X | None``), if any."""
    candidates = [annotation, *typing.get_args(annotation)]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def attribute(
    problems: Sequence[ConfigProblem],
    path: str,
    overrides: Sequence[str],
    file_problems: frozenset[ConfigProblem] | None = None,
) -> ConfigError:
    """One error for ``problems``, each blamed on the YAML file or a ``--set`` override.

    ``file_problems`` are those of the file without overrides (None: not known). A problem
    the file has itself is the file's; any other is an override's, the one whose key leads
    to it (every override when none does). Without ``file_problems``, a problem is blamed on
    an override only when that override wrote its key or a key above it.
    """
    lines, blamed, from_file = [], [], False
    for problem in problems:
        culprits = _culprits(problem, overrides, file_problems)
        from_file = from_file or not culprits
        blamed += culprits
        where = ", ".join(f"--set {o}" for o in culprits)
        lines.append(f"  {problem.describe()}" + (f" (from {where})" if culprits else ""))
    heading = path if from_file else ", ".join(f"--set {o}" for o in dict.fromkeys(blamed))
    return ConfigError("\n".join([f"{heading}: invalid configuration", *lines]), problems)


def _culprits(
    problem: ConfigProblem,
    overrides: Sequence[str],
    file_problems: frozenset[ConfigProblem] | None,
) -> list[str]:
    """The overrides to blame for ``problem`` (none: the file's own); see :func:`attribute`."""
    if not overrides or (file_problems is not None and problem in file_problems):
        return []
    override = blamed_override(problem.where, overrides, loose=file_problems is not None)
    if override is not None:
        return [override]
    return [] if file_problems is None else list(overrides)


def validate(
    model: type[ModelT], data: dict[str, Any], origin: str, overrides: Sequence[str] = ()
) -> ModelT:
    """Validate ``data`` into ``model``; errors name ``origin`` (or the ``--set`` that
    wrote the bad key) and each bad key."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise attribute(problems_of(error, model), origin, overrides) from None


def config_problems(
    model: type[ModelT], data: dict[str, Any], check: Callable[[ModelT], None] | None
) -> tuple[ModelT | None, list[ConfigProblem], bool]:
    """``(config, problems, checked)`` of ``data``: the schema's problems, else those of
    ``check``; ``checked`` says whether ``check`` ran (or there is none)."""
    try:
        config = model.model_validate(data)
    except ValidationError as error:
        return None, problems_of(error, model), check is None
    if check is not None:
        try:
            check(config)
        except ConfigError as error:
            if not error.problems:
                raise
            return None, list(error.problems), True
    return config, [], True


def load_config(
    model: type[ModelT],
    path: Path,
    overrides: Iterable[str] = (),
    check: Callable[[ModelT], None] | None = None,
) -> ModelT:
    """Load ``path`` as YAML, apply overrides and validate it into ``model``.

    ``check`` (for example :func:`mtlrec.models.check.check_experiment_config`) then
    runs on the validated config. Every problem, the schema's or the check's, is reported
    with its key and blamed on the file or on the ``--set`` override that caused it (the
    file alone is checked again to tell which).
    """
    return load_config_data(model, load_yaml(path), overrides, check, str(path))


def load_config_data(
    model: type[ModelT],
    raw: dict[str, Any],
    overrides: Iterable[str] = (),
    check: Callable[[ModelT], None] | None = None,
    origin: str = "the default config",
) -> ModelT:
    """:func:`load_config` of a config given as data (``origin`` names it in errors)."""
    overrides = list(overrides)
    config, problems, checked = config_problems(model, apply_overrides(raw, overrides), check)
    if config is not None:
        return config
    known: frozenset[ConfigProblem] | None = None
    if overrides:
        _, alone, alone_checked = config_problems(model, raw, check)
        reached_check = checked and check is not None
        known = frozenset(alone) if alone_checked or not reached_check else None
    raise attribute(problems, origin, overrides, known)
