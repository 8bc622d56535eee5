"""A full disk and a read-only target for ``data prepare``, ``train`` and ``export``: one
``error:`` line naming the path, a non-zero exit, no partial output (issue 14, item 4); a
killed export's temporary folder is swept by the next export (item 6)."""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import torch
import yaml
from typer.testing import CliRunner

from faults import ERRORS, error_lines, make_read_only
from mtlrec.cli.main import app
from tiny_run import CONFIG, train_tiny_run, write_reviews

runner = CliRunner()
ENOSPC = "No space left on device (os error 28)"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny reviews file, a prepare config and a one-epoch train config of it, and a
    cache the commands share (the data is prepared once)."""
    root = tmp_path_factory.mktemp("faults")
    raw = json.loads(json.dumps(CONFIG))
    raw["data"]["dataset"]["files"]["reviews"] = str(write_reviews(root / "reviews.json"))
    raw["training"]["epochs"] = 1
    (root / "train.yaml").write_text(yaml.safe_dump(raw))
    (root / "prepare.yaml").write_text(yaml.safe_dump(raw["data"]))
    return root


def invoke(workspace: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app, [*args, "--cache-dir", str(workspace / "cache"), "--offline"], catch_exceptions=True
    )
    return result.exit_code, result.output


def prepare(workspace: Path, out: Path) -> tuple[int, str]:
    return invoke(workspace, "data", "prepare", str(workspace / "prepare.yaml"), "--out", str(out))


def train(workspace: Path, out: Path) -> tuple[int, str]:
    return invoke(workspace, "train", "--config", str(workspace / "train.yaml"), "--out", str(out))


# ----------------------------------------------------------------------------------- prepare
def test_prepare_on_a_full_disk(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: pl.DataFrame, file: Any, *args: Any, **kwargs: Any) -> None:
        Path(file).write_bytes(b"PAR1 half a table")  # Polars had written part of it
        raise pl.exceptions.ComputeError(f"parquet: underlying IO error: {ENOSPC}")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    out = tmp_path / "prepared" / "tiny"
    code, output = prepare(workspace, out)
    assert code != 0
    assert error_lines(output) == [f"error: cannot write {out}: no space left on device"]
    assert list((tmp_path / "prepared").iterdir()) == []  # no folder, no temporary


def assert_refused_into_read_only(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    name: str,
    command: Callable[[Path], tuple[int, str]],
) -> None:
    """``command(out)`` into ``out`` inside a folder that refuses writes with ``code``:
    a non-zero exit, one ``error:`` line naming ``out``, nothing left in the folder."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    make_read_only(monkeypatch, folder, code)
    out = folder / name
    exit_code, output = command(out)
    assert exit_code != 0
    assert error_lines(output) == [f"error: cannot write {out}: {ERRORS[code]}"]
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("code", sorted(ERRORS), ids=errno.errorcode.get)
def test_prepare_into_a_read_only_folder(
    code: int, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_refused_into_read_only(
        tmp_path, monkeypatch, code, "tiny", lambda out: prepare(workspace, out)
    )


# ------------------------------------------------------------------------------------- train
def test_train_on_a_full_disk_keeps_the_last_checkpoint_and_no_temporary(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = torch.save
    saves: list[int] = []

    def full(payload: Any, file: Any, *args: Any, **kwargs: Any) -> None:
        saves.append(1)
        if len(saves) < 2:  # the checkpoint before the first epoch is written
            real_save(payload, file, *args, **kwargs)
            return
        file.write(b"PK half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    run = tmp_path / "run"
    monkeypatch.setattr(torch, "save", full)
    code, output = train(workspace, run)
    monkeypatch.undo()
    assert code != 0
    last = run / "checkpoints" / "last.pt"
    assert error_lines(output) == [f"error: cannot write {last}: no space left on device"]
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.pt"]  # no tmp* file
    assert torch.load(last, weights_only=False)["state"]["epoch"] == 0  # the one before
    assert not (run / "model.pt").exists() and not (run / "results.json").exists()


@pytest.mark.parametrize("code", sorted(ERRORS), ids=errno.errorcode.get)
def test_train_into_a_read_only_folder(
    code: int, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    make_read_only(monkeypatch, folder, code)
    run = folder / "run"
    exit_code, output = train(workspace, run)
    assert exit_code != 0
    assert error_lines(output) == [f"error: cannot write {run}: {ERRORS[code]}"]
    assert list(folder.iterdir()) == []


# ------------------------------------------------------------------------------------ export
@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A trained tiny run and its cache."""
    root = tmp_path_factory.mktemp("export-faults")
    run_dir, settings = train_tiny_run(root, training={"epochs": 1, "batch_size": 64})
    return run_dir, settings.cache_dir


def export(trained: tuple[Path, Path], out: Path) -> tuple[int, str]:
    run_dir, cache = trained
    result = runner.invoke(
        app, ["export", str(run_dir), "--out", str(out), "--cache-dir", str(cache), "--offline"]
    )
    return result.exit_code, result.output


def test_export_on_a_full_disk(
    trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import safetensors.torch
    from safetensors import SafetensorError

    def full(tensors: Any, filename: Any, *args: Any, **kwargs: Any) -> None:
        Path(filename).write_bytes(b"half the weights")
        raise SafetensorError(f"Error while serializing: I/O error: {ENOSPC}")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    out = tmp_path / "artifacts"
    code, output = export(trained, out)
    assert code != 0
    assert error_lines(output) == [f"error: cannot write {out}: no space left on device"]
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("code", sorted(ERRORS), ids=errno.errorcode.get)
def test_export_into_a_read_only_folder(
    code: int, trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_refused_into_read_only(
        tmp_path, monkeypatch, code, "artifacts", lambda out: export(trained, out)
    )


def test_a_killed_exports_temporary_folder_is_swept_by_the_next_export(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "artifacts"
    out.mkdir()
    # what an export killed midway (kill -9) left: its hidden folder, half written, and
    # older than the process that exports now
    killed = out / ".tiny-export.k3j5h7g9.tmp"
    (killed / "variants").mkdir(parents=True)
    (killed / "weights.safetensors").write_bytes(b"half")
    before = time.time() - 3600
    os.utime(killed, (before, before))
    # one made since this process started may belong to an export running now: kept
    running = out / ".tiny-export.q2w3e4r5.tmp"
    running.mkdir()
    code, output = export(trained, out)
    assert code == 0, output
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 2 and names[0] == running.name
    assert names[1].startswith("tiny-export-")
