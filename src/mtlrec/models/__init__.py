"""Models: input encoders, shared backbones, task heads and their composition."""

from mtlrec.core.schema import InputSchema
from mtlrec.models.backbones import BACKBONES, Backbone
from mtlrec.models.heads import HEADS, Head
from mtlrec.models.inputs import INPUTS, FeatureInputs
from mtlrec.models.losses import LOSSES, masked_task_loss
from mtlrec.models.multitask import MultiTaskModel

__all__ = [
    "BACKBONES",
    "HEADS",
    "INPUTS",
    "LOSSES",
    "Backbone",
    "FeatureInputs",
    "Head",
    "InputSchema",
    "MultiTaskModel",
    "masked_task_loss",
]

from mtlrec.models import cross_encoder  # noqa: E402,F401  (registers "cross_encoder")
