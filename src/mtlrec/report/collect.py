"""Run folders and benchmark results read into typed records for the report.

A run folder (``mtlrec train``) holds ``config.yaml``, ``results.json`` and ``train.jsonl``
(and ``fusion/results.json`` after ``mtlrec fuse``); older runs may lack some of them, and the
report then says what is missing. A folder with none of the three is not a run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mtlrec.report.trainlog import TrainLog, read_train_log

RUN_FILES: tuple[str, ...] = ("config.yaml", "results.json", "train.jsonl")
FUSION_RESULTS = Path("fusion") / "results.json"


class NotARunError(FileNotFoundError):
    """A path given as a run folder that is not one."""


class ReportInputError(ValueError):
    """A run or benchmark file that exists but cannot be read."""


@dataclass(frozen=True)
class RunRecord:
    """What one run folder holds; missing files are ``None``."""

    path: Path
    label: str
    config_text: str | None
    config: dict[str, Any] | None
    results: dict[str, Any] | None
    log: TrainLog | None
    fusion: dict[str, Any] | None

    @property
    def name(self) -> str:
        """The experiment name (results.json, then config.yaml, then the folder's name)."""
        for source in (self.results, self.config):
            if source and isinstance(source.get("name"), str):
                return str(source["name"])
        return self.path.name

    @property
    def dataset(self) -> str | None:
        """The dataset's name, when results.json or config.yaml tells it."""
        if self.results and self.results.get("dataset"):
            return str(self.results["dataset"])
        named = dig(self.config, "data", "dataset", "name")
        return str(named) if named else None

    @property
    def tasks(self) -> dict[str, str | None]:
        """``{task: kind}``; the kind is ``None`` when only ``train.jsonl`` names the task."""
        if self.results and isinstance(self.results.get("tasks"), dict):
            return {str(t): str(k) for t, k in self.results["tasks"].items()}
        configured = dig(self.config, "tasks")
        if isinstance(configured, dict) and configured:
            return dict.fromkeys(map(str, configured))
        return dict.fromkeys(self.log.tasks()) if self.log else {}

    @property
    def backbone(self) -> str | None:
        """The shared part: a backbone's name, or the sequential model's history encoder."""
        if dig(self.config, "model", "name") == "sequential":
            encoder = dig(self.config, "model", "params", "encoder") or "causal"
            return f"sequential ({encoder} encoder)"
        value = dig(self.config, "model", "backbone", "name")
        return str(value) if value else None

    @property
    def weighting(self) -> str | None:
        value = dig(self.config, "weighting", "name")
        return str(value) if value else None

    def split_results(self, split: str) -> dict[str, dict[str, Any]] | None:
        """``results.json``'s per-row metrics of ``split`` (``valid``/``test``), if any."""
        rows = dig(self.results, "results", split)
        return rows if isinstance(rows, dict) else None

    @property
    def history(self) -> list[dict[str, Any]]:
        """Validation metrics per epoch: ``train.jsonl``'s epoch events, else results.json's."""
        if self.log and self.log.epochs:
            return self.log.epochs
        history = dig(self.results, "history")
        return list(history) if isinstance(history, list) else []

    @property
    def gate_utilisation(self) -> dict[str, Any] | None:
        value = dig(self.results, "gate_utilisation")
        return value if isinstance(value, dict) else None

    @property
    def data_stats(self) -> dict[str, Any] | None:
        value = dig(self.results, "data_stats")
        return value if isinstance(value, dict) else None

    def files(self) -> dict[str, bool]:
        """Which of the run's files are present."""
        return {
            "config.yaml": self.config is not None,
            "results.json": self.results is not None,
            "train.jsonl": self.log is not None,
            "fusion/results.json": self.fusion is not None,
        }


def dig(source: Mapping[str, Any] | None, *keys: str) -> Any:
    """``source[k1][k2]...``, or ``None`` where a key or a level is missing."""
    value: Any = source
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; a clear error naming the file when it is not one."""
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ReportInputError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(loaded, dict):
        raise ReportInputError(f"{path}: expected a JSON object")
    return loaded


def load_run(path: Path, label: str | None = None) -> RunRecord:
    """Read one run folder; raises :class:`NotARunError` when it holds none of the run files."""
    if not path.is_dir():
        raise NotARunError(f"{path}: no such run folder")
    if not any((path / name).is_file() for name in RUN_FILES):
        raise NotARunError(
            f"{path}: not a run folder (no {', '.join(RUN_FILES)}); "
            "give folders written by 'mtlrec train'"
        )
    config_text = config = None
    if (path / "config.yaml").is_file():
        config_text = (path / "config.yaml").read_text(encoding="utf-8")
        try:
            parsed = yaml.safe_load(config_text)
        except yaml.YAMLError as error:
            raise ReportInputError(f"{path / 'config.yaml'}: not valid YAML ({error})") from None
        config = parsed if isinstance(parsed, dict) else None
    results = read_json(path / "results.json") if (path / "results.json").is_file() else None
    log = read_train_log(path / "train.jsonl") if (path / "train.jsonl").is_file() else None
    fusion = read_json(path / FUSION_RESULTS) if (path / FUSION_RESULTS).is_file() else None
    return RunRecord(path, label or path.name, config_text, config, results, log, fusion)


def run_labels(paths: Sequence[Path]) -> list[str]:
    """Short unique names: each folder's name, with parent folders added where names clash."""
    parts = [p.resolve().parts for p in paths]
    depth = [1] * len(paths)
    while True:
        labels = ["/".join(p[-d:]) for p, d in zip(parts, depth, strict=True)]
        clashes = {lab for lab in labels if labels.count(lab) > 1}
        grow = [i for i, lab in enumerate(labels) if lab in clashes and depth[i] < len(parts[i])]
        if not grow:
            return labels
        for i in grow:
            depth[i] += 1


def load_runs(paths: Sequence[Path]) -> list[RunRecord]:
    """Read every run folder (in the order given), each with a unique short label."""
    return [load_run(p, lab) for p, lab in zip(paths, run_labels(paths), strict=True)]


@dataclass(frozen=True)
class BenchResults:
    """The benchmark files the report renders from ``--bench DIR``; absent ones are ``None``
    or empty."""

    path: Path
    mtl_vs_stl: dict[str, Any] | None
    fusion: dict[str, dict[str, Any]]
    peers: dict[str, dict[str, Any]]
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``sentiment_*.json``: a task of the multi-task model against a baseline of its own
    (drawn like ``peers_*.json``: tables and a summary)."""


def load_bench(path: Path) -> BenchResults:
    """``mtl_vs_stl*.json`` (their datasets merged: e.g. the pointwise and the sequential
    presets' files), ``fusion_*.json``, ``peers_*.json`` and ``sentiment_*.json`` of a
    results folder."""
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such benchmark results folder")
    mtl: dict[str, Any] | None = None
    for file in sorted(path.glob("mtl_vs_stl*.json")):
        payload = read_json(file)
        if mtl is None:
            mtl = payload
        else:
            mtl = {**mtl, "datasets": {**mtl.get("datasets", {}), **payload.get("datasets", {})}}
    return BenchResults(
        path,
        mtl,
        {f.stem: read_json(f) for f in sorted(path.glob("fusion_*.json"))},
        {f.stem: read_json(f) for f in sorted(path.glob("peers_*.json"))},
        {f.stem: read_json(f) for f in sorted(path.glob("sentiment_*.json"))},
    )
