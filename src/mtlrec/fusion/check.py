"""Check a fusion config against the baseline and fusion registries before any work.

Every retriever's ``baseline`` and the ``fusion`` must be registered, and their ``params``
must bind to the constructors; all problems are raised as one
:class:`~mtlrec.config.loading.ConfigError` (see :mod:`mtlrec.models.check`).

This is the topmost checker: it sees every family a config chooses from, so it also
builds the whole component index that :mod:`mtlrec.config.fast_check` reads
(:func:`build_index`; rewrite the committed file with
``python tools/write_component_index.py``).
"""

from __future__ import annotations

from typing import Any

from mtlrec.baselines.base import BASELINES
from mtlrec.config.fast_check import Components, raise_if_any
from mtlrec.config.fast_check import fusion_problems as walk_fusion
from mtlrec.config.fusion import FusionConfig
from mtlrec.config.loading import ConfigProblem
from mtlrec.core.registry import Registry
from mtlrec.fusion.base import FUSIONS
from mtlrec.models.check import FAMILIES as MODEL_FAMILIES
from mtlrec.models.check import bind, component_index, dataset_sources

FAMILIES: dict[str, Registry[Any]] = {
    **MODEL_FAMILIES,
    "baselines": BASELINES,
    "fusions": FUSIONS,
}
"""Every registry a config chooses from, by family key: those of
:data:`mtlrec.models.check.FAMILIES`, the baselines and the fusions."""

LIVE: Components[Any] = Components(FAMILIES, bind, dataset_sources)


def fusion_problems(config: FusionConfig) -> list[ConfigProblem]:
    """Every problem of a fusion config: retriever baselines and the fusion method."""
    return walk_fusion(LIVE, config)


def check_fusion_config(config: FusionConfig) -> None:
    """Fail with every unknown baseline or fusion and unbindable parameter of ``config``."""
    raise_if_any(fusion_problems(config))


def build_index() -> dict[str, Any]:
    """The component index of every family, from the live registries: what
    ``src/mtlrec/config/components.json`` must hold."""
    return {
        "generated_by": "python tools/write_component_index.py",
        "families": component_index(FAMILIES),
    }
