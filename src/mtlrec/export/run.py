"""``mtlrec export``: a trained run -> the artifact, and optionally ONNX, int8, pruned variants.

:func:`export_run` loads the run (its data is needed for the real test batches and the
metrics), then writes one bundle (:func:`mtlrec.export.artifact.write_artifact`) holding, on
request:

- ``onnx/model.onnx`` and ``onnx/parity.json`` (onnxruntime vs torch on every test example);
- ``variants/int8/weights.safetensors`` (dynamic int8) and
  ``variants/pruned-<method>-<amount>/weights.safetensors``;
- ``reports/export.json`` and ``reports/export.md``: size, latency and every test metric of
  the float model and of each variant (:mod:`mtlrec.export.compression_report`), with the
  ONNX parity.

The report is also copied to ``report_dir`` (as ``<report_name>.json`` / ``.md``) when given.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from torch import Tensor

from mtlrec.data.fetch import FetchSettings
from mtlrec.evaluation import results_to_json
from mtlrec.export.compression_report import (
    BenchSettings,
    Metrics,
    compare_metrics,
    measure_model,
    pruning_report,
    quantization_report,
    report_markdown,
    variant_notes,
)
from mtlrec.export.onnx import PARITY_TOLERANCE, export_onnx, onnx_latency, onnx_parity
from mtlrec.export.prune import PruneSpec, save_pruned
from mtlrec.export.quantize import save_int8
from mtlrec.export.write import write_artifact
from mtlrec.models.multitask import MultiTaskModel
from mtlrec.pipeline.evaluate import evaluate_run, evaluation_sets
from mtlrec.pipeline.trained_run import TrainedRun, load_trained_run

QUANTIZE_MODES: tuple[str, ...] = ("int8",)


@dataclass(frozen=True)
class ExportOptions:
    """What ``mtlrec export`` writes besides the artifact itself."""

    onnx: bool = False
    quantize: str | None = None
    prune: tuple[PruneSpec, ...] = ()
    bench: BenchSettings = field(default_factory=BenchSettings)
    name: str | None = None
    tolerance: float = PARITY_TOLERANCE

    def __post_init__(self) -> None:
        if self.quantize is not None and self.quantize not in QUANTIZE_MODES:
            raise ValueError(
                f"unknown quantization {self.quantize!r}; known: {', '.join(QUANTIZE_MODES)}"
            )
        names = [spec.name for spec in self.prune]
        if len(set(names)) != len(names):
            raise ValueError(f"the same pruning is asked twice: {names}")

    @property
    def compares(self) -> bool:
        """True when variants are built (so the float model is measured too)."""
        return self.quantize is not None or bool(self.prune)


@dataclass
class ExportResult:
    """The bundle written and the export report (empty without ONNX or variants)."""

    path: Path
    report: dict[str, Any]


def machine_info() -> dict[str, Any]:
    """Where the numbers were measured: CPU count, 1-minute load average at the start (other
    jobs share the machine when it exceeds the threads used), library versions."""
    import onnxruntime
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def _batches(features: Mapping[str, Tensor], size: int) -> Iterator[dict[str, Tensor]]:
    n = int(next(iter(features.values())).shape[0])
    for start in range(0, n, size):
        yield {k: v[start : start + size] for k, v in features.items()}


class _Extras:
    """The extras callback of :func:`write_artifact`: ONNX, variants and the report."""

    def __init__(
        self, run: TrainedRun, options: ExportOptions, console: Console, command: str | None
    ) -> None:
        self.run, self.options, self.console, self.command = run, options, console, command
        self.report: dict[str, Any] = {}

    def _evaluate(self, sets: Mapping[str, Any]) -> Any:
        def evaluate(model: MultiTaskModel) -> Metrics:
            results = evaluate_run(self.run.config, self.run.data, model, ("test",), sets=sets)
            return dict(results["test"])

        return evaluate

    def __call__(self, folder: Path, model: MultiTaskModel) -> dict[str, Any]:
        options, run = self.options, self.run
        if not options.onnx and not options.compares:
            return {}
        sets = evaluation_sets(run.config, run.data, ("test",))
        test = sets["test"].features
        if not len(sets["test"]):
            raise ValueError(f"{run.run_dir}: the test split is empty; nothing to check on")
        batch = next(_batches(test, options.bench.batch_size))
        bench = options.bench
        report: dict[str, Any] = {
            "benchmark": "export",
            "command": self.command,
            "run": str(run.run_dir),
            "config": run.config.name,
            "dataset": run.data.dataset.manifest.get("dataset", {}).get("name"),
            "split": "test",
            "settings": bench.to_json(),
            "machine": machine_info(),
            "onnx": None,
            "variants": {},
        }
        recorded: dict[str, Any] = {}
        if options.onnx:
            recorded["onnx"], report["onnx"] = self._onnx(folder, model, test, batch)
        if options.compares:
            evaluate = self._evaluate(sets)
            self.console.print("measuring the float model ...")
            report["baseline"] = measure_model(model, evaluate, batch, bench)
            recorded["variants"] = self._variants(folder, model, report, evaluate, batch)
            report["notes"] = [*self._reproduction_note(report["baseline"]), *variant_notes(report)]
        reports = folder / "reports"
        reports.mkdir()
        results_to_json(report, reports / "export.json")
        (reports / "export.md").write_text(report_markdown(report), "utf-8")
        self.report = report
        return recorded

    def _reproduction_note(self, baseline: Mapping[str, Any]) -> list[str]:
        """Whether the float model measured here scores what ``mtlrec train`` recorded."""
        path = self.run.run_dir / "results.json"
        if not path.is_file():
            return []
        recorded = json.loads(path.read_text()).get("results", {}).get("test", {})
        changes = compare_metrics(recorded, baseline["metrics"])
        diffs = [
            abs(c["delta"])
            for metrics in changes.values()
            for c in metrics.values()
            if math.isfinite(c["delta"])
        ]
        if not diffs:
            return []
        return [
            f"float32 baseline vs the run's results.json test metrics: {len(diffs)} values, "
            f"largest absolute difference {max(diffs):.3g}"
        ]

    def _onnx(
        self,
        folder: Path,
        model: MultiTaskModel,
        test: Mapping[str, Tensor],
        batch: Mapping[str, Tensor],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        bench = self.options.bench
        (folder / "onnx").mkdir()
        path = folder / "onnx" / "model.onnx"
        self.console.print("exporting to ONNX ...")
        exported = export_onnx(model, batch, path)
        parity = onnx_parity(
            model,
            path,
            _batches(test, bench.batch_size),
            tolerance=self.options.tolerance,
            threads=bench.threads,
        )
        timing, torch_timing = onnx_latency(
            model, path, batch, warmup=bench.warmup, repeats=bench.repeats, threads=bench.threads
        )
        (folder / "onnx" / "parity.json").write_text(
            json.dumps(parity.to_json(), indent=2) + "\n", "utf-8"
        )
        self.console.print(
            f"ONNX parity {'passed' if parity.passed else 'FAILED'}: "
            + ", ".join(f"{t} {d:.2e}" for t, d in parity.max_abs_diff.items())
        )
        entry = {
            "file": "onnx/model.onnx",
            "inputs": list(exported.inputs),
            "outputs": list(exported.outputs),
            "opset": exported.opset,
            "parity": parity.to_json(),
        }
        summary = {
            "parity": parity.to_json(),
            "latency_ms": timing.to_json(),
            "torch_latency_ms": torch_timing.to_json(),
            "bytes": path.stat().st_size,
        }
        return entry, summary

    def _variants(
        self,
        folder: Path,
        model: MultiTaskModel,
        report: dict[str, Any],
        evaluate: Any,
        batch: Mapping[str, Tensor],
    ) -> dict[str, Any]:
        options, bench = self.options, self.options.bench
        recorded: dict[str, Any] = {}
        if options.quantize == "int8":
            self.console.print("quantizing to int8 ...")
            quantized, entry = quantization_report(
                model, report["baseline"], evaluate, batch, bench
            )
            target = folder / "variants" / "int8"
            target.mkdir(parents=True)
            save_int8(quantized, target / "weights.safetensors")
            report["variants"]["int8"] = entry
            recorded["int8"] = {
                "kind": "int8",
                "file": "variants/int8/weights.safetensors",
                "method": entry["method"],
            }
        for spec in options.prune:
            self.console.print(f"pruning ({spec.method}, {spec.amount:g}) ...")
            pruned, entry = pruning_report(model, spec, report["baseline"], evaluate, batch, bench)
            target = folder / "variants" / spec.name
            target.mkdir(parents=True)
            save_pruned(pruned, target / "weights.safetensors")
            report["variants"][spec.name] = entry
            recorded[spec.name] = {
                "kind": "pruned",
                "file": f"variants/{spec.name}/weights.safetensors",
                "method": entry["method"],
                "sparsity": entry["sparsity"],
            }
        return recorded


def export_trained(
    run: TrainedRun,
    out_dir: Path,
    options: ExportOptions,
    console: Console,
    report_dir: Path | None = None,
    report_name: str | None = None,
    command: str | None = None,
) -> ExportResult:
    """:func:`export_run` for a run already in memory."""
    if not isinstance(run.model, MultiTaskModel) and (options.onnx or options.compares):
        raise ValueError(
            f"{run.run_dir}: --onnx, --quantize and --prune export the pointwise multi-task "
            "model; a sequential run exports as its torch weights (drop those options)"
        )
    extras = _Extras(run, options, console, command)
    path = write_artifact(run, out_dir, name=options.name, extras=extras)
    report = extras.report
    if report and report_dir is not None:
        stem = report_name or f"export_{run.config.name}"
        results_to_json({**report, "artifact": str(path)}, report_dir / f"{stem}.json")
        (report_dir / f"{stem}.md").write_text(report_markdown(report), "utf-8")
    return ExportResult(path, report)


def export_run(
    run_dir: Path,
    out_dir: Path,
    options: ExportOptions,
    settings: FetchSettings,
    console: Console,
    report_dir: Path | None = None,
    report_name: str | None = None,
    command: str | None = None,
) -> ExportResult:
    """Bundle the run in ``run_dir`` into ``out_dir`` with what ``options`` asks for; copy
    the report to ``report_dir/<report_name>.{json,md}`` (default name ``export_<config>``).
    ``command`` (the command line, if any) is recorded in the report."""
    run = load_trained_run(run_dir, settings, console)
    return export_trained(run, out_dir, options, console, report_dir, report_name, command)
