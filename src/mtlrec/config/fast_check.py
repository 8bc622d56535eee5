"""Check a config's component names and parameters without importing any component.

The command line runs this first: it needs no torch and no registry module, so ``mtlrec
train`` with a misspelled weighting fails in well under two seconds, before any data is
read. It looks names up in the committed index of the registered components,
``mtlrec/config/components.json`` (family -> name -> constructor parameters), and reports
what the full check reports, with the same messages under the same dotted keys: unknown
names (with the known ones and the closest), unknown parameters (with the accepted ones)
and required parameters left out. The full check (:mod:`mtlrec.models.check`,
:mod:`mtlrec.fusion.check`) runs right after on the live registries and adds what only
the live classes can tell: whether each value fits its parameter's annotation.

Which config key holds which family's choice is written once, here, and both checks walk
the config with it: a :class:`Components` says where names are looked up (registries of
index entries here, of live classes there) and how parameters are bound.

The index is generated from the live registries: after adding a component or changing a
constructor, run ``python tools/write_component_index.py``; a test fails until the
committed file matches the registries.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Generic, TypeVar

from mtlrec.config.binding import Where, binding_problems, entry_signature
from mtlrec.config.experiment import ExperimentConfig
from mtlrec.config.fusion import FusionConfig
from mtlrec.config.loading import ConfigError, ConfigProblem
from mtlrec.config.prepare import ComponentConfig, PrepareConfig
from mtlrec.core.registry import Registry, UnknownNameError

T = TypeVar("T")

INDEX_FILE = "components.json"
"""The component index, a package file of ``mtlrec.config``."""
REGENERATE = "python tools/write_component_index.py"
"""The command that rewrites the index from the live registries."""


@dataclass(frozen=True)
class Components(Generic[T]):
    """The registered components a check knows, by family.

    ``families`` maps each family key (``"backbones"``, ``"weightings"``, ``"datasets"``,
    ...) to a registry of its components, ``bind(family, component, params, where)``
    gives the problems of ``params`` for one component, and ``sources(dataset)`` names
    the sources a catalog dataset's layouts are parsed by.
    """

    families: Mapping[str, Registry[T]]
    bind: Callable[[str, T, Mapping[str, Any], Where], list[ConfigProblem]]
    sources: Callable[[T], list[str]]


def unknown(registry: Registry[Any], name: str, where: Where) -> list[ConfigProblem]:
    """``[]`` when ``name`` is registered, else the problem at ``where``, in the registry's
    own words (the known names and the closest one)."""
    try:
        registry.get(name)
    except UnknownNameError as error:
        return [ConfigProblem(where, str(error))]
    return []


def component_problems(
    components: Components[T], family: str, component: ComponentConfig, where: Where
) -> list[ConfigProblem]:
    """Problems of one ``{name, params}`` choice of ``family`` at config key ``where``."""
    registry = components.families[family]
    problems = unknown(registry, component.name, (*where, "name"))
    if problems:
        return problems
    return components.bind(
        family, registry.get(component.name), component.params, (*where, "params")
    )


def moved(problems: list[ConfigProblem], old: Where, new: Where) -> list[ConfigProblem]:
    """``problems`` with the key ``old`` reported as ``new`` (a retriever names its
    component ``baseline``, a dataset ``source``, not ``name``)."""
    return [ConfigProblem(new, p.message) if p.where == old else p for p in problems]


def dataset_problems(
    components: Components[T], config: PrepareConfig, where: Where
) -> list[ConfigProblem]:
    """The dataset's catalog name or source, and its ``params`` against the source."""
    dataset, at = config.dataset, (*where, "dataset")
    if dataset.name is not None:
        catalog = components.families["datasets"]
        problems = unknown(catalog, dataset.name, (*at, "name"))
        sources = [] if problems else components.sources(catalog.get(dataset.name))
    else:
        assert dataset.source is not None  # the schema asks for exactly one of them
        sources, problems = [dataset.source], []
    attempts = [
        component_problems(
            components, "sources", ComponentConfig(name=s, params=dataset.params), at
        )
        for s in sources
    ]
    if attempts and all(attempts):  # a catalog dataset: the params must suit one layout
        problems += moved(attempts[0], (*at, "name"), (*at, "source"))
    return problems


def prepare_problems(
    components: Components[T], config: PrepareConfig, where: Where = ()
) -> list[ConfigProblem]:
    """Problems of a ``data`` section: dataset, source parameters and label builders."""
    problems = dataset_problems(components, config, where)
    for index, label in enumerate(config.labels or []):
        at = (*where, "labels", str(index))
        problems += component_problems(components, "label_builders", label, at)
    return problems


def task_problems(components: Components[T], config: ExperimentConfig) -> list[ConfigProblem]:
    """Each task's loss name and head choice."""
    problems: list[ConfigProblem] = []
    for name, task in (config.tasks or {}).items():
        if task.loss is not None:
            problems += unknown(components.families["losses"], task.loss, ("tasks", name, "loss"))
        if task.head is not None:
            problems += component_problems(components, "heads", task.head, ("tasks", name, "head"))
    return problems


def experiment_problems(components: Components[T], config: ExperimentConfig) -> list[ConfigProblem]:
    """Every problem of an experiment config that the components can tell without data."""
    model = config.model
    return [
        *prepare_problems(components, config.data, ("data",)),
        *task_problems(components, config),
        *component_problems(
            components,
            "architectures",
            ComponentConfig(name=model.name, params=model.params),
            ("model",),
        ),
        *component_problems(components, "inputs", model.inputs, ("model", "inputs")),
        *component_problems(components, "backbones", model.backbone, ("model", "backbone")),
        *component_problems(components, "heads", model.head, ("model", "head")),
        *component_problems(components, "weightings", config.weighting, ("weighting",)),
    ]


def fusion_problems(components: Components[T], config: FusionConfig) -> list[ConfigProblem]:
    """Every problem of a fusion config: retriever baselines and the fusion method."""
    problems: list[ConfigProblem] = []
    for name, retriever in config.retrievers.items():
        choice = ComponentConfig(name=retriever.baseline, params=retriever.params)
        at = ("retrievers", name)
        found = component_problems(components, "baselines", choice, at)
        problems += moved(found, (*at, "name"), (*at, "baseline"))
    problems += component_problems(components, "fusions", config.fusion, ("fusion",))
    return problems


def raise_if_any(problems: list[ConfigProblem]) -> None:
    """Raise one :class:`ConfigError` listing ``problems``, if there are any."""
    if problems:
        raise ConfigError.of(problems)


def read_index() -> dict[str, Any]:
    """The committed component index (``mtlrec/config/components.json``)."""
    try:
        text = resources.files("mtlrec.config").joinpath(INDEX_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"the component index mtlrec/config/{INDEX_FILE} is missing; run: {REGENERATE}"
        ) from None
    index: dict[str, Any] = json.loads(text)
    return index


def index_components(index: Mapping[str, Any]) -> Components[dict[str, Any]]:
    """The components an index lists, each family as a registry of its entries (so an
    unknown name fails with the registry's own message)."""
    families: dict[str, Registry[dict[str, Any]]] = {}
    for family, listed in index["families"].items():
        registry: Registry[dict[str, Any]] = Registry(listed["label"])
        for name, entry in listed["components"].items():
            registry.register(name)(entry)
        families[family] = registry
    return Components(families, _bind_entry, _entry_sources)


def _bind_entry(
    family: str, entry: dict[str, Any], params: Mapping[str, Any], where: Where
) -> list[ConfigProblem]:
    return binding_problems(entry_signature(entry), params, entry["supplied"], where)


def _entry_sources(entry: dict[str, Any]) -> list[str]:
    return list(entry["sources"])


@functools.cache
def indexed() -> Components[dict[str, Any]]:
    """The packaged components, from the committed index (read once)."""
    return index_components(read_index())


def fast_check_experiment(config: ExperimentConfig) -> None:
    """Fail with every unknown component name and unknown or missing parameter of an
    experiment config, from the index alone."""
    raise_if_any(experiment_problems(indexed(), config))


def fast_check_prepare(config: PrepareConfig) -> None:
    """Fail with every unknown dataset, source or label builder of a ``data prepare``
    config, and every unknown or missing parameter, from the index alone."""
    raise_if_any(prepare_problems(indexed(), config))


def fast_check_fusion(config: FusionConfig) -> None:
    """Fail with every unknown baseline or fusion of a fusion config, and every unknown
    or missing parameter, from the index alone."""
    raise_if_any(fusion_problems(indexed(), config))
