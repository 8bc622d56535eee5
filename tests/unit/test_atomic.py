"""``core.atomic``: atomic files and folders, write failures as one line naming the
destination, and the sweep of temporaries left by killed writers (issue 14, items 4 and 6)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import torch

from mtlrec.core.atomic import (
    WriteError,
    atomic_file,
    io_errno,
    is_stale,
    owner_tag,
    staged_folder,
    sweep_stale,
    write_text_atomically,
)

SRC = Path(__file__).resolve().parents[2] / "src"

KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from mtlrec.core.atomic import staged_folder
with staged_folder(Path(sys.argv[1]), "bundle") as staging:
    (staging.path / "weights.bin").write_bytes(b"half")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_writer(parent: Path) -> Path:
    """Run a writer that is killed (SIGKILL) inside :func:`staged_folder`; returns the
    temporary folder it leaves behind."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(parent)], env=env, check=False)
    assert done.returncode == -9
    (left,) = parent.iterdir()
    assert (left / "weights.bin").read_bytes() == b"half"
    return left


def test_the_errno_is_found_behind_library_errors(tmp_path: Path) -> None:
    # Polars writes through Rust: a full disk is a ComputeError ending in "(os error 28)"
    full = tmp_path / "table.parquet"
    full.symlink_to("/dev/full")
    with pytest.raises(pl.exceptions.ComputeError) as polars_error:
        pl.DataFrame({"a": list(range(50_000))}).write_parquet(full)
    assert io_errno(polars_error.value) == (errno.ENOSPC, None)
    # torch.save into a handle: the OSError is in the chain (a RuntimeError may be on top)
    with pytest.raises((OSError, RuntimeError)) as torch_error, full.open("wb") as handle:
        torch.save({"w": torch.zeros(50_000)}, handle)
    assert io_errno(torch_error.value) == (errno.ENOSPC, None)
    from safetensors import SafetensorError

    message = "Error while serializing: I/O error: No space left on device (os error 28)"
    assert io_errno(SafetensorError(message)) == (errno.ENOSPC, None)
    assert io_errno(ValueError("no I/O here")) is None


def test_a_full_disk_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "last.pt"
    target.write_bytes(b"epoch 1")
    with pytest.raises(WriteError) as caught, atomic_file(target) as handle:
        handle.write(b"epoch 2, half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(caught.value) == f"cannot write {target}: no space left on device"
    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"epoch 1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    # not a file-system failure: passes unchanged, and still leaves nothing
    with pytest.raises(KeyError), atomic_file(tmp_path / "other") as handle:
        handle.write(b"x")
        raise KeyError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    write_text_atomically(target, "epoch 2")
    assert target.read_text() == "epoch 2"


def test_a_read_only_folder_names_the_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*args: object, **kwargs: object) -> str:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(args[0] if args else ""))

    monkeypatch.setattr("tempfile.mkstemp", read_only)
    monkeypatch.setattr("tempfile.mkdtemp", read_only)
    with pytest.raises(WriteError, match=f"cannot write {tmp_path / 'a.json'}: read-only"):
        write_text_atomically(tmp_path / "a.json", "{}")
    expected = f"cannot write {tmp_path}: read-only file system"
    with pytest.raises(WriteError, match=expected), staged_folder(tmp_path) as staging:
        staging.name = "never"
    assert list(tmp_path.iterdir()) == []


def test_an_unreadable_input_is_not_called_a_write_failure(tmp_path: Path) -> None:
    denied = PermissionError(errno.EACCES, "Permission denied", "/elsewhere/input.csv")
    with pytest.raises(PermissionError), staged_folder(tmp_path) as staging:
        staging.name = "out"
        raise denied
    with pytest.raises(WriteError, match="permission denied"), staged_folder(tmp_path) as staging:
        raise PermissionError(errno.EACCES, "Permission denied", str(staging.path / "x"))
    assert list(tmp_path.iterdir()) == []


def test_staged_folder_replaces_only_when_asked(tmp_path: Path) -> None:
    with staged_folder(tmp_path, "data", name="data") as staging:
        (staging.path / "v").write_text("1")
    with pytest.raises(FileExistsError), staged_folder(tmp_path, "data", name="data") as staging:
        (staging.path / "v").write_text("2")
    with staged_folder(tmp_path, "data", name="data", replace=True) as staging:
        (staging.path / "v").write_text("3")
    assert (tmp_path / "data" / "v").read_text() == "3"
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_a_killed_writers_folder_is_swept_by_the_next_write(tmp_path: Path) -> None:
    left = killed_writer(tmp_path)
    assert left.name.startswith(".bundle.") and left.name.endswith(".tmp")
    assert is_stale(left)
    with staged_folder(tmp_path, "other") as staging:
        (staging.path / "x").write_text("x")
        staging.name = "done"
    assert [p.name for p in tmp_path.iterdir()] == ["done"]


def test_live_and_foreign_temporaries_are_kept(tmp_path: Path) -> None:
    mine = tmp_path / f".bundle.{owner_tag()}.abcd1234.tmp"  # this process: alive
    pid, start, host = owner_tag().split("-")
    foreign = tmp_path / f".bundle.{pid}-{start}-00000000.abcd1234.tmp"  # another machine
    reused = tmp_path / f".bundle.{pid}-{int(start) + 7}-{host}.abcd1234.tmp"  # pid reused
    legacy_old = tmp_path / ".bundle.k2j4h5g6.tmp"  # unowned, from before this process
    legacy_new = tmp_path / ".bundle.q9w8e7r6.tmp"  # unowned, made since it started
    user = tmp_path / ".notes.tmp"
    for folder in (mine, foreign, reused, legacy_old, legacy_new, user):
        folder.mkdir()
    an_hour_ago = time.time() - 3600
    os.utime(legacy_old, (an_hour_ago, an_hour_ago))
    removed = sweep_stale(tmp_path, legacy_prefix="bundle")
    assert sorted(removed) == sorted([reused, legacy_old])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (mine, foreign, legacy_new, user)
    )
