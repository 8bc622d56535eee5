"""Seeding in one place, and the random state a checkpoint must carry for exact resume."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def deterministic_kernels(enabled: bool = True) -> Iterator[None]:
    """Within the block, PyTorch picks deterministic kernels (``enabled``; the setting
    before is restored after). Without them a seeded run on several CPU threads does not
    repeat: some backward kernels add in parallel in varying order, a last-digit difference
    at step 2 of the sequential model that training amplifies (two ML-100K demo runs: test
    NDCG@10 0.0979 and 0.1052). With them it repeats exactly on the same machine and thread
    count, at about 3% of its epoch time there. Ops with no deterministic kernel (some CUDA
    ones) warn instead of failing."""
    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if enabled:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)


def rng_state() -> dict[str, Any]:
    """Every global random state (Python, NumPy, PyTorch CPU and CUDA)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
