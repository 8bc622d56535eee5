"""RecBole's Pop, ItemKNN, BPR, LightGCN and SASRec on the peers split files, full ranking.

Reads ``benchmarks/peers/splits/<name>/`` (written by ``split_files.py``; every file's
sha256 is checked against ``split.json``) through RecBole's ``benchmark_filename``
mechanism, so RecBole trains on exactly mtlrec's training split and early-stops on its
validation split (``valid_metric: NDCG@10``). Per model: RecBole's own test metrics
(``recbole_test``) and the same model's scores evaluated by mtlrec's evaluator on
mtlrec's protocol (``test``, the headline), with parameters and wall time.

Protocol check (RecBole 1.2.1, verified on ml-100k-random by comparing the eval loaders'
``uid2history_item`` / ``uid2positive_item`` with the split files, user by user):

- general models (Pop, ItemKNN, BPR, LightGCN): validation ranks all items except the
  user's training items, test all except training + validation items; the relevant items
  are the split's items; users without one are not averaged. That is mtlrec's protocol
  (``mtlrec.evaluation.protocol``) as long as no (user, item) pair lies in two splits
  (RecBole keeps such a pair rankable and relevant, mtlrec excludes it), which
  ``split_files.py`` refuses to write. Both evaluators then give the same numbers up to
  the order of tied scores.
- sequential models (SASRec): RecBole excludes nothing (a user's history stays rankable),
  so ``recbole_test`` differs from mtlrec's protocol; ``test`` masks train + validation
  items as mtlrec does. Early stopping still uses RecBole's unmasked validation NDCG.
  The split files are turned into RecBole's sequence format
  (``splits/<name>-seq/``): one training row per training item with the up to
  ``MAX_ITEM_LIST_LENGTH`` (50) items before it, the validation item after all training
  items, the test item after training + validation, in the files' time order.

Shims (RecBole 1.2.1 with numpy 2 / scipy 1.12+ / torch 2.6+): ``np.float_``, ``np.complex_`` and
``np.unicode_`` are set back before RecBole's ``Config`` re-aliases ``np.float`` & co,
and ``dok_matrix._update`` (LightGCN's adjacency) is given back;
the best checkpoint is loaded with ``weights_only=False`` (RecBole pickles its config in
it) by this script, not by RecBole's ``evaluate``; RecBole runs in a temporary folder (it
writes ``log_tensorboard/`` and checkpoints into the working directory).
``recbole.quick_start`` is never imported (it imports ``ray``).

    .venv-bench/bin/python benchmarks/peers/recbole_runner.py --split ml-100k-random \\
        --models Pop ItemKNN BPR LightGCN --seed 0
    .venv-bench/bin/python benchmarks/peers/recbole_runner.py --split ml-100k-loo \\
        --models SASRec --seed 0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import polars as pl
import torch
from split_files import read_split  # benchmarks/peers/ is the script's folder

from mtlrec.evaluation.ranking import TopKMetrics

ROOT = Path(__file__).resolve().parents[2]
SPLITS_DIR = ROOT / "benchmarks" / "peers" / "splits"
SPLITS = ("train", "valid", "test")
KS = (10,)
MAX_ITEM_LIST_LENGTH = 50
SEQUENTIAL = frozenset({"SASRec", "GRU4Rec"})
STOPPING_STEP = 10
"""Epochs without a better validation NDCG@10 before training stops (RecBole's default)."""
RESUME_DIR = ROOT / ".cache" / "recbole-resume"
MODEL_PARAMS: dict[str, dict[str, Any]] = {
    "Pop": {},
    "ItemKNN": {},
    "BPR": {},
    "LightGCN": {},
    "SASRec": {"loss_type": "CE", "train_neg_sample_args": None},
    "GRU4Rec": {"loss_type": "CE", "train_neg_sample_args": None},
}
"""RecBole's default hyper-parameters, plus what a model needs to run (SASRec with CE).

RecBole 1.2.1's Pop is not training-set popularity: it counts an item once per training
batch however often the item occurs in it (RecBole issues #1844, #2198), and its pointwise
loader feeds it the sampled negatives too. On ml-100k-random (1 epoch): test NDCG@10 0.1188
with the defaults, 0.0817 without sampled negatives, 0.1393 for exact training counts
(mtlrec's ``popularity`` baseline: 0.1387). The defaults are kept: it is RecBole's Pop."""


def numpy_shims() -> None:
    """Let RecBole 1.2.1 run on numpy 2 (``Config.compatibility_settings``) and on scipy
    1.12+ (LightGCN/NGCF's adjacency matrix calls ``dok_matrix._update``, since removed:
    the entries now live in ``dok_matrix._dict``)."""
    import scipy.sparse

    for old, new in {"float_": np.float64, "complex_": np.complex128, "unicode_": np.str_}.items():
        if not hasattr(np, old):
            setattr(np, old, new)
    dok = scipy.sparse.dok_matrix
    if not hasattr(dok, "_update"):
        dok._update = lambda self, entries: self._dict.update(entries)  # type: ignore[attr-defined]


def write_sequences(folder: Path, frames: dict[str, pl.DataFrame], max_len: int) -> Path:
    """RecBole's sequence files (``user_id``, ``item_id_list``, ``item_id``) beside ``folder``."""
    name = f"{folder.name}-seq"
    out = folder.parent / name
    out.mkdir(exist_ok=True)
    history: dict[str, list[str]] = {}
    for split in SPLITS:
        rows: list[tuple[str, str, str]] = []
        for user, item in frames[split].select("user_id", "item_id").iter_rows():
            seen = history.setdefault(user, [])
            if seen:
                rows.append((user, " ".join(seen[-max_len:]), item))
            seen.append(item)
        header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
        lines = "".join(f"{u}\t{s}\t{i}\n" for u, s, i in rows)
        (out / f"{name}.{split}.inter").write_text(header + lines)
    return out


def recbole_config(model: str, seed: int, epochs: int, workdir: Path) -> dict[str, Any]:
    sequential = model in SEQUENTIAL
    config: dict[str, Any] = {
        "benchmark_filename": list(SPLITS),
        "load_col": {
            "inter": ["user_id", "item_id_list", "item_id"]
            if sequential
            else ["user_id", "item_id"]
        },
        "eval_args": {
            "split": None,
            "order": "TO" if sequential else "RO",
            "group_by": "user",
            "mode": "full",
        },
        "metrics": ["Recall", "NDCG", "MRR", "Hit"],
        "topk": list(KS),
        "valid_metric": "NDCG@10",
        "epochs": epochs,
        "stopping_step": STOPPING_STEP,
        "seed": seed,
        "reproducibility": True,
        "device": "cpu",
        "use_gpu": False,
        "worker": 0,
        "show_progress": False,
        "checkpoint_dir": str(workdir / "saved"),
        "user_inter_num_interval": "[0,inf)",
        "item_inter_num_interval": "[0,inf)",
        **MODEL_PARAMS[model],
    }
    if sequential:
        config["alias_of_item_id"] = ["item_id_list"]
        config["MAX_ITEM_LIST_LENGTH"] = MAX_ITEM_LIST_LENGTH
    return config


@torch.no_grad()
def mtlrec_protocol(
    model: Any, loader: Any, dataset: Any, frames: dict[str, pl.DataFrame]
) -> dict[str, float]:
    """Test metrics of ``model`` by mtlrec's evaluator: every item ranked, the user's
    train + valid items excluded, the test items relevant (column 0, RecBole's padding,
    excluded too)."""
    model.eval()
    users = dataset.field2token_id["user_id"]
    items = dataset.field2token_id["item_id"]
    n_items = dataset.item_num

    def by_user(frame: pl.DataFrame) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for user, item in frame.select("user_id", "item_id").iter_rows():
            out.setdefault(users[user], []).append(items[item])
        return out

    relevant = by_user(frames["test"])
    excluded = by_user(pl.concat([frames["train"], frames["valid"]]))
    metrics = TopKMetrics(KS)
    done: set[int] = set()
    for interaction, *_ in loader:
        uids = interaction["user_id"].tolist()
        if done.intersection(uids) or len(set(uids)) != len(uids):
            raise ValueError("a user has several test rows: the protocol wants one per user")
        done.update(uids)
        scores = model.full_sort_predict(interaction).view(len(uids), n_items).float()
        rel = torch.zeros(len(uids), n_items, dtype=torch.bool)
        exc = torch.zeros(len(uids), n_items, dtype=torch.bool)
        exc[:, 0] = True
        for row, uid in enumerate(uids):
            rel[row, relevant.get(uid, [])] = True
            exc[row, excluded.get(uid, [])] = True
        metrics.update(scores, rel, exc)
    return metrics.compute()


class ResumeState:
    """One run's resumable state under ``RESUME_DIR/<split>/<model>-seed<seed>/``.

    After every validated epoch ``last.pth`` holds RecBole's full trainer state (model,
    optimizer, epoch, epochs without improvement, best score) and ``epochs.json`` the epoch
    log; ``best.pth`` is RecBole's best checkpoint; ``result.json`` marks the run finished.
    A killed run restarts from its last epoch (RNG streams restart from the seed, so a
    resumed run is not bit-identical to an uninterrupted one)."""

    def __init__(self, split: str, model: str, seed: int) -> None:
        self.folder = RESUME_DIR / split / f"{model}-seed{seed}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.last = self.folder / "last.pth"
        self.best = self.folder / "best.pth"
        self.log_file = self.folder / "epochs.json"
        self.result_file = self.folder / "result.json"

    def log(self) -> list[dict[str, float]]:
        return json.loads(self.log_file.read_text()) if self.log_file.exists() else []

    def result(self) -> dict[str, Any] | None:
        return json.loads(self.result_file.read_text()) if self.result_file.exists() else None


def _attach_resume(
    trainer: Any, state: ResumeState
) -> tuple[list[dict[str, float]], Callable[[int, float], None]]:
    """Resume ``trainer`` from ``state`` when it has an epoch and time every training
    epoch. Returns the (live) epoch log and the ``fit`` callback that saves the trainer
    state after every validated epoch."""
    epochs = state.log()
    if state.last.exists():  # RecBole's resume_checkpoint, with weights_only=False
        checkpoint = torch.load(state.last, map_location="cpu", weights_only=False)
        trainer.start_epoch = checkpoint["epoch"] + 1
        trainer.cur_step = checkpoint["cur_step"]
        trainer.best_valid_score = checkpoint["best_valid_score"]
        trainer.model.load_state_dict(checkpoint["state_dict"])
        trainer.model.load_other_parameter(checkpoint.get("other_parameter"))
        trainer.optimizer.load_state_dict(checkpoint["optimizer"])
    trainer.saved_model_file = str(state.best)
    train_epoch = trainer._train_epoch
    timing: dict[str, float] = {}

    def timed_train_epoch(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        loss = train_epoch(*args, **kwargs)
        timing["train_s"] = time.perf_counter() - start
        return loss

    def after_validation(epoch_idx: int, valid_score: float) -> None:
        epochs.append({"epoch": epoch_idx, "valid_ndcg@10": float(valid_score), **timing})
        trainer._save_checkpoint(epoch_idx, verbose=False, saved_model_file=str(state.last))
        state.log_file.write_text(json.dumps(epochs, indent=1) + "\n")

    trainer._train_epoch = timed_train_epoch
    return epochs, after_validation


def run_model(name: str, split: Path, seed: int, epochs: int) -> dict[str, Any]:
    """Train ``name`` on the split (RecBole's trainer, early stopping on validation with
    patience ``STOPPING_STEP``; sequential models resume from ``RESUME_DIR``) and evaluate
    it on test, both ways."""
    numpy_shims()
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    manifest, frames = read_split(split)
    sequential = name in SEQUENTIAL
    resume = ResumeState(split.name, name, seed) if sequential else None
    if resume is not None and (done := resume.result()) is not None and done["epochs"] == epochs:
        return done
    folder = write_sequences(split, frames, MAX_ITEM_LIST_LENGTH) if sequential else split
    start = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as tmp,
        contextlib.chdir(tmp),
        mock.patch.object(sys, "argv", sys.argv[:1]),  # RecBole's Config parses --key=value
    ):
        config = Config(
            model=name,
            dataset=folder.name,
            config_dict={
                "data_path": str(folder.parent),
                **recbole_config(name, seed, epochs, Path(tmp)),
            },
        )
        init_seed(config["seed"], config["reproducibility"])
        dataset = create_dataset(config)
        train, valid, test = data_preparation(config, dataset)
        model = get_model(config["model"])(config, train._dataset).to(config["device"])
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        epoch_log, callback = _attach_resume(trainer, resume) if resume else (None, None)
        fit_start = time.perf_counter()
        finished = epoch_log is not None and _stopped(epoch_log, epochs)
        best_valid = max((e["valid_ndcg@10"] for e in epoch_log or []), default=0.0)
        if not finished:
            best_valid, _ = trainer.fit(
                train, valid, saved=True, show_progress=False, callback_fn=callback
            )
        fit_s = time.perf_counter() - fit_start
        checkpoint = torch.load(trainer.saved_model_file, map_location="cpu", weights_only=False)
        model.load_state_dict(checkpoint["state_dict"])
        model.load_other_parameter(checkpoint.get("other_parameter"))
        recbole_test = trainer.evaluate(test, load_best_model=False, show_progress=False)
        test_metrics = mtlrec_protocol(model, test, dataset, frames)
        n_train = len(train.dataset)
    row: dict[str, Any] = {
        "model": name,
        "seed": seed,
        "split": manifest["name"],
        "protocol": manifest["protocol"],
        "test": test_metrics,
        "recbole_test": {k: float(v) for k, v in recbole_test.items()},
        "recbole_best_valid_ndcg@10": float(best_valid),
        "parameters": sum(p.numel() for p in model.parameters()),
        "fit_s": round(fit_s, 2),
        "wall_s": round(time.perf_counter() - start, 2),
        "epochs": epochs,
        "epochs_run": len(trainer.train_loss_dict),
        "stopping_step": STOPPING_STEP,
        "hyper_parameters": {**MODEL_PARAMS[name]},
    }
    if epoch_log is not None and resume is not None:  # resumable: the log has every epoch
        train_s = [e["train_s"] for e in epoch_log if "train_s" in e]
        row["epochs_run"] = len(epoch_log)
        row["best_epoch"] = int(checkpoint["epoch"])
        row["fit_s"] = round(sum(train_s), 2)
        row["train_rows"] = n_train
        row["train_samples_per_s"] = round(n_train / float(np.median(train_s)), 1)
        resume.result_file.write_text(json.dumps(row, indent=2) + "\n")
    return row


def _stopped(epoch_log: list[dict[str, float]], epochs: int) -> bool:
    """Whether a logged run already ended as RecBole's ``early_stopping`` ends it: more
    than ``STOPPING_STEP`` epochs after the last epoch that matched the best score, or at
    the epoch cap."""
    if not epoch_log:
        return False
    scores = [e["valid_ndcg@10"] for e in epoch_log]
    last_best = max(i for i, score in enumerate(scores) if score >= max(scores))
    return len(scores) - 1 - last_best > STOPPING_STEP or epoch_log[-1]["epoch"] + 1 >= epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="ml-100k-random", help="a folder in --splits")
    parser.add_argument("--splits", type=Path, default=SPLITS_DIR)
    parser.add_argument("--models", nargs="+", choices=sorted(MODEL_PARAMS), default=["Pop"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=300, help="RecBole's default; early stops")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=None, help="JSON (default: results/peers)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    results = []
    for name in args.models:
        row = run_model(name, args.splits / args.split, args.seed, args.epochs)
        results.append(row)
        test = row["test"]
        print(
            f"{name:10s} ndcg@10 {test['ndcg@10']:.4f} recall@10 {test['recall@10']:.4f} "
            f"(recbole ndcg@10 {row['recbole_test']['ndcg@10']:.4f}) {row['wall_s']:.1f}s"
        )
    out = args.out or ROOT / "benchmarks" / "results" / "peers" / (
        f"recbole_{args.split}_seed{args.seed}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "framework": "RecBole 1.2.1",
        "split": args.split,
        "command": "python benchmarks/peers/recbole_runner.py " + " ".join(sys.argv[1:]),
        "threads": torch.get_num_threads(),
        "models": results,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
