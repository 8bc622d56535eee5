"""Writing files and folders atomically, and saying in one line why a write failed.

Every output that must never be seen half written goes through here:

- :func:`atomic_file` yields a binary handle on a temporary file beside the destination;
  on leaving the block the file is fsynced and renamed over the destination.
- :func:`staged_folder` yields an empty temporary folder beside the destination; the
  caller fills it and names it, and on leaving the block every file and folder is fsynced
  and the folder is renamed into place (replacing an older one only when asked).

If anything fails, the temporary file or folder is removed, so no partial output is left
and none ever carries the final name. A failure of the file system (disk full, a
read-only or forbidden folder, a quota) becomes a :class:`WriteError` naming the
destination: ``cannot write runs/x/checkpoints/last.pt: no space left on device``. The
errno is found on an :class:`OSError` in the exception's chain, or in the ``(os error
N)`` that Rust libraries (Polars, safetensors) put in their messages.

Temporary names carry their owner, ``.<name>.<pid>-<start>-<host>.<random>.tmp``
(``start``: the process's start time in clock ticks since boot, from ``/proc``; ``host``:
a hash of the machine's name), so a process killed mid-write (``kill -9``, a power cut)
leaves a temporary that the next write into the same folder recognises as stale and
removes: its owner, on this machine, no longer runs, or the process now holding that pid
started at another time (:func:`sweep_stale`).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import BinaryIO

WRITE_FAILURES: dict[int, str] = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}
"""The errnos that mean "this destination cannot be written", with the reason shown."""

_DENIED = frozenset({errno.EACCES, errno.EPERM})
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")
_OWNED = re.compile(
    r"^\.(?P<prefix>.+)\.(?P<pid>\d+)-(?P<start>\d+)-(?P<host>[0-9a-f]{8})\.[A-Za-z0-9_]+\.tmp$"
)


class WriteError(Exception):
    """A destination could not be written (disk full, read-only, forbidden); the message
    names it and the reason. Raised by the atomic writers here after their temporary is
    removed, so nothing partial is left."""

    def __init__(self, path: Path, reason: str, code: int | None = None) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path, self.reason, self.errno = path, reason, code


def io_errno(error: BaseException) -> tuple[int, str | None] | None:
    """``(errno, filename)`` of the I/O failure behind ``error``: the first :class:`OSError`
    with an errno in its ``__cause__`` / ``__context__`` chain (torch raises a
    ``RuntimeError`` while handling one), else the ``(os error N)`` of a Rust library's
    message (Polars' ``ComputeError``, ``SafetensorError``); ``None`` if there is none."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            filename = current.filename
            return current.errno, None if filename is None else os.fsdecode(filename)
        current = current.__cause__ or current.__context__
    found = _RUST_OS_ERROR.search(str(error))
    return (int(found.group(1)), None) if found else None


def _inside(path: str, folder: Path) -> bool:
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder))


def as_write_error(
    error: BaseException, target: Path, scratch: Path | None = None, *, ours: bool = False
) -> WriteError | None:
    """The :class:`WriteError` naming ``target`` that ``error`` amounts to, or ``None``
    when it is not a failure to write there.

    A full disk, a quota or a read-only file system always is. A denied access (EACCES,
    EPERM) is when the file it names lies in ``target`` or the temporary ``scratch``, when
    it names none, or when every file touched was ``ours`` (creating the destination);
    an unreadable input read while writing is not."""
    found = io_errno(error)
    if found is None or found[0] not in WRITE_FAILURES:
        return None
    code, filename = found
    if code in _DENIED and filename is not None and not ours:
        places = [target] if scratch is None else [target, scratch]
        if not any(_inside(filename, place) for place in places):
            return None
    return WriteError(target, WRITE_FAILURES[code], code)


@contextmanager
def reporting_write_errors(
    target: Path, scratch: Path | None = None, *, ours: bool = False
) -> Iterator[None]:
    """Turn a failure to write ``target`` inside the block into a :class:`WriteError` naming
    it (see :func:`as_write_error`); any other exception passes unchanged."""
    try:
        yield
    except Exception as error:
        failure = as_write_error(error, target, scratch, ours=ours)
        if failure is None:
            raise
        raise failure from error


# ------------------------------------------------------------------ owners of temporaries
@cache
def _has_proc() -> bool:
    return Path("/proc/self/stat").is_file()


@cache
def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def process_start(pid: int) -> int | None:
    """Start time of a running process in clock ticks since boot (``/proc/<pid>/stat``,
    field 22); ``None`` if it does not run (or is a zombie). Without ``/proc``, ``0`` for
    a live process (liveness alone, from ``os.kill(pid, 0)``)."""
    if not _has_proc():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # it runs, as another user
        return 0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    return None if fields[0] == "Z" else int(fields[19])


@cache
def host_tag() -> str:
    """8 hex digits of this machine's name: temporaries of another host (a shared network
    folder) are never judged by this one's processes."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


@cache
def _owner_tag(pid: int) -> str:
    return f"{pid}-{process_start(pid) or 0}-{host_tag()}"


def owner_tag() -> str:
    """``<pid>-<start ticks>-<host>``: what temporary names record about their writer."""
    return _owner_tag(os.getpid())


def this_process_started() -> float:
    """When this process started (seconds since the epoch; now, if ``/proc`` says nothing)."""
    boot, ticks = _boot_time(), process_start(os.getpid())
    if boot is None or not ticks:
        return time.time()
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def is_stale(path: Path, legacy_prefix: str | None = None) -> bool:
    """Whether ``path`` is a temporary left by a process that no longer writes it.

    An owned name (``.<name>.<pid>-<start>-<host>.<random>.tmp``) of this host is stale
    when no process with that pid runs, or the one that does started at another time (the
    pid was reused).
    ``legacy_prefix`` also matches the unowned names of earlier versions
    (``.<legacy_prefix>.<random>[.tmp]``): stale when last modified before this process
    started."""
    owned = _OWNED.match(path.name)
    if owned is not None:
        if owned["host"] != host_tag():
            return False
        start = process_start(int(owned["pid"]))
        recorded = int(owned["start"])
        return start is None or (recorded != 0 and start != 0 and start != recorded)
    if legacy_prefix is not None and re.fullmatch(
        rf"\.{re.escape(legacy_prefix)}\.[a-z0-9_]{{8}}(\.tmp)?", path.name
    ):
        try:
            return path.lstat().st_mtime < this_process_started()
        except FileNotFoundError:
            return False
    return False


def sweep_stale(folder: Path, legacy_prefix: str | None = None) -> list[Path]:
    """Remove the stale temporaries (see :func:`is_stale`) directly inside ``folder``;
    returns what was removed. Never fails: a folder that cannot be listed is left alone."""
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for path in entries:
        if not path.name.startswith(".") or not is_stale(path, legacy_prefix):
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def temporary_prefix(name: str) -> str:
    """The start of a temporary's name for ``name`` written by this process."""
    return f".{name}.{owner_tag()}."


# --------------------------------------------------------------------------------- files
@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Yield a binary handle on a temporary file beside ``path``; on success it is fsynced
    and renamed over ``path``, on failure removed (a :class:`WriteError` names ``path``
    when the file system was the cause). Stale temporaries of killed writers in the same
    folder are removed first."""
    parent = path.parent
    with reporting_write_errors(path, ours=True):
        parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(parent)
        descriptor, name = tempfile.mkstemp(
            prefix=temporary_prefix(path.name), suffix=".tmp", dir=parent
        )
    tmp = Path(name)
    with reporting_write_errors(path, tmp):
        try:
            with os.fdopen(descriptor, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def write_bytes_atomically(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_file`; returns ``path``."""
    with atomic_file(path) as handle:
        handle.write(data)
    return path


def write_text_atomically(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_file`; returns ``path``."""
    return write_bytes_atomically(path, text.encode("utf-8"))


# ------------------------------------------------------------------------------- folders
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


def _swap_in(staged: Path, final: Path, replace: bool) -> None:
    """Rename ``staged`` to ``final``; an existing ``final`` is replaced only if asked (moved
    aside first, put back if the rename fails, removed after)."""
    if not final.exists():
        os.rename(staged, final)
        return
    if not replace:
        raise FileExistsError(f"{final} already exists; a bundle is never overwritten")
    old = Path(
        tempfile.mkdtemp(
            prefix=temporary_prefix(f"{final.name}.old"), suffix=".tmp", dir=final.parent
        )
    )
    os.replace(final, old)
    try:
        os.rename(staged, final)
    except BaseException:
        os.replace(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_folder(
    parent: Path, prefix: str = "bundle", *, name: str | None = None, replace: bool = False
) -> Iterator[Staging]:
    """Yield a :class:`Staging` folder inside ``parent``; on success rename it to
    ``parent / staging.name``, on failure delete it.

    ``name`` may be given up front (else the caller sets ``staging.name`` in the block,
    e.g. from a checksum of the content). An existing destination is a
    :class:`FileExistsError` unless ``replace``, which swaps the new folder in and then
    removes the old one. A :class:`WriteError` names the destination (``parent`` while the
    name is not known). Stale temporaries of killed writers in ``parent`` (and unowned
    ones of earlier versions named after ``prefix``) are removed first."""
    with reporting_write_errors(parent / name if name else parent, ours=True):
        parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(parent, legacy_prefix=prefix)
        path = tempfile.mkdtemp(prefix=temporary_prefix(prefix), suffix=".tmp", dir=parent)
    staging = Staging(Path(path), name)
    try:
        yield staging
        if not staging.name:
            raise RuntimeError("staged_folder: no final name was set")
        fsync_tree(staging.path)
        _swap_in(staging.path, parent / staging.name, replace)
        fsync_dir(parent)
    except BaseException as error:
        shutil.rmtree(staging.path, ignore_errors=True)
        target = parent / staging.name if staging.name else parent
        failure = (
            as_write_error(error, target, staging.path) if isinstance(error, Exception) else None
        )
        if failure is None:
            raise
        raise failure from error
