"""Reports of compressed variants: size, latency and every task metric, before and after.

:func:`measure_model` measures one model (size, latency on a fixed batch, sparsity, and the
metrics an ``evaluate`` callback returns: in ``mtlrec export`` every row of
:func:`mtlrec.pipeline.evaluate.evaluate_run` on the test split: each task, its cold-item
slice and the full-ranking slices). :func:`quantization_report` and :func:`pruning_report`
build a variant and compare it with the float model; :func:`report_markdown` renders a whole
export report (JSON shape below) as Markdown tables.

Report JSON::

    {"benchmark": "export", "command", "run", "dataset", "split": "test", "settings": {...},
     "machine": {"cpu_count", "load_average_1m", "torch", "onnxruntime"},
     "baseline": MEASURE, "onnx": {"parity", "latency_ms", "torch_latency_ms", "bytes"} | null,
     "variants": {name: {"method", **MEASURE, "max_abs_output_diff": {task: float},
                         "changes": {row: {metric: {before, after, delta}}}}},
     "notes": [...]}

    MEASURE = {"size": {"bytes", "gzip_bytes", "buffer_bytes"},
               "latency_ms": {"median_ms", "p95_ms", "mean_ms", "batch_size", ...},
               "baseline_latency_ms": (variants) the float model timed in the same turns,
               "sparsity": {"linear", "rows", "parameters"},
               "metrics": {row: {metric: value}}}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from mtlrec.export.measure import latencies, latency, model_size
from mtlrec.export.prune import PruneSpec, apply_pruning, sparsity
from mtlrec.export.quantize import quantize_int8
from mtlrec.models.multitask import MultiTaskModel

Metrics = dict[str, dict[str, float]]
Evaluate = Callable[[MultiTaskModel], Metrics]
"""``model -> {row: {metric: value}}``: the metrics compared before and after."""


@dataclass(frozen=True)
class BenchSettings:
    """How latency is measured: ``repeats`` timed forward passes on one batch of
    ``batch_size`` real examples after ``warmup`` passes, on ``threads`` intra-op threads."""

    batch_size: int = 512
    warmup: int = 10
    repeats: int = 50
    threads: int = 1

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def measure_model(
    model: MultiTaskModel,
    evaluate: Evaluate,
    batch: Mapping[str, Tensor],
    settings: BenchSettings,
) -> dict[str, Any]:
    """Size, latency, sparsity and metrics of ``model`` (see the module's ``MEASURE``)."""
    timing = latency(
        model, batch, warmup=settings.warmup, repeats=settings.repeats, threads=settings.threads
    )
    return {**_static(model, evaluate), "latency_ms": timing.to_json()}


def _static(model: MultiTaskModel, evaluate: Evaluate) -> dict[str, Any]:
    return {
        "size": model_size(model).to_json(),
        "sparsity": sparsity(model),
        "metrics": evaluate(model),
    }


def _float(value: Any) -> float:
    """A metric value as a float; ``None`` (nan written to JSON as null) is nan."""
    return float("nan") if value is None else float(value)


def compare_metrics(before: Metrics, after: Metrics) -> dict[str, dict[str, dict[str, float]]]:
    """``{row: {metric: {"before", "after", "delta"}}}`` over the rows and metrics of both
    (counts such as ``n`` and ``n_users`` left out; a missing value, ``None``, is nan)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for row, values in before.items():
        for metric, value in values.items():
            if metric in ("n", "n_users") or metric not in after.get(row, {}):
                continue
            old, new = _float(value), _float(after[row][metric])
            out.setdefault(row, {})[metric] = {"before": old, "after": new, "delta": new - old}
    return out


@torch.inference_mode()
def output_differences(
    base: MultiTaskModel, model: MultiTaskModel, batch: Mapping[str, Tensor]
) -> dict[str, float]:
    """Largest absolute difference per task between the two models' raw outputs (logits,
    predictions) on ``batch``."""
    expected, got = base.eval()(batch), model.eval()(batch)
    return {t: float((got[t].float() - expected[t].float()).abs().max()) for t in expected}


def _variant(
    method: str,
    base: MultiTaskModel,
    model: MultiTaskModel,
    baseline: Mapping[str, Any],
    evaluate: Evaluate,
    batch: Mapping[str, Tensor],
    settings: BenchSettings,
) -> dict[str, Any]:
    """A variant's report; its latency is timed in turns with the float model's
    (``baseline_latency_ms``), so the speed-up compares like with like."""
    measured = _static(model, evaluate)
    timed_base, timed = latencies(
        [base, model],
        batch,
        warmup=settings.warmup,
        repeats=settings.repeats,
        threads=settings.threads,
    )
    return {
        "method": method,
        **measured,
        "max_abs_output_diff": output_differences(base, model, batch),
        "latency_ms": timed.to_json(),
        "baseline_latency_ms": timed_base.to_json(),
        "changes": compare_metrics(baseline["metrics"], measured["metrics"]),
    }


def quantization_report(
    model: MultiTaskModel,
    baseline: Mapping[str, Any],
    evaluate: Evaluate,
    batch: Mapping[str, Tensor],
    settings: BenchSettings,
) -> tuple[MultiTaskModel, dict[str, Any]]:
    """The dynamic int8 variant of ``model`` and its report against ``baseline`` (the float
    model's :func:`measure_model`)."""
    quantized = quantize_int8(model)
    method = "dynamic int8 (torch.ao quantize_dynamic, nn.Linear weights per-tensor qint8)"
    return quantized, _variant(method, model, quantized, baseline, evaluate, batch, settings)


def pruning_report(
    model: MultiTaskModel,
    spec: PruneSpec,
    baseline: Mapping[str, Any],
    evaluate: Evaluate,
    batch: Mapping[str, Tensor],
    settings: BenchSettings,
) -> tuple[MultiTaskModel, dict[str, Any]]:
    """The pruned variant of ``model`` and its report against ``baseline``."""
    pruned = apply_pruning(model, spec)
    method = (
        f"global L1 unstructured pruning of {spec.amount:.0%} of all Linear weights"
        if spec.method == "magnitude"
        else f"L2 structured pruning of {spec.amount:.0%} of the output rows of each hidden "
        "Linear layer (heads' output layers kept)"
    )
    return pruned, _variant(method, model, pruned, baseline, evaluate, batch, settings)


# ----------------------------------------------------------------------------- notes
def variant_notes(report: Mapping[str, Any]) -> list[str]:
    """One sentence per variant: size, latency and the largest metric loss, in numbers."""
    base = report["baseline"]
    notes = []
    for name, variant in report.get("variants", {}).items():
        size = variant["size"]["bytes"] / base["size"]["bytes"]
        gz = variant["size"]["gzip_bytes"] / base["size"]["gzip_bytes"]
        rest = _ratio(
            variant["size"]["bytes"] - variant["size"]["buffer_bytes"],
            base["size"]["bytes"] - base["size"]["buffer_bytes"],
        )
        paired = variant.get("baseline_latency_ms", base["latency_ms"])
        speed = paired["median_ms"] / variant["latency_ms"]["median_ms"]
        worst = _worst_change(variant["changes"])
        line = (
            f"{name}: size x{size:.2f} (without the entity tables x{rest:.2f}; gzip x{gz:.2f}),"
            f" median latency speed-up x{speed:.2f}"
        )
        if worst is not None:
            row, metric, change = worst
            line += f"; largest loss {row} {metric} {change['before']:.4g} -> {change['after']:.4g}"
        notes.append(line)
    return notes


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


_LOWER_IS_BETTER = ("rmse", "mae", "logloss", "loss", "arp", "mse")


def _worst_change(
    changes: Mapping[str, Mapping[str, Mapping[str, float]]],
) -> tuple[str, str, Mapping[str, float]] | None:
    """The (row, metric, change) with the largest relative loss (direction-aware)."""
    worst: tuple[float, str, str, Mapping[str, float]] | None = None
    for row, metrics in changes.items():
        if row.startswith("ranking") and "(all)" not in row:
            continue
        for metric, change in metrics.items():
            if metric.startswith(("coverage", "novelty", "diversity", "arp")):
                continue  # beyond-accuracy metrics have no "better" direction
            sign = -1.0 if metric.startswith(_LOWER_IS_BETTER) else 1.0
            scale = max(abs(change["before"]), 1e-12)
            loss = -sign * change["delta"] / scale
            if not math.isfinite(loss):
                continue
            if worst is None or loss > worst[0]:
                worst = (loss, row, metric, change)
    return None if worst is None else worst[1:]


# ----------------------------------------------------------------------------- markdown
def _num(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:.4g}"
    return str(value)


def _signed(value: float) -> str:
    return f"{value:+.4g}" if math.isfinite(value) else "n/a"


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f}"


def report_markdown(report: Mapping[str, Any]) -> str:
    """The export report as Markdown: settings, ONNX parity, size / latency per model, and
    every test metric of the float model beside each variant's."""
    settings = report.get("settings", {})
    lines = [
        f"# Export report: {report.get('run', '?')}",
        "",
        f"Dataset `{report.get('dataset', '?')}`, split `{report.get('split', 'test')}`. "
        f"Latency: {settings.get('repeats')} timed forward passes on one batch of "
        f"{settings.get('batch_size')} real test examples after {settings.get('warmup')} "
        f"warm-up passes, {settings.get('threads')} thread(s).",
        "",
    ]
    machine = report.get("machine")
    if machine:
        lines += [
            f"Machine: {machine.get('cpu_count')} CPUs, 1-minute load average "
            f"{machine.get('load_average_1m')} at the start (above the threads used, other jobs"
            f" shared the CPUs); torch {machine.get('torch')}, onnxruntime "
            f"{machine.get('onnxruntime')}.",
            "",
        ]
    if report.get("command"):
        lines += [f"Command: `{report['command']}`", ""]
    onnx = report.get("onnx")
    if onnx:
        parity = onnx["parity"]
        lines += [
            "## ONNX",
            "",
            f"onnxruntime vs torch on {parity['n_examples']:,} test examples "
            f"({parity['n_batches']} batches): "
            + ("**passed**" if parity["passed"] else "**FAILED**")
            + f" (tolerance {parity['tolerance']:g}).",
            "",
            "| task | max abs difference |",
            "| --- | ---: |",
            *(f"| {t} | {d:.3g} |" for t, d in parity["max_abs_diff"].items()),
            "",
        ]
        if onnx.get("latency_ms"):
            lat = onnx["latency_ms"]
            line = (
                f"onnxruntime latency: median {lat['median_ms']:.3f} ms, "
                f"p95 {lat['p95_ms']:.3f} ms per batch"
            )
            if onnx.get("torch_latency_ms"):
                ref = onnx["torch_latency_ms"]
                line += (
                    f" (torch in the same turns: median {ref['median_ms']:.3f} ms, "
                    f"p95 {ref['p95_ms']:.3f} ms)"
                )
            lines += [line + f"; ONNX file {_kib(onnx['bytes'])} KiB.", ""]
    if "baseline" not in report:
        return "\n".join(lines) + "\n"
    models = {"float32 (baseline)": report["baseline"], **report.get("variants", {})}
    lines += [
        "## Size and latency",
        "",
        "Each variant is timed in turns with the float model (call by call), so its speed-up"
        " compares like with like on a machine whose speed drifts.",
        "",
        "| model | size KiB | gzip KiB | of which tables KiB | median ms | p95 ms "
        "| float32 median ms, same turns | speed-up | zero Linear weights | zero Linear rows |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, m in models.items():
        size, lat, sp = m["size"], m["latency_ms"], m["sparsity"]
        paired = m.get("baseline_latency_ms")
        same = "" if paired is None else f"{paired['median_ms']:.3f}"
        speed = "" if paired is None else f"x{paired['median_ms'] / lat['median_ms']:.2f}"
        lines.append(
            f"| {name} | {_kib(size['bytes'])} | {_kib(size['gzip_bytes'])} "
            f"| {_kib(size['buffer_bytes'])} | {lat['median_ms']:.3f} | {lat['p95_ms']:.3f} "
            f"| {same} | {speed} | {sp['linear']:.1%} | {sp['rows']:.1%} |"
        )
    lines.append("")
    for name, variant in report.get("variants", {}).items():
        diffs = variant.get("max_abs_output_diff", {})
        shown = ", ".join(f"{t} {d:.3g}" for t, d in diffs.items())
        lines.append(
            f"- **{name}**: {variant['method']}"
            + (f"; largest raw-output change on the latency batch: {shown}" if shown else "")
        )
    lines += ["", "## Test metrics before and after", ""]
    variants = list(report.get("variants", {}))
    header = "| row | metric | float32 | " + " | ".join(f"{v} | Δ" for v in variants) + " |"
    lines += [header, "| --- | --- | ---: |" + " ---: | ---: |" * len(variants)]
    for row, metrics in report["baseline"]["metrics"].items():
        for metric, value in metrics.items():
            if metric in ("n", "n_users"):
                continue
            cells = [row, metric, _num(value)]
            for v in variants:
                change = report["variants"][v]["changes"].get(row, {}).get(metric)
                cells += (
                    ["n/a", "n/a"]
                    if change is None
                    else [_num(change["after"]), _signed(change["delta"])]
                )
            lines.append("| " + " | ".join(cells) + " |")
    notes = report.get("notes", [])
    if notes:
        lines += ["", "## Notes", "", *(f"- {n}" for n in notes)]
    return "\n".join(lines) + "\n"
