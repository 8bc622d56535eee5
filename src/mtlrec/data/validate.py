"""Validate a single raw file with the parser of its format (``mtlrec data validate``)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

import mtlrec.data.sources  # noqa: F401  (registers every format)
from mtlrec.data.read_report import DataFormatError, ReadReport
from mtlrec.data.sources.base import FORMATS

__all__ = ["FORMATS", "validate_file"]


def validate_file(path: Path, file_format: str) -> tuple[ReadReport, pl.DataFrame]:
    """Parse ``path`` as ``file_format``; returns the tallies and the parsed table."""
    parser = FORMATS.get(file_format)
    if not path.is_file():
        raise DataFormatError(path, None, "file does not exist")
    report = ReadReport()
    frame = parser(path, report)
    for tally in report.files.values():
        tally.check()
    return report, frame
