"""``mtlrec train`` and ``mtlrec evaluate``."""

from __future__ import annotations

import shlex
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


def train_command(
    config: Annotated[Path, typer.Option("--config", help="An experiment YAML file.")],
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config key: a.b=value.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default: runs/<name>).")] = None,
    resume: Annotated[bool, typer.Option(help="Resume from the run's last checkpoint.")] = False,
    overwrite: Annotated[
        bool, typer.Option(help="Start again in a run folder that holds a run (its files go).")
    ] = False,
    skip_if_done: Annotated[
        bool, typer.Option(help="Leave a finished run of the same config in --out as it is.")
    ] = False,
    mirror: MirrorOption = None,
    cache_dir: CacheDirOption = None,
    offline: OfflineOption = False,
) -> None:
    """Train a multi-task model and evaluate it on the validation and test splits.

    The whole config (component names and parameters) is checked before anything is read
    or written: first from the component index, without importing torch, then against the
    live registries (parameter types too)."""
    from mtlrec.config.experiment import ExperimentConfig
    from mtlrec.config.fast_check import fast_check_experiment
    from mtlrec.config.loading import load_config

    try:
        load_config(ExperimentConfig, config, overrides or [], check=fast_check_experiment)
        from mtlrec.models.check import check_experiment_config  # imports torch

        experiment = load_config(
            ExperimentConfig, config, overrides or [], check=check_experiment_config
        )
    except KNOWN_ERRORS as error:
        raise fail(error) from None
    from mtlrec.cli.run_folder import FolderAction, check_run_folder
    from mtlrec.pipeline.experiment import run_experiment

    run_dir = out or Path("runs") / experiment.name
    try:
        action = check_run_folder(
            run_dir, experiment.model_dump(mode="json"), resume, overwrite, skip_if_done
        )
    except KNOWN_ERRORS as error:
        raise fail(error) from None
    if action is FolderAction.SKIP:
        console.print(f"{run_dir} holds a finished run of this config: not trained again")
        return
    try:
        result = run_experiment(
            experiment,
            run_dir,
            fetch_settings(mirror or [], cache_dir, offline),
            console,
            resume=resume,
        )
    except KNOWN_ERRORS as error:
        raise fail(error) from None
    except KeyboardInterrupt:
        raise interrupted(run_dir, config, overrides or []) from None
    from mtlrec.cli.summary import print_train_summary

    print_train_summary(console, run_dir, result)


def evaluate_command(
    run_dir: Annotated[
        Path, typer.Argument(metavar="RUN", help="A folder written by 'mtlrec train'.")
    ],
    mirror: MirrorOption = None,
    cache_dir: CacheDirOption = None,
    offline: OfflineOption = False,
) -> None:
    """Re-evaluate a trained run from its folder (config.yaml + model.pt)."""
    from mtlrec.pipeline.experiment import evaluate_saved_run

    if not (run_dir / "model.pt").is_file():
        raise fail(FileNotFoundError(f"{run_dir}: no model.pt; is this a 'mtlrec train' run?"))
    try:
        evaluate_saved_run(run_dir, fetch_settings(mirror or [], cache_dir, offline), console)
    except KNOWN_ERRORS as error:
        raise fail(error) from None


def interrupted(run_dir: Path, config: Path, overrides: list[str]) -> typer.Exit:
    """Ctrl-C during ``train``: say where the run stands and the command that resumes it
    (the trainer saves ``checkpoints/last.pt`` before the first epoch and after each)."""
    last = run_dir / "checkpoints" / "last.pt"
    command = ["mtlrec", "train", "--config", str(config), "--out", str(run_dir)]
    for override in overrides:
        command += ["--set", override]
    command.append("--resume")
    if last.is_file():
        console.print(
            f"[yellow]interrupted:[/] {last} holds the last finished epoch; continue with:\n"
            f"  {shlex.join(command)}",
            highlight=False,
            soft_wrap=True,
        )
    else:
        console.print("[yellow]interrupted[/] before training started: nothing to resume")
    return typer.Exit(code=130)
