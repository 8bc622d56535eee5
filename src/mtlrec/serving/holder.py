"""``ModelHolder``: the one reference to the served model, swapped atomically on reload.

A request reads :attr:`ModelHolder.current` once and keeps that :class:`ServingModel` to
the end, so a reload never changes the model under a request in flight: the new model is
loaded, verified (every checksum) and warmed up beside the old one, then one attribute
assignment (atomic under the GIL) makes it current; the old model is freed when the last
request holding it is done. Reloads are serialised by a lock; a failed reload leaves the
current model in place.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mtlrec.serving.engine import ServingModel

M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter for the most malloc arenas."""


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c"))
    except (OSError, TypeError):
        return None


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (``mallopt(M_ARENA_MAX)``, as ``MALLOC_ARENA_MAX`` does):
    each request thread of the service otherwise gets an arena of its own, and the resident
    size creeps up as more threads have served. Call it before the threads start; returns
    whether it could (False off glibc)."""
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))


def return_freed_memory() -> bool:
    """Ask the C allocator to hand memory freed by a replaced model back to the system
    (glibc's ``malloc_trim``); without it the resident size keeps the old model's peak after
    every reload. Returns whether it could ask (False off glibc)."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True


class NotReadyError(RuntimeError):
    """No model is loaded (yet), or the service is shutting down: a 503."""


@dataclass(frozen=True)
class Reloaded:
    """What a reload did: the versions before and after and how long loading took."""

    previous: ServingModel
    current: ServingModel
    load_s: float


class ModelHolder:
    """Holds the current :class:`ServingModel`; ``loader(path)`` builds one."""

    def __init__(self, loader: Callable[[Path], ServingModel]) -> None:
        self.loader = loader
        self._model: ServingModel | None = None
        self._lock = threading.Lock()
        self.shutting_down = False

    @property
    def current(self) -> ServingModel:
        """The model to answer one request with (read it once per request)."""
        model = self._model
        if model is None:
            raise NotReadyError("no model is loaded")
        return model

    @property
    def ready(self) -> bool:
        return self._model is not None and not self.shutting_down

    def load(self, path: Path) -> Reloaded | None:
        """Load ``path``, warm it up and make it current; returns what changed (None on
        the first load). Raises whatever loading raises, leaving the current model."""
        with self._lock:
            start = time.perf_counter()
            model = self.loader(path)
            model.warm_up()
            previous, self._model = self._model, model
            elapsed = time.perf_counter() - start
        return None if previous is None else Reloaded(previous, model, elapsed)
