"""Core types shared by every part of mtlrec."""

from mtlrec.core.registry import Registry, UnknownNameError

__all__ = ["Registry", "UnknownNameError"]
