"""The interface every data source implements, and helpers shared by the parsers."""

from __future__ import annotations

import gzip
import io
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, ClassVar, TextIO

import polars as pl

from mtlrec.core.registry import Registry
from mtlrec.data.read_report import DataFormatError, ReadReport
from mtlrec.data.schema import CanonicalTables


class Source(ABC):
    """Parses the raw files of one dataset family into :class:`CanonicalTables`.

    ``roles`` names the files the source reads (for example ``{"reviews", "meta"}``);
    ``optional_roles`` may be absent. Constructors take explicit keyword arguments and
    store them untouched. ``load`` tallies every row it reads in ``report``.
    """

    roles: ClassVar[tuple[str, ...]] = ()
    optional_roles: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def load(self, files: Mapping[str, Path], report: ReadReport) -> CanonicalTables:
        """Parse ``files`` (role -> local path) into canonical tables."""

    def check_files(self, files: Mapping[str, Path]) -> None:
        """Fail clearly when a required role is missing or a file does not exist."""
        for role in self.roles:
            if role not in files:
                raise DataFormatError(
                    f"<{type(self).__name__}>", role, f"no file given for required role {role!r}"
                )
        for role, path in files.items():
            if role not in self.roles and role not in self.optional_roles:
                known = ", ".join(self.roles + self.optional_roles)
                raise DataFormatError(path, role, f"unknown file role {role!r}; known: {known}")
            if not Path(path).is_file():
                raise DataFormatError(path, role, "file does not exist")


SOURCES: Registry[type[Source]] = Registry("source")
"""Every source class, by name (``mtlrec.data.sources`` imports the modules that fill it)."""


def open_text(path: Path, encoding: str = "utf-8") -> TextIO:
    """Open a plain or gzip-compressed text file (decided by its magic bytes)."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding, errors="strict")
    return path.open("r", encoding=encoding, errors="strict", newline="")


def open_binary(path: Path) -> BinaryIO:
    """Open a plain or gzip-compressed file for binary reading (decided by magic bytes)."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def numbered_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` pairs (1-based, newline stripped), skipping blank lines.

    Each line is decoded on its own, so a file that is not valid text in ``encoding``
    raises :class:`DataFormatError` naming the exact line.
    """
    try:
        with open_binary(path) as handle:
            for line_number, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode(encoding).rstrip("\r\n")
                except UnicodeDecodeError as error:
                    raise DataFormatError(
                        path, None, f"not valid {encoding} text ({error.reason})", line=line_number
                    ) from None
                if line.strip():
                    yield line_number, line
    except (gzip.BadGzipFile, EOFError) as error:
        raise DataFormatError(path, None, f"broken gzip file ({error})") from None


FileParser = Callable[[Path, ReadReport], pl.DataFrame]
"""Parses one raw file of a known format, tallying its rows; used by ``mtlrec data validate``."""

FORMATS: Registry[FileParser] = Registry("file format")
"""Single-file parsers by format name (``amazon-reviews``, ``movielens-100k-data``, ...)."""
