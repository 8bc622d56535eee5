"""``train.jsonl`` (written by :class:`mtlrec.training.callbacks.JsonlLogger`) as a typed log.

The logger appends. ``mtlrec train`` removes the log on a fresh start and cuts it back to
the checkpoint on a resume, so a log holds every step once; a log of an earlier version, or
one a library user appended to, can hold several sessions: a fresh start (the step count
begins again) or a resume. Later records supersede earlier ones at the same or a later step
(and epoch), so the log read back is the one of the final model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainLog:
    """The step events (losses, task weights, lr) and epoch events (validation metrics)."""

    steps: list[dict[str, Any]]
    epochs: list[dict[str, Any]]
    replaced: int = 0
    """How many times later records replaced earlier ones (restarts or resumes)."""
    unreadable: int = 0
    """Lines that were not JSON objects (e.g. the last line of a run still writing)."""

    def tasks(self) -> list[str]:
        """Task names, from the ``loss/<task>`` keys of the step events, in first-seen order."""
        names: dict[str, None] = {}
        for record in self.steps:
            for key in record:
                if key.startswith("loss/"):
                    names.setdefault(key.removeprefix("loss/"), None)
        return list(names)

    def series(self, prefix: str) -> dict[str, tuple[list[int], list[float]]]:
        """``{name: (steps, values)}`` of the step keys ``<prefix><name>`` (e.g. ``weight/``)."""
        out: dict[str, tuple[list[int], list[float]]] = {}
        for record in self.steps:
            for key, value in record.items():
                if key.startswith(prefix) and isinstance(value, int | float):
                    steps, values = out.setdefault(key.removeprefix(prefix), ([], []))
                    steps.append(int(record["step"]))
                    values.append(float(value))
        return out


def read_train_log(path: Path) -> TrainLog:
    """Read ``path``; the latest session wins where sessions overlap (see the module doc)."""
    steps: list[dict[str, Any]] = []
    epochs: list[dict[str, Any]] = []
    replaced = unreadable = 0
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                unreadable += 1
                continue
            if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                unreadable += 1
                continue
            step = record["step"]
            if record.get("event") == "step":
                if steps and step <= steps[-1]["step"]:
                    replaced += 1
                    steps = [s for s in steps if s["step"] < step]
                    epochs = [e for e in epochs if e["step"] < step]
                steps.append(record)
            elif record.get("event") == "epoch":
                epoch = record.get("epoch", 0)
                if epochs and epoch <= epochs[-1].get("epoch", 0):
                    epochs = [e for e in epochs if e.get("epoch", 0) < epoch]
                epochs.append(record)
    return TrainLog(steps, epochs, replaced, unreadable)
