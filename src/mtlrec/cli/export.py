"""``mtlrec export``: a trained run -> a versioned artifact (+ ONNX, int8, pruned variants)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mtlrec.cli.data import (
    KNOWN_ERRORS,
    CacheDirOption,
    MirrorOption,
    OfflineOption,
    console,
    fail,
    fetch_settings,
)


def export_command(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="A folder written by 'mtlrec train'.")],
    out: Annotated[Path, typer.Option("--out", help="Folder the artifact is written into.")],
    onnx: Annotated[
        bool, typer.Option("--onnx", help="Also export ONNX and check onnxruntime parity.")
    ] = False,
    quantize: Annotated[
        str | None, typer.Option("--quantize", help="Add a quantized variant: int8.")
    ] = None,
    prune: Annotated[
        list[str] | None,
        typer.Option(
            "--prune", help="Add a pruned variant: magnitude:AMOUNT or structured:AMOUNT."
        ),
    ] = None,
    report_dir: Annotated[
        Path | None, typer.Option("--report-dir", help="Also write the report here.")
    ] = None,
    report_name: Annotated[
        str | None, typer.Option(help="Report file stem (default: export_<config name>).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Artifact name (default: config name).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Latency batch size.")] = 512,
    repeats: Annotated[int, typer.Option(min=1, help="Timed passes per model.")] = 50,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed passes first.")] = 10,
    threads: Annotated[int, typer.Option(min=1, help="Intra-op threads when timing.")] = 1,
    mirror: MirrorOption = None,
    cache_dir: CacheDirOption = None,
    offline: OfflineOption = False,
) -> None:
    """Bundle a trained run (and its fused cascade) into a checksummed, versioned artifact;
    optionally with an ONNX model, int8 / pruned variants and their size-latency-metric report."""
    from mtlrec.export.checksums import ArtifactError
    from mtlrec.export.compression_report import BenchSettings
    from mtlrec.export.prune import PruneSpec
    from mtlrec.export.run import ExportOptions, export_run

    try:
        options = ExportOptions(
            onnx=onnx,
            quantize=quantize,
            prune=tuple(PruneSpec.parse(p) for p in prune or []),
            bench=BenchSettings(batch_size, warmup, repeats, threads),
            name=name,
        )
        result = export_run(
            run,
            out,
            options,
            fetch_settings(mirror or [], cache_dir, offline),
            console,
            report_dir,
            report_name,
            command=" ".join(
                [
                    f"mtlrec export {run} --out {out}",
                    *(["--onnx"] if onnx else []),
                    *([f"--quantize {quantize}"] if quantize else []),
                    *(f"--prune {p}" for p in prune or []),
                    f"--batch-size {batch_size} --repeats {repeats} --warmup {warmup}",
                    f"--threads {threads}",
                ]
            ),
        )
    except (*KNOWN_ERRORS, ArtifactError) as error:
        raise fail(error) from None
    console.print(f"[green]artifact written to[/] {result.path}")
    for note in result.report.get("notes", []):
        console.print(f"  {note}")
    onnx_report = result.report.get("onnx")
    if onnx_report and not onnx_report["parity"]["passed"]:
        raise fail(ValueError(f"ONNX parity failed: {onnx_report['parity']['max_abs_diff']}"))
