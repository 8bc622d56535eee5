"""Rich renderings of a prepared dataset's manifest and of a read report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mtlrec.data.read_report import ReadReport


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_manifest(console: Console, manifest: dict[str, Any]) -> None:
    """Print what a prepared dataset holds: files, counts, quarantine, split and tasks."""
    dataset = manifest["dataset"]
    console.print(
        f"[bold]{dataset['name']}[/] ({dataset['kind']}, layout: {dataset['layout']}, "
        f"mtlrec {manifest['mtlrec_version']})"
    )
    files = Table("file", "rows read", "kept", "quarantined", "notes", title="source files")
    for tally in manifest["read"]["files"]:
        notes = ", ".join(f"{k}: {v:,}" for k, v in tally["notes"].items())
        files.add_row(
            Path(tally["file"]).name,
            _n(tally["rows_read"]),
            _n(tally["rows_kept"]),
            _n(tally["rows_quarantined"]),
            notes,
        )
    console.print(files)
    counts = Table("what", "count", title="canonical tables")
    for key, value in manifest["counts"].items():
        if not isinstance(value, dict):
            counts.add_row(key, _n(value))
    for event, stats in manifest["counts"].get("events", {}).items():
        counts.add_row(
            f"{event} events",
            f"{stats['rows']:,} ({stats['users']:,} users, {stats['items']:,} items)",
        )
    for key, value in manifest["read"]["notes"].items():
        counts.add_row(key, _n(value))
    console.print(counts)
    split = manifest["split"]
    table = Table(
        "split",
        "rows",
        "users",
        "items",
        "cold users",
        "cold items",
        title=f"split: {split['strategy']}",
    )
    for name, sizes in split["sizes"].items():
        table.add_row(
            name,
            _n(sizes["rows"]),
            _n(sizes["users"]),
            _n(sizes["items"]),
            _n(sizes.get("cold_users", 0)),
            _n(sizes.get("cold_items", 0)),
        )
    console.print(table)
    _print_split_notes(console, split)
    tasks = Table(
        "task",
        "kind",
        "level",
        "classes",
        "known labels (train / valid / test)",
        title="task labels",
    )
    for task in manifest["tasks"]:
        known = task.get("known_per_split") or {}
        tasks.add_row(
            task["name"],
            task["kind"],
            task["level"],
            _n(len(task["classes"])) if task.get("classes") else "-",
            " / ".join(_n(known.get(s, 0)) for s in ("train", "valid", "test"))
            if known
            else _n(task.get("known", "-")),
        )
    console.print(tasks)


def _print_split_notes(console: Console, split: dict[str, Any]) -> None:
    """The tie rule, the users whose split boundary falls in a tie, and rows dropped."""
    if split["strategy"] == "leave_one_out":
        console.print(f"ties: {split.get('ties', 'interaction_id')} (seed {split['seed']})")
    ties = split.get("boundary_ties")
    if ties:
        console.print(
            f"users whose split boundary falls inside a tie: {ties['tied_users']:,} of "
            f"{ties['users']:,} ({ties['share']:.1%}; valid {ties['valid_tied_users']:,}, "
            f"test {ties['test_tied_users']:,})"
        )
    if split.get("rows_dropped"):
        console.print(f"held-out repeats dropped by the split: {split['rows_dropped']:,} rows")


def _printable(text: str) -> str:
    """``text`` with line breaks, escape sequences and other unprintable characters
    written as escapes, so raw file content cannot move the cursor or restyle a terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def print_report(console: Console, report: ReadReport, show: int = 20) -> None:
    """Print per-file tallies and the first ``show`` quarantined rows.

    Each quarantined row is one line naming its line number, field and reason (never
    wrapped, so a reason can be searched for), then the start of its raw text. File
    content is printed as plain text: brackets in it are never read as Rich markup.
    """
    table = Table("file", "rows read", "kept", "quarantined", "notes")
    for tally in report.files.values():
        notes = ", ".join(f"{k}: {v:,}" for k, v in sorted(tally.notes.items()))
        table.add_row(
            Text(_printable(Path(tally.file).name)),
            _n(tally.rows_read),
            _n(tally.rows_kept),
            _n(tally.rows_quarantined),
            Text(_printable(notes)),
        )
    console.print(table)
    issues = report.issues
    if issues:
        several = len(report.files) > 1
        console.print(Text(f"quarantined rows ({len(issues):,}):", style="bold"))
        for issue in issues[:show]:
            where = f"{Path(issue.file).name}, " if several else ""
            line = f"  {where}line {issue.line}, field {issue.field!r}: {issue.reason}"
            console.print(Text(_printable(line)), soft_wrap=True)
            console.print(Text("    " + _printable(issue.raw[:80]), style="dim"), soft_wrap=True)
        if len(issues) > show:
            console.print(f"... and {len(issues) - show:,} more (use --quarantine FILE)")


def print_train_summary(console: Console, run_dir: Path, payload: dict[str, Any]) -> None:
    """What ``mtlrec train`` ends with: the best epoch, the test headline metrics, the
    files written and the commands that come next."""
    from mtlrec.evaluation.results import headline_metrics  # the package imports torch

    best, epochs = payload.get("best_epoch"), payload.get("epochs_run")
    timings = payload.get("timings_s", {})  # text_*_s are parts of data_s: not added again
    seconds = sum(timings.get(k, 0.0) for k in ("data_s", "train_s", "evaluate_s"))
    epoch_text = (
        f"best epoch {best + 1} of {epochs}"
        if best is not None
        else f"{epochs} epoch(s), the last one's weights kept (no validation metric monitored)"
    )
    console.print(
        f"[bold green]trained[/] {payload['name']} in {seconds / 60:.1f} min: {epoch_text}"
    )
    test = payload.get("results", {}).get("test", {})
    if test:
        console.print("test: " + "; ".join(headline_metrics(test)), highlight=False)
    written = ("model.pt", "results.json", "train.jsonl", "tensorboard", "checkpoints")
    console.print(
        f"written to {run_dir}/: {', '.join(w for w in written if (run_dir / w).exists())}"
    )
    console.print("next:")
    for command in (
        f"mtlrec fuse --run {run_dir}",
        f"mtlrec recommend --run {run_dir} --user <user id>   (after fuse)",
        f"mtlrec export {run_dir} --out {run_dir}-artifacts",
        f"mtlrec report {run_dir} --out {run_dir}/report.html",
    ):
        console.print(f"  {command}", highlight=False, soft_wrap=True)
