"""Training and evaluating the sequential multi-task recommender (``model.name: sequential``).

The run's interaction examples become users' sequences in time order (timestamp, then the
split, then the interaction id: leave-one-out's held-out rows come after the user's
training rows). Training windows cover every training interaction as a target
(:class:`~mtlrec.training.sequences.SequenceLoader`) with the one Trainer, any weighting
strategy and early stopping on validation. Evaluation: auxiliary tasks on every held-out
example after its user's earlier-split history, and full ranking through the one ranking
protocol with ``state . v(item)`` (one matrix product per chunk of users).

``model.params``: the fields of :class:`mtlrec.models.architectures.SequentialArchitecture`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import polars as pl
import torch
from torch import Tensor

from mtlrec.config.experiment import ExperimentConfig
from mtlrec.core.types import ScoreFn, TaskSpec
from mtlrec.data.examples import SPLITS
from mtlrec.evaluation.accumulators import MultiTaskMetrics
from mtlrec.evaluation.model_metrics import flatten
from mtlrec.evaluation.protocol import RankingData, evaluate_ranking, ranking_data
from mtlrec.models.architectures import SequentialArchitecture
from mtlrec.models.heads import Head
from mtlrec.models.multitask import TaskModel
from mtlrec.models.sequential import SequentialRecommender, history_tokens
from mtlrec.models.sequential_factory import (
    sequential_model,
    sequential_params,
)
from mtlrec.pipeline.experiment import init_heads_from_priors, run_callbacks
from mtlrec.pipeline.run_data import RunData
from mtlrec.training.calibrate import Calibration, add_offsets, macro_f1_offsets
from mtlrec.training.refit import refit_heads
from mtlrec.training.sequences import FutureTargets, SequenceLoader, UserSequences
from mtlrec.training.trainer import Trainer, TrainerSettings
from mtlrec.weighting.base import weighting_for_tasks


def time_order(data: RunData) -> np.ndarray:
    """``(N,)`` each example's rank in time: timestamp, then split, then interaction id.

    Pair-level examples (one per ``(user, item)`` pair, e.g. Retailrocket's view / cart /
    purchase labels) carry no time: they are ranked by split, then row, which suits only
    an order-free use (``history_order`` ``shuffled`` or ``set``, checked by the caller)."""
    if data.examples.unit == "pair":
        split = data.examples.split.numpy().astype(np.int64)
        ranked = np.lexsort((np.arange(len(split)), split))
        order = np.empty(len(ranked), dtype=np.int64)
        order[ranked] = np.arange(len(ranked))
        return order
    inter = data.dataset.tables["interactions"]
    if data.examples.unit != "interaction" or inter.height != len(data.examples):
        raise ValueError(
            "the sequential model needs one example per interaction or per (user, item) pair"
        )
    frame = pl.DataFrame(
        {
            "t": inter["timestamp"].cast(pl.Int64).fill_null(0)
            if "timestamp" in inter.columns
            else pl.Series(np.zeros(inter.height, dtype=np.int64)),
            "s": data.examples.split.numpy(),
            "i": inter["interaction_id"].cast(pl.Int64),
        }
    ).with_row_index("row")
    ranked = frame.sort("t", "s", "i")["row"].to_numpy()
    order = np.empty(len(ranked), dtype=np.int64)
    order[ranked] = np.arange(len(ranked))
    return order


def sequential_specs(config: ExperimentConfig, data: RunData) -> dict[str, TaskSpec]:
    """The retrieval task (``multiclass`` over the catalogue) and every other configured task,
    multiclass ones class-weighted on the training split when ``balance_classes``."""
    params = sequential_params(config)
    n_items = len(data.entities.item_ids)
    tasks = config.tasks or {}
    chosen = tasks.get(params.retrieval_task)
    specs = {
        params.retrieval_task: TaskSpec(
            params.retrieval_task,
            "multiclass",
            n_items,
            loss=(chosen.loss if chosen is not None else None) or "ce",
            weight=chosen.weight if chosen is not None else 1.0,
        )
    }
    train = data.examples.subset("train")
    for name, spec in data.specs.items():
        if name == params.retrieval_task:
            continue
        weights = None
        if spec.kind == "multiclass" and params.balance_classes:
            labels = train.labels[name][train.masks[name]].long()
            counts = torch.bincount(labels, minlength=spec.n_outputs).float().clamp(min=1.0)
            weights = tuple((counts.sum() / (len(counts) * counts)).tolist())
        specs[name] = TaskSpec(
            name, spec.kind, spec.n_outputs, spec.loss, spec.weight, weights, spec.level
        )
    return specs


def item_review_content(data: RunData) -> tuple[Tensor, Tensor]:
    """What the TRAINING reviews say about each item: the sum ``(N_items, D)`` and count
    ``(N_items,)`` of their LM embeddings (reviews with text only). A training target's
    own review is in its item's sum; the loader hands it back (``content_leave_out``) so
    the model takes it out again."""
    features = data.examples.features
    # the frozen embeddings when the review task reads a tuned LM's (text.tune_reviews)
    reviews = features.get("review_content", features.get("own_review"))
    if reviews is None:
        raise ValueError("item_reviews needs the reviews' LM embeddings (a reviews table)")
    train = data.examples.split == 0
    items = data.examples.features["item_row"][train]
    n_items = len(data.entities.item_ids)
    total = torch.zeros(n_items, reviews.shape[1]).index_add_(0, items, reviews[train])
    count = torch.zeros(n_items).index_add_(0, items, reviews[train].ne(0).any(dim=-1).float())
    return total, count


def item_item_ease(data: RunData, l2: float) -> Tensor:
    """EASE's closed-form item-to-item weights ``(N_items, N_items)`` on the TRAINING
    interactions only (:class:`mtlrec.baselines.ease.EASERecommender`)."""
    from mtlrec.baselines.ease import EASERecommender

    ranking = ranking_data(data.examples, len(data.entities.user_ids), len(data.entities.item_ids))
    model = EASERecommender(l2=l2).fit(ranking.train)
    return torch.from_numpy(model.weights_)


def item_item_ease_folds(data: RunData, l2: float, folds: int, seed: int) -> tuple[Tensor, Tensor]:
    """Cross-fitted EASE weights for training: users split at random (``seed``) into
    ``folds`` groups, the weights of group ``k`` fitted on the TRAINING interactions of
    the other groups' users. Returns the weights ``(K, N_items, N_items)`` and each user's
    group ``(N_users,)``: a training target is then scored with weights its own user's
    interactions never shaped, as held-out items are (stacking's out-of-fold rule)."""
    from mtlrec.baselines.ease import EASERecommender

    if folds < 2:
        raise ValueError(f"model.params.item_item_folds must be >= 2, got {folds}")
    n_users, n_items = len(data.entities.user_ids), len(data.entities.item_ids)
    ranking = ranking_data(data.examples, n_users, n_items)
    group = np.random.default_rng(seed).permutation(n_users) % folds
    weights = []
    for k in range(folds):
        others = ranking.train.multiply((group != k).astype(np.float32)[:, None]).tocsr()
        weights.append(torch.from_numpy(EASERecommender(l2=l2).fit(others).weights_))
    return torch.stack(weights), torch.from_numpy(group.astype(np.int64))


def build_sequential_model(config: ExperimentConfig, data: RunData) -> SequentialRecommender:
    """The untrained sequential model of ``config`` over the run's items
    (:func:`~mtlrec.models.sequential_factory.sequential_model`), output biases at the
    training label priors."""
    params = sequential_params(config)
    reviews = data.examples.features.get("own_review")
    ease = None
    if params.item_item_ease is not None:
        ease = item_item_ease(data, params.item_item_ease)
    model = sequential_model(
        config,
        data.entities,
        sequential_specs(config, data),
        data.excluded_inputs,
        review_content=item_review_content(data) if params.item_reviews else None,
        review_dim=int(reviews.shape[1]) if reviews is not None else None,
        item_counts=torch.bincount(
            data.examples.features["item_row"][data.examples.split == 0],
            minlength=len(data.entities.item_ids),
        )
        if params.sampled_negatives
        else None,
        item_item_weights=ease,
    )
    init_heads_from_priors({t: cast(Head, h) for t, h in model.heads.items()}, data, None)
    return model


@dataclass
class SequentialData:
    """What training and evaluation read: training sequences, held-out histories per split
    (item rows of the earlier splits, oldest first), the ranking data, own reviews."""

    train: UserSequences
    histories: dict[int, dict[int, np.ndarray]]
    ranking: RankingData
    review_text: Tensor | None

    @classmethod
    def of(cls, data: RunData, params: SequentialArchitecture) -> SequentialData:
        """Sequences of ``data``; a test user's history is train + valid (``test_history:
        earlier``, what the exclusion rule treats as known) or train alone."""
        if data.examples.unit == "pair" and params.history_order == "time":
            raise ValueError(
                "pair-level examples carry no time order: set model.params.history_order: "
                "shuffled or set (an order-free history)"
            )
        order = time_order(data)
        items = data.examples.features["item_row"].numpy()
        train = UserSequences.build(data.examples, order, [0])
        test = (
            train
            if params.test_history == "train"
            else (UserSequences.build(data.examples, order, [0, 1]))
        )
        histories = {
            split: {user: items[rows] for user, rows in known.examples.items()}
            for split, known in ((1, train), (2, test))
        }
        return cls(
            train,
            histories,
            ranking_data(data.examples, len(data.entities.user_ids), len(data.entities.item_ids)),
            data.examples.features.get("own_review"),
        )


@dataclass(frozen=True)
class UserStates:
    """The model's state after each user's known history, for the users of one split:
    ``users`` ``(U,)`` sorted user rows, ``states`` ``(U, dim)``. Computed once, read by the
    auxiliary heads (every held-out example) and by ranking (every user)."""

    users: np.ndarray
    states: Tensor

    def of(self, user_rows: np.ndarray) -> Tensor:
        """``(b, dim)``: the states of ``user_rows`` ``(b,)`` (users of this split)."""
        at = np.searchsorted(self.users, user_rows)
        if len(at) and (at.max() >= len(self.users) or (self.users[at] != user_rows).any()):
            raise KeyError("a user without a state here: not a user of this split")
        return self.states[torch.from_numpy(at)]


def _history_batch(
    histories: Mapping[int, np.ndarray], users: Iterable[int], max_len: int
) -> Tensor:
    """Left-padded history tokens ``(b, max_len)`` of ``users`` (no history: none)."""
    empty = np.zeros(0, dtype=np.int64)
    return torch.from_numpy(
        np.stack([history_tokens(histories.get(int(u), empty), max_len) for u in users])
    )


@torch.inference_mode()
def user_states(
    model: SequentialRecommender,
    histories: Mapping[int, np.ndarray],
    users: np.ndarray,
    max_len: int,
    batch_size: int = 1024,
) -> UserStates:
    """The state after each of ``users``' (distinct rows) history ``histories[user]`` (item
    rows, oldest first; its last ``max_len``), in batches of ``batch_size`` users."""
    model.eval()
    users = np.unique(users)
    items = model.items()
    chunks = [
        model.states(_history_batch(histories, users[at : at + batch_size], max_len), items)[
            :, -1
        ].float()
        for at in range(0, len(users), batch_size)
    ]
    dim = int(items.shape[1])
    return UserStates(users, torch.cat(chunks) if chunks else torch.zeros(0, dim))


def held_out_outputs(
    data: RunData,
    model: SequentialRecommender,
    seq: SequentialData,
    params: SequentialArchitecture,
    split: int,
    tasks: Sequence[str],
    states: UserStates | None = None,
    batch_size: int = 4096,
) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
    """The model's outputs of ``tasks`` on every held-out example of ``split`` (index in
    :data:`SPLITS`), each scored after its user's earlier history (``states``: those
    states, computed here when None; heads run ``batch_size`` examples at a time), with the
    labels and masks: three ``task -> (N_split, ...)`` dicts in example order."""
    examples = data.examples
    rows = torch.from_numpy(np.flatnonzero(examples.split.numpy() == split))
    users = examples.features["user_row"][rows].numpy()
    if states is None:
        states = user_states(model, seq.histories[split], users, params.scoring_len)
    item_rows = examples.features["item_row"][rows]
    outputs: dict[str, list[Tensor]] = {t: [] for t in tasks}
    with torch.inference_mode():
        model.eval()
        items = model.items()
        for at in range(0, len(rows), batch_size):  # memory bounded by the chunk
            part = slice(at, at + batch_size)
            review = seq.review_text[rows[part]] if seq.review_text is not None else None
            targets = item_rows[part]
            predicted = model.head_outputs(
                states.of(users[part]), items[targets], targets, tasks, review
            )
            for task in tasks:
                outputs[task].append(predicted[task].float())
    return (
        {t: torch.cat(v) if v else torch.zeros(0) for t, v in outputs.items()},
        {t: examples.labels[t][rows] for t in tasks},
        {t: examples.masks[t][rows] for t in tasks},
    )


def user_score_fn(
    model: SequentialRecommender, histories: Mapping[int, np.ndarray], max_len: int
) -> ScoreFn:
    """A ranking score function: user rows ``(b,)`` -> ``state . v(item)`` ``(b, N_items)``
    after each user's history."""

    @torch.inference_mode()
    def score(user_rows: Tensor) -> Tensor:
        model.eval()
        tokens = _history_batch(histories, user_rows.tolist(), max_len)
        return model.score_items(tokens).float()

    return score


def states_score_fn(
    model: SequentialRecommender,
    states: UserStates,
    histories: Mapping[int, np.ndarray],
    max_len: int,
) -> ScoreFn:
    """:func:`user_score_fn` from precomputed ``states`` (the same scores): user rows
    ``(b,)`` of their split -> ``(b, N_items)``."""
    with torch.inference_mode():
        model.eval()
        items = model.items()

    @torch.inference_mode()
    def score(user_rows: Tensor) -> Tensor:
        model.eval()
        rows = user_rows.cpu().numpy()
        tokens = (
            _history_batch(histories, rows.tolist(), max_len) if model.reads_history_items else None
        )
        return model.score_after(states.of(rows), tokens, items).float()

    return score


def evaluate_sequential(
    config: ExperimentConfig,
    data: RunData,
    model: SequentialRecommender,
    seq: SequentialData,
    splits: Sequence[str] = ("valid", "test"),
    progress: bool = False,
    ranking: bool = True,
    states: Mapping[str, UserStates] | None = None,
) -> dict[str, Any]:
    """Per-task metrics (all held-out examples, and the cold-item slice) and full ranking
    per split, in the shape of :func:`mtlrec.pipeline.evaluate.evaluate_run` (``progress``:
    a progress bar over the ranked users; ``ranking=False``: the per-task metrics alone,
    for a stage that changes no retrieval score). The users' states of each split are
    computed once for both; ``states``: split -> those states, given (a stage that
    changes only the heads computes them once for all its epochs)."""
    params = sequential_params(config)
    aux = [t for t in model.specs if t != params.retrieval_task]
    tracked = [model.specs[t] for t in aux]
    results: dict[str, Any] = {}
    for split in splits:
        at = SPLITS.index(split)
        rows: dict[str, dict[str, float]] = {}
        results[split] = rows
        if not aux and not ranking:
            continue
        known = states[split] if states is not None and split in states else None
        if known is None:
            users = data.examples.features["user_row"][data.examples.split == at].numpy()
            known = user_states(model, seq.histories[at], users, params.scoring_len)
        if aux:
            outputs, labels, masks = held_out_outputs(data, model, seq, params, at, aux, known)
            cold = data.examples.cold_item[data.examples.split == at]
            for name, keep in (("", None), (" (cold items)", cold)):
                if keep is not None and not bool(keep.any()):
                    continue
                metrics = MultiTaskMetrics(tracked)
                pick = slice(None) if keep is None else keep
                metrics.update(
                    {t: outputs[t][pick] for t in aux},
                    {t: labels[t][pick] for t in aux},
                    {t: masks[t][pick] for t in aux},
                )
                rows.update(
                    {f"{t}{name}": v for t, v in metrics.compute().items() if v.get("n", 0)}
                )
        if not ranking:
            continue
        vectors = data.entities.tables.get("items.text")
        slices = evaluate_ranking(
            seq.ranking,
            split,
            states_score_fn(model, known, seq.histories[at], params.scoring_len),
            config.evaluation.ks,
            diversity_vectors=None if vectors is None else vectors.numpy(),
            progress=progress,
        )
        rows.update({f"ranking ({name})": values for name, values in slices.items()})
    return results


def evaluate_saved_state(
    config: ExperimentConfig, data: RunData, state: Mapping[str, Tensor]
) -> dict[str, Any]:
    """Valid and test results of the sequential model with the saved weights ``state``."""
    model = build_sequential_model(config, data)
    model.load_state_dict(state)
    seq = SequentialData.of(data, sequential_params(config))
    return evaluate_sequential(config, data, model, seq, progress=True)


def train_sequential(
    config: ExperimentConfig,
    data: RunData,
    run_dir: Path,
    resume: bool = False,
    progress: bool = True,
) -> tuple[SequentialRecommender, Trainer, SequentialData]:
    """Build and train the sequential model; returns it with its best weights."""
    torch.manual_seed(config.seed)
    params = sequential_params(config)
    model = build_sequential_model(config, data)
    if params.item_item_folds is not None:
        if params.item_item_ease is None:
            raise ValueError("item_item_folds cross-fits item_item_ease: set item_item_ease")
        model.set_training_folds(
            *item_item_ease_folds(data, params.item_item_ease, params.item_item_folds, config.seed)
        )
    if config.training.refit_heads is not None:
        check_calibrated_tasks(model, config.training.refit_heads.calibrate)
    seq = SequentialData.of(data, params)
    loader = SequenceLoader(
        data.examples,
        seq.train,
        params.max_len,
        config.training.batch_size,
        params.retrieval_task,
        list(model.specs),
        seed=config.seed,
        review_text=seq.review_text,
        content_text=data.examples.features.get("review_content"),
        stride=params.stride,
        leave_out_own_review=params.item_reviews,
        sampled_softmax=bool(params.sampled_negatives),
        history_order=params.history_order,
        future=(
            FutureTargets(
                params.future_window,
                params.future_weight,
                model.specs[params.retrieval_task].n_outputs,  # N_items classes
            )
            if params.future_window
            else None
        ),
    )
    weighting = weighting_for_tasks(
        config.weighting.name,
        {n: s.weight for n, s in model.specs.items()},
        **config.weighting.params,
    )
    callbacks = run_callbacks(config, run_dir, progress)

    def validate(_: TaskModel) -> dict[str, float]:
        results = evaluate_sequential(config, data, model, seq, ("valid",))
        return flatten(results["valid"], "valid")

    trainer = Trainer(
        model,
        model.specs,
        weighting,
        TrainerSettings.from_config(config.training, seed=config.seed),
        checkpoint_dir=run_dir / "checkpoints",
        callbacks=callbacks,
    )
    last = run_dir / "checkpoints" / "last.pt"
    trainer.fit(loader, validate, resume_from=last if resume and last.exists() else None)
    refit = config.training.refit_heads
    if refit is not None:
        tasks = refit.tasks if refit.tasks is not None else list(model.heads)
        valid_users = data.examples.features["user_row"][data.examples.split == 1].numpy()
        frozen = {"valid": user_states(model, seq.histories[1], valid_users, params.scoring_len)}
        result = refit_heads(
            model,
            {t: model.heads[t] for t in model.heads},
            model.specs,
            tasks,
            loader,
            # the heads alone: the frozen shared part's states and retrieval scores do not
            # change, so the validation users' states are computed once
            lambda: flatten(
                evaluate_sequential(
                    config, data, model, seq, ("valid",), ranking=False, states=frozen
                )["valid"],
                "valid",
            ),
            refit.epochs,
            refit.patience,
            refit.lr,
            forward=lambda features: model(features, tasks),
        )
        report: dict[str, Any] = asdict(result)
        if refit.calibrate:
            report["calibration"] = {
                task: asdict(c)
                for task, c in calibrate_heads(config, data, model, seq, refit.calibrate).items()
            }
        (run_dir / "refit_heads.json").write_text(json.dumps(report, indent=1) + "\n")
    return model, trainer, seq


def check_calibrated_tasks(model: SequentialRecommender, tasks: Sequence[str]) -> None:
    """Raise ``ValueError`` unless every task of ``tasks`` has a multiclass head in
    ``model`` (checked before training, so a wrong name costs no training run)."""
    heads = {t: model.specs[t] for t in model.heads}
    wrong = [t for t in tasks if t not in heads or heads[t].kind != "multiclass"]
    if wrong:
        multiclass = sorted(t for t, s in heads.items() if s.kind == "multiclass")
        raise ValueError(
            f"training.refit_heads.calibrate: {wrong} are not multiclass tasks of this model "
            f"(multiclass tasks: {multiclass})"
        )


def calibrate_heads(
    config: ExperimentConfig,
    data: RunData,
    model: SequentialRecommender,
    seq: SequentialData,
    tasks: Sequence[str],
) -> dict[str, Calibration]:
    """For each multiclass task of ``tasks``: decision offsets chosen on the validation
    split's macro-F1 (:func:`mtlrec.training.calibrate.macro_f1_offsets`), added to the
    head's output bias in place; returns them with the validation macro-F1 before/after."""
    params = sequential_params(config)
    check_calibrated_tasks(model, tasks)
    at = SPLITS.index("valid")
    outputs, labels, masks = held_out_outputs(data, model, seq, params, at, list(tasks))
    calibrations = {}
    for task in tasks:
        head = model.heads[task]
        bias = head.output_bias() if isinstance(head, Head) else None
        if bias is None:
            raise ValueError(f"calibrate: the head of {task!r} has no output bias")
        known = masks[task].bool()
        calibration = macro_f1_offsets(outputs[task][known], labels[task][known].long())
        add_offsets(bias, calibration.offsets)
        calibrations[task] = calibration
    return calibrations
