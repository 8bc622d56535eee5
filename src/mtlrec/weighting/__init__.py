"""How task losses become one update.

Loss-level strategies (:class:`LossWeighting`) combine the task losses into one loss;
gradient-level strategies (:class:`GradientWeighting`) combine the task gradients of the
shared parameters into one gradient. The trainer builds one with :func:`make_weighting`
and calls :func:`weighted_backward` each step, :meth:`Weighting.weights` for logging and
:meth:`Weighting.end_epoch` after each epoch; it never looks at a strategy's name.

Registered in :data:`WEIGHTINGS` (one module each): ``static``, ``equal``,
``uncertainty``, ``dwa``, ``gradnorm``, ``pcgrad``, ``cagrad``, ``mgda``.
"""

from __future__ import annotations

from mtlrec.weighting.base import (
    WEIGHTINGS,
    GradientWeighting,
    LossWeighting,
    Weighting,
    WeightingContext,
    make_weighting,
    weighted_backward,
)
from mtlrec.weighting.cagrad import CAGrad
from mtlrec.weighting.dwa import DynamicWeightAverage
from mtlrec.weighting.equal import EqualWeighting
from mtlrec.weighting.gradnorm import GradNorm
from mtlrec.weighting.mgda import MGDA
from mtlrec.weighting.pcgrad import PCGrad
from mtlrec.weighting.static import StaticWeighting
from mtlrec.weighting.uncertainty import UncertaintyWeighting

__all__ = [
    "MGDA",
    "WEIGHTINGS",
    "CAGrad",
    "DynamicWeightAverage",
    "EqualWeighting",
    "GradNorm",
    "GradientWeighting",
    "LossWeighting",
    "PCGrad",
    "StaticWeighting",
    "UncertaintyWeighting",
    "Weighting",
    "WeightingContext",
    "make_weighting",
    "weighted_backward",
]
