"""Fault injection for the write paths: a read-only folder, as the file system reports it.

``chmod`` cannot make a folder read-only for root (tests may run as root), so
:func:`make_read_only` answers every attempt to create, write, rename or remove something
under a folder the way a read-only mount does (``EROFS``) or a folder without write
permission (``EACCES``); reads go on working. It patches the calls Python code writes
through (``os.mkdir``, ``os.open``, ``open``, ``os.rename`` ...); a library writing from
native code is only reached once one of those has created a file, so it is stopped too.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
from pathlib import Path
from typing import Any

import pytest

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

ERRORS: dict[int, str] = {
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
}
"""The read-only errnos a test injects, with the reason ``mtlrec`` shows for each."""


def make_read_only(monkeypatch: pytest.MonkeyPatch, root: Path, code: int = errno.EROFS) -> None:
    """Make writes under ``root`` (an existing folder) fail with ``code``."""
    root = Path(os.path.abspath(root))

    def guarded(path: Any) -> bool:
        if isinstance(path, int) or not isinstance(path, str | bytes | os.PathLike):
            return False
        return Path(os.path.abspath(os.fsdecode(path))).is_relative_to(root)

    def refuse(path: Any) -> OSError:
        return OSError(code, os.strerror(code), os.fsdecode(path))

    real_mkdir, real_open, real_io_open = os.mkdir, os.open, io.open
    real_rename, real_replace, real_unlink, real_rmdir = os.rename, os.replace, os.unlink, os.rmdir

    def mkdir(path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        if guarded(path):
            if os.path.lexists(path):  # Linux says EEXIST before EROFS
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(path))
            raise refuse(path)
        real_mkdir(path, mode, dir_fd=dir_fd)

    def os_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if guarded(path) and flags & _WRITE_FLAGS:
            raise refuse(path)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    def io_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if guarded(file) and any(c in mode for c in "wax+"):
            raise refuse(file)
        return real_io_open(file, mode, *args, **kwargs)

    def two_paths(real: Any) -> Any:
        def move(src: Any, dst: Any, **kwargs: Any) -> None:
            if guarded(src) or guarded(dst):
                raise refuse(dst if guarded(dst) else src)
            real(src, dst, **kwargs)

        return move

    def one_path(real: Any) -> Any:
        def remove(path: Any, **kwargs: Any) -> None:
            if guarded(path):
                raise refuse(path)
            real(path, **kwargs)

        return remove

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(io, "open", io_open)
    monkeypatch.setattr(builtins, "open", io_open)
    monkeypatch.setattr(os, "rename", two_paths(real_rename))
    monkeypatch.setattr(os, "replace", two_paths(real_replace))
    monkeypatch.setattr(os, "unlink", one_path(real_unlink))
    monkeypatch.setattr(os, "remove", one_path(real_unlink))
    monkeypatch.setattr(os, "rmdir", one_path(real_rmdir))


def error_lines(output: str) -> list[str]:
    """The ``error:`` lines of a command's output; fails on a traceback."""
    assert "Traceback" not in output, output
    return [line for line in output.splitlines() if line.startswith("error:")]
