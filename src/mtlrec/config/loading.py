"""YAML loading with ``--set a.b=c`` overrides, validated into pydantic models."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration file or override is wrong; the message names the file and the key."""


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping from ``path`` (an empty file is an empty mapping)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file does not exist") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``"a.b.c=value"`` applied (value parsed as YAML)."""
    result = copy.deepcopy(data)
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {override!r} is not of the form a.b.c=value")
        parts = key.strip().split(".")
        node = result
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {override!r}: {part!r} is not a mapping")
            node = child
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None
    return result


def validate(model: type[ModelT], data: dict[str, Any], origin: str) -> ModelT:
    """Validate ``data`` into ``model``; errors name ``origin`` and each bad key."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            where = ".".join(str(p) for p in item["loc"]) or "<top>"
            problems.append(f"  {where}: {item['msg']}")
        raise ConfigError(f"{origin}: invalid configuration\n" + "\n".join(problems)) from None


def load_config(model: type[ModelT], path: Path, overrides: Iterable[str] = ()) -> ModelT:
    """Load ``path`` as YAML, apply overrides and validate it into ``model``."""
    return validate(model, apply_overrides(load_yaml(path), overrides), str(path))
