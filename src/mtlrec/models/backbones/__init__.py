"""Shared backbones; importing this package registers every one in ``BACKBONES``."""

from mtlrec.models.backbones import esmm, mmoe, ple, shared_bottom
from mtlrec.models.backbones.base import BACKBONES, Backbone

__all__ = ["BACKBONES", "Backbone", "esmm", "mmoe", "ple", "shared_bottom"]
