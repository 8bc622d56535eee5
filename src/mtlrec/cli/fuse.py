"""``mtlrec fuse`` and ``mtlrec recommend``: the cascade beside a trained run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mtlrec.cli.data import (
    KNOWN_ERRORS,
    CacheDirOption,
    MirrorOption,
    OfflineOption,
    console,
    fail,
    fetch_settings,
)


def fuse_command(
    run: Annotated[Path, typer.Option("--run", help="A folder written by 'mtlrec train'.")],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A fusion YAML file (default: EASE + user kNN retrievers, every head of the "
            "run, linear fusion).",
        ),
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config key: a.b=value.")
    ] = None,
    mirror: MirrorOption = None,
    cache_dir: CacheDirOption = None,
    offline: OfflineOption = False,
) -> None:
    """Fit retrievers + fusion (on validation) for a run; evaluate the cascade; save it.

    The fusion config (baseline and fusion names and parameters) is checked before anything
    is read or written: first from the component index, without importing torch, then
    against the live registries (parameter types too)."""
    from mtlrec.config.fast_check import fast_check_fusion
    from mtlrec.config.fusion import DEFAULT_FUSION, FusionConfig
    from mtlrec.config.loading import load_config, load_config_data

    def load(check: Callable[[FusionConfig], None]) -> FusionConfig:
        if config is None:
            return load_config_data(FusionConfig, DEFAULT_FUSION, overrides or [], check)
        return load_config(FusionConfig, config, overrides or [], check=check)

    try:
        if config is None:
            console.print("fusion config: the default (EASE + user kNN, every head, linear)")
        load(fast_check_fusion)
        from mtlrec.fusion.check import check_fusion_config  # imports torch

        fusion_config = load(check_fusion_config)
    except KNOWN_ERRORS as error:
        raise fail(error) from None
    from mtlrec.evaluation import print_results
    from mtlrec.fusion.assemble import FUSION_DIR
    from mtlrec.pipeline.fuse import fuse_run

    try:
        payload = fuse_run(
            run, fusion_config, fetch_settings(mirror or [], cache_dir, offline), console
        )
    except KNOWN_ERRORS as error:
        raise fail(error) from None
    print_results(console, payload["results"])
    weights = ", ".join(f"{k} {v:.3f}" for k, v in payload["weights"].items())
    console.print(f"fusion {payload['fusion']} weights: {weights or '(meta-model)'}")
    console.print(f"[green]cascade written to[/] {run / FUSION_DIR}")


def recommend_command(
    run: Annotated[Path, typer.Option("--run", help="A run folder with a fitted 'fusion/'.")],
    user: Annotated[str, typer.Option("--user", help="A user id of the dataset.")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="How many items.")] = 10,
    mirror: MirrorOption = None,
    cache_dir: CacheDirOption = None,
    offline: OfflineOption = False,
) -> None:
    """Recommend k items to one user with the run's cascade, explained item by item."""
    from mtlrec.pipeline.fuse import load_fused_run
    from mtlrec.pipeline.recommend import recommend_rows

    try:
        fused = load_fused_run(run, fetch_settings(mirror or [], cache_dir, offline), console)
        rows = recommend_rows(fused, user, k)
    except (*KNOWN_ERRORS, KeyError) as error:
        raise fail(error) from None
    tasks = list(fused.cascade.tasks)
    table = Table(
        title=f"top {k} for user {user} ({fused.fusion_config.fusion.name} fusion)",
        caption="per-task scores: head outputs (probability / prediction; a sequential "
        "model's retrieval task: its logit); retrieved by: retriever#rank; stage: how the "
        "final position was chosen, with the item's fused rank before MMR",
    )
    # numbers and their headers never shrink; the text columns wrap (never cut) to fit
    table.add_column("#", justify="right")
    table.add_column("item", overflow="fold")
    table.add_column("title", max_width=24, overflow="fold")
    for task in tasks:
        table.add_column(task, justify="right", min_width=max(len(task), 6))
    table.add_column("fused", justify="right", min_width=6)
    table.add_column("retrieved by", overflow="fold")
    table.add_column("stage", no_wrap=True, min_width=8)  # "mmr #123"
    for row in rows:
        table.add_row(
            str(row["rank"]),
            str(row["item_id"]),
            str(row["title"] or ""),
            *(f"{row['scores'][t]:.3f}" for t in tasks),
            f"{row['fused']:.3f}",
            " ".join(f"{name}#{rank}" for name, rank in row["retrieved_by"]),
            f"{row['stage']} #{row['fused_rank']}",
        )
    console.print(table)
