"""Check an experiment config against the live registries before any data is read.

Every component chosen by name must be registered (the error lists the known names and the
closest one), and its ``params`` must bind to the component's constructor, each value
fitting its annotation (see :mod:`mtlrec.config.binding`). All problems are collected and
raised as one :class:`~mtlrec.config.loading.ConfigError`, each with its dotted key, e.g.
``model.backbone.params.n_expert: unknown parameter; accepted: n_experts, ...``.

The walk over the config is :mod:`mtlrec.config.fast_check`'s, which runs the same check
from the committed component index without importing torch; this module gives it the
live registries (:data:`LIVE`) and builds the index entries of its families
(:func:`component_index`; the whole index: :func:`mtlrec.fusion.check.build_index`,
written by ``python tools/write_component_index.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mtlrec.config.binding import Where, parameter_problems, signature_entry
from mtlrec.config.experiment import ExperimentConfig
from mtlrec.config.fast_check import Components, raise_if_any
from mtlrec.config.fast_check import experiment_problems as walk_experiment
from mtlrec.config.fast_check import prepare_problems as walk_prepare
from mtlrec.config.loading import ConfigProblem
from mtlrec.config.prepare import PrepareConfig
from mtlrec.core.registry import Registry
from mtlrec.data.catalog import DATASETS, DatasetSpec
from mtlrec.data.labels import LABEL_BUILDERS
from mtlrec.data.sources import SOURCES
from mtlrec.models.architectures import ARCHITECTURES
from mtlrec.models.backbones import BACKBONES
from mtlrec.models.heads import HEADS
from mtlrec.models.inputs import INPUTS
from mtlrec.models.losses import LOSSES
from mtlrec.weighting import WEIGHTINGS

INPUTS_SUPPLY = 2
"""An input encoder is called with ``(schema, tables)`` before its params."""
BACKBONE_SUPPLIES = 2
"""A backbone is called with ``(in_dim, tasks)`` before its params."""
HEAD_SUPPLIES = 2
"""A head is called with ``(in_dim, spec)`` before its params."""
WEIGHTING_SUPPLIES = 1
"""A weighting is called with ``(tasks)`` before its params."""

SUPPLIED: dict[str, int] = {
    "inputs": INPUTS_SUPPLY,
    "backbones": BACKBONE_SUPPLIES,
    "heads": HEAD_SUPPLIES,
    "weightings": WEIGHTING_SUPPLIES,
}
"""How many leading arguments mtlrec passes a family's constructor itself (others: 0)."""

NAME_ONLY = frozenset({"losses"})
"""Families chosen by name alone: a task's ``loss`` takes no parameters from a config."""

FAMILIES: dict[str, Registry[Any]] = {
    "architectures": ARCHITECTURES,
    "datasets": DATASETS,
    "sources": SOURCES,
    "label_builders": LABEL_BUILDERS,
    "inputs": INPUTS,
    "backbones": BACKBONES,
    "heads": HEADS,
    "losses": LOSSES,
    "weightings": WEIGHTINGS,
}
"""The registries an experiment or ``data prepare`` config chooses from, by family key."""


def bind(family: str, target: Any, params: Mapping[str, Any], where: Where) -> list[ConfigProblem]:
    """Problems of ``params`` for the live ``target`` of ``family``, types included."""
    return parameter_problems(target, params, SUPPLIED.get(family, 0), where)


def dataset_sources(spec: DatasetSpec) -> list[str]:
    """The sources a catalog dataset's layouts are parsed by, in layout order."""
    return list(dict.fromkeys(layout.source for layout in spec.layouts))


LIVE: Components[Any] = Components(FAMILIES, bind, dataset_sources)
"""The live registries of :data:`FAMILIES`, for the walks of :mod:`mtlrec.config.fast_check`."""


def index_entry(family: str, component: Any) -> dict[str, Any]:
    """What the component index stores of one ``component`` of ``family``: a catalog
    dataset's sources, nothing for a name-only family, else its constructor's parameters."""
    if family == "datasets":
        return {"sources": dataset_sources(component)}
    if family in NAME_ONLY:
        return {}
    return signature_entry(component, SUPPLIED.get(family, 0))


def component_index(families: Mapping[str, Registry[Any]]) -> dict[str, Any]:
    """The component index of ``families`` (JSON-able; see
    :mod:`mtlrec.config.fast_check`): per family its registry's label and each
    registered name's :func:`index_entry`."""
    return {
        family: {
            "label": registry.family,
            "components": {name: index_entry(family, registry.get(name)) for name in registry},
        }
        for family, registry in sorted(families.items())
    }


def experiment_problems(config: ExperimentConfig) -> list[ConfigProblem]:
    """Every problem of an experiment config that the registries can tell without data."""
    return walk_experiment(LIVE, config)


def prepare_problems(config: PrepareConfig, where: Where = ()) -> list[ConfigProblem]:
    """Problems of a ``data`` section: dataset, source parameters and label builders."""
    return walk_prepare(LIVE, config, where)


def check_experiment_config(config: ExperimentConfig) -> None:
    """Fail with every unknown component name and unbindable parameter of ``config``."""
    raise_if_any(experiment_problems(config))


def check_prepare_config(config: PrepareConfig) -> None:
    """Fail with every unknown dataset, source or label builder of a ``data prepare``
    config, and every unbindable parameter."""
    raise_if_any(prepare_problems(config))
