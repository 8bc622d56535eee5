"""What ``mtlrec train`` does with the ``--out`` folder it is given.

A folder that already holds files is never written over silently: ``--resume`` continues
the run in it, ``--overwrite`` starts it again (only a folder that is a run: one with a
``config.yaml``), ``--skip-if-done`` leaves a finished run of the same config as it is.
"""

from __future__ import annotations

import shutil
from enum import Enum
from pathlib import Path

import yaml

RESULTS = "results.json"
CONFIG = "config.yaml"


class RunFolderError(ValueError):
    """The ``--out`` folder cannot be used as asked (the message says what to do)."""


class FolderAction(Enum):
    """What to do with the run folder: train into it, or leave a finished run alone."""

    TRAIN = "train"
    SKIP = "skip"


def check_run_folder(
    out: Path,
    config: dict[str, object],
    resume: bool = False,
    overwrite: bool = False,
    skip_if_done: bool = False,
) -> FolderAction:
    """Decide what ``train`` does with ``out`` for the resolved ``config`` (its JSON dump);
    with ``overwrite`` the old run's files are removed here. Raises :class:`RunFolderError`
    for a folder that holds files and no flag says what to do with them."""
    if resume and overwrite:
        raise RunFolderError("--resume continues a run, --overwrite starts it again: pick one")
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file, not a folder")
    if not out.is_dir() or not any(out.iterdir()):
        if resume:
            raise RunFolderError(f"--resume: {out} holds no run to continue")
        return FolderAction.TRAIN
    is_run = (out / CONFIG).is_file()
    if skip_if_done and is_run and (out / RESULTS).is_file():
        saved = yaml.safe_load((out / CONFIG).read_text())
        if saved == config:
            return FolderAction.SKIP
        raise RunFolderError(
            f"{out} holds a finished run of another config; --overwrite to train this one "
            "there, or another --out"
        )
    if resume:
        if not is_run:
            raise RunFolderError(f"--resume: {out} is not a run folder (no {CONFIG})")
        return FolderAction.TRAIN
    if overwrite:
        if not is_run:
            raise RunFolderError(
                f"--overwrite: {out} holds files but no {CONFIG}, so it is not a run folder; "
                "nothing there is deleted (give an empty or new --out)"
            )
        for path in out.iterdir():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        return FolderAction.TRAIN
    state = "a finished run" if (out / RESULTS).is_file() else "files"
    raise RunFolderError(
        f"{out} already holds {state}; --resume to continue it, --overwrite to start it "
        "again, or give another --out"
    )
