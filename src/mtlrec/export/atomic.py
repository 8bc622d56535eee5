"""Writing a folder atomically: build it under a temporary name, fsync, then rename.

:func:`staged_folder` yields an empty temporary folder next to the destination (same file
system, so the final :func:`os.rename` is atomic). The caller fills it and chooses the final
name (which may depend on the content, such as a checksum); on leaving the block every file
and folder is fsynced and the folder is renamed into place. If anything fails the temporary
folder is removed, so no half-written folder ever carries the final name and none is left
behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Staging:
    """A temporary folder being filled; set :attr:`name` to the final folder name."""

    path: Path
    name: str | None = None


def fsync_tree(root: Path) -> None:
    """fsync every file under ``root``, then every folder (deepest first), then ``root``."""
    folders = [root]
    for path in sorted(root.rglob("*")):
        if path.is_dir():
            folders.append(path)
        elif path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        fsync_dir(folder)


def fsync_dir(folder: Path) -> None:
    """fsync a folder's entry list (a rename inside it survives a crash)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def staged_folder(parent: Path, prefix: str = "bundle") -> Iterator[Staging]:
    """Yield a :class:`Staging` folder inside ``parent``; on success rename it to
    ``parent / staging.name`` (which must not exist yet), on failure delete it."""
    parent.mkdir(parents=True, exist_ok=True)
    staging = Staging(Path(tempfile.mkdtemp(prefix=f".{prefix}.", suffix=".tmp", dir=parent)))
    try:
        yield staging
        if not staging.name:
            raise RuntimeError("staged_folder: no final name was set")
        final = parent / staging.name
        if final.exists():
            raise FileExistsError(f"{final} already exists; a bundle is never overwritten")
        fsync_tree(staging.path)
        os.rename(staging.path, final)
        fsync_dir(parent)
    except BaseException:
        shutil.rmtree(staging.path, ignore_errors=True)
        raise
