"""Write the split files that mtlrec and the peer frameworks both read, once per protocol.

The split is mtlrec's own: the dataset preset's config is prepared (or reused from the
cache) and turned into examples by ``mtlrec.data.examples.load_examples``, exactly as
``mtlrec train`` and ``benchmarks/fusion.py`` see it (``user_row`` / ``item_row`` /
``split``); no text is encoded. Each split becomes one RecBole atomic file for its
``benchmark_filename`` mechanism, in ``benchmarks/peers/splits/<dataset>-<protocol>/``:

- ``<dataset>-<protocol>.{train,valid,test}.inter``: tab-separated, header
  ``user_id:token  item_id:token  timestamp:float  [rating:float]``; rows sorted by user,
  then by time, then by mtlrec's interaction id; a user's rows in train -> valid -> test
  are their sequence (leave-one-out orders equal timestamps by the split's ``ties`` rule,
  recorded in the prepared manifest, so the held-out rows come after every train row);
- ``split.json``: the config and overrides used, the prepared dataset, counts, sha256 of
  every file.

Protocols: ``random`` (pairs split 8:1:1 at random, seed 42) and ``loo`` (per user by time:
latest -> test, second latest -> valid). Without ``--split`` the preset's own split is
written (ml-100k: random; amazon-mi: loo). A protocol other than the preset's prepares a
new dataset into ``--cache-dir`` (``prepared/``).

    python benchmarks/peers/split_files.py --dataset ml-100k
    python benchmarks/peers/split_files.py --dataset ml-100k --split loo
    python benchmarks/peers/split_files.py --dataset amazon-mi --split random
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import polars as pl

import mtlrec
from mtlrec.config.experiment import ExperimentConfig
from mtlrec.config.loading import load_config
from mtlrec.data.cache import cached_prepare
from mtlrec.data.examples import SPLITS, load_examples
from mtlrec.data.fetch import FetchSettings

ROOT = Path(__file__).resolve().parents[2]
SPLITS_DIR = ROOT / "benchmarks" / "peers" / "splits"
CONFIGS: dict[str, str] = {
    "ml-100k": "configs/ml-100k-interest.yaml",
    "amazon-mi": "configs/amazon-musical-instruments.yaml",
}
PROTOCOLS: dict[str, list[str]] = {
    "random": ["data.split.strategy=random", "data.split.ratios=[0.8, 0.1, 0.1]"],
    "loo": ["data.split.strategy=leave_one_out"],
}
STRATEGY_PROTOCOL = {"random": "random", "leave_one_out": "loo"}


def experiment_config(dataset: str, protocol: str | None) -> tuple[ExperimentConfig, list[str]]:
    """The preset config of ``dataset`` with the split overrides of ``protocol`` (None: none)."""
    overrides = [] if protocol is None else PROTOCOLS[protocol]
    return load_config(ExperimentConfig, ROOT / CONFIGS[dataset], overrides), overrides


def protocol_of(config: ExperimentConfig) -> str:
    """``random`` or ``loo`` for the config's resolved split (anything else is an error)."""
    split = config.data.split
    assert split is not None  # filled by the catalog defaults
    if split.strategy not in STRATEGY_PROTOCOL:
        raise ValueError(f"split strategy {split.strategy!r} is not a peers protocol")
    return STRATEGY_PROTOCOL[split.strategy]


def split_frame(config: ExperimentConfig, settings: FetchSettings) -> tuple[pl.DataFrame, str]:
    """One row per interaction example: ``user_id, item_id, timestamp, [rating], split`` (0/1/2)
    and ``interaction_id``, with the prepared dataset's folder name."""
    dataset = cached_prepare(config.data, settings)
    examples, entities, _ = load_examples(dataset)
    if examples.unit != "interaction":
        raise ValueError(f"peers need interaction examples, this dataset has {examples.unit!r}")
    users = pl.Series(entities.user_ids, dtype=pl.String)
    items = pl.Series(entities.item_ids, dtype=pl.String)
    inter = dataset.tables["interactions"]
    frame = pl.DataFrame(
        {
            "interaction_id": inter["interaction_id"],
            "user_id": users.gather(examples.features["user_row"].numpy()),
            "item_id": items.gather(examples.features["item_row"].numpy()),
            "timestamp": inter["timestamp"],
            "split": examples.split.numpy(),
        }
    )
    # interaction examples keep the interactions table's order: check it row by row
    same = (frame["user_id"] == inter["user_id"]) & (frame["item_id"] == inter["item_id"])
    table_split = inter["split"].replace_strict({s: i for i, s in enumerate(SPLITS)})
    if not bool(same.all()) or not bool((frame["split"] == table_split).all()):
        raise RuntimeError("examples are not in the interactions table's order")
    if inter["event"].eq("rating").all() or inter["event"].eq("review").all():
        frame = frame.with_columns(rating=inter["value"].cast(pl.Float64))
    if frame["timestamp"].null_count():
        raise ValueError("interactions without timestamps cannot be written as time-ordered")
    earlier = frame.group_by("user_id", "item_id").agg(pl.col("split").n_unique().alias("n"))
    if earlier.filter(pl.col("n") > 1).height:
        raise ValueError("a (user, item) pair lies in two splits; the peers protocol needs none")
    unused = set(entities.item_ids) - set(frame["item_id"].to_list())
    if unused:
        raise ValueError(
            f"{len(unused)} catalogue items have no interaction: RecBole would "
            "not rank them, mtlrec would"
        )
    return frame, dataset.root.name


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_split(frame: pl.DataFrame, folder: Path, extra: dict[str, Any]) -> dict[str, Any]:
    """Write the three atomic files and ``split.json`` into ``folder``; return the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    name = folder.name
    columns = {"user_id": "token", "item_id": "token", "timestamp": "float", "rating": "float"}
    present = [c for c in columns if c in frame.columns]
    ordered = frame.sort("user_id", "timestamp", "interaction_id")
    files: dict[str, Any] = {}
    for at, split in enumerate(SPLITS):
        part = ordered.filter(pl.col("split") == at).select(present)
        path = folder / f"{name}.{split}.inter"
        part.rename({c: f"{c}:{columns[c]}" for c in present}).write_csv(path, separator="\t")
        files[path.name] = {
            "split": split,
            "rows": part.height,
            "users": part["user_id"].n_unique(),
            "items": part["item_id"].n_unique(),
            "sha256": _sha256(path),
        }
    manifest = {
        "name": name,
        **extra,
        "columns": [f"{c}:{columns[c]}" for c in present],
        "row_order": "user_id, timestamp, mtlrec interaction_id",
        "n_users": frame["user_id"].n_unique(),
        "n_items": frame["item_id"].n_unique(),
        "n_interactions": frame.height,
        "files": files,
        "mtlrec_version": mtlrec.__version__,
    }
    (folder / "split.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_split(folder: Path) -> tuple[dict[str, Any], dict[str, pl.DataFrame]]:
    """``split.json`` and the three split frames (``user_id``, ``item_id``, ... as strings),
    after checking every file's sha256 against the manifest."""
    manifest = json.loads((folder / "split.json").read_text())
    frames = {}
    for file, info in manifest["files"].items():
        path = folder / file
        if _sha256(path) != info["sha256"]:
            raise ValueError(f"{path} does not match split.json (sha256): rewrite the split")
        frame = pl.read_csv(path, separator="\t", infer_schema=False)
        frames[info["split"]] = frame.rename({c: c.split(":")[0] for c in frame.columns})
    return manifest, frames


def check_same_split(frame: pl.DataFrame, frames: dict[str, pl.DataFrame], folder: Path) -> None:
    """Fail unless ``frame`` (:func:`split_frame`: what mtlrec trains and evaluates on) holds
    exactly the (user, item) pairs of each split file in ``folder``."""
    for at, split in enumerate(SPLITS):
        ours = frame.filter(pl.col("split") == at).select("user_id", "item_id")
        theirs = frames[split].select("user_id", "item_id")
        if ours.height != theirs.height or ours.join(theirs, on=["user_id", "item_id"]).height != (
            ours.height
        ):
            raise ValueError(
                f"{folder}: mtlrec's {split} split ({ours.height:,} rows) differs from "
                f"{split}.inter ({theirs.height:,} rows): rewrite the split files"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(CONFIGS), default="ml-100k")
    parser.add_argument("--split", choices=sorted(PROTOCOLS), default=None)
    parser.add_argument("--out", type=Path, default=SPLITS_DIR)
    parser.add_argument("--cache-dir", type=Path, default=FetchSettings().cache_dir)
    parser.add_argument("--mirror", type=Path, nargs="+", default=[ROOT.parent / "shared" / "data"])
    args = parser.parse_args()
    config, overrides = experiment_config(args.dataset, args.split)
    protocol = protocol_of(config)
    settings = FetchSettings(cache_dir=args.cache_dir, mirrors=tuple(args.mirror))
    frame, prepared = split_frame(config, settings)
    extra = {
        "dataset": args.dataset,
        "protocol": protocol,
        "config": CONFIGS[args.dataset],
        "overrides": overrides,
        "data_config": config.data.model_dump(mode="json"),
        "prepared": prepared,
    }
    manifest = write_split(frame, args.out / f"{args.dataset}-{protocol}", extra)
    for file, info in manifest["files"].items():
        print(f"{file}: {info['rows']:,} rows, {info['users']:,} users, {info['items']:,} items")


if __name__ == "__main__":
    main()
