"""Users' interaction sequences in time order, and the mini-batches a sequential model
trains on: every position of a user's training history predicts the next item.

Tokens (see :mod:`mtlrec.models.sequential`): ``0`` padding, ``1`` the start token,
``2 + item_row`` an item; histories are left-padded so the last position is the latest.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mtlrec.core.types import Batch
from mtlrec.data.examples import ExampleSet
from mtlrec.models.sequential import OFFSET, PAD, START, history_tokens


@dataclass(frozen=True)
class UserSequences:
    """Each user's examples of some splits in time order: ``examples[u]`` holds example
    indices ``(n_u,)`` into the run's :class:`ExampleSet`."""

    examples: dict[int, np.ndarray]

    @classmethod
    def build(cls, examples: ExampleSet, order: np.ndarray, splits: Sequence[int]) -> UserSequences:
        """The examples whose split is in ``splits``, per user, sorted by ``order`` ``(N,)``
        (a time rank: timestamp, then the split's tie order)."""
        keep = np.flatnonzero(np.isin(examples.split.numpy(), list(splits)))
        users = examples.features["user_row"].numpy()[keep]
        ranked = keep[np.lexsort((order[keep], users))]
        users = examples.features["user_row"].numpy()[ranked]
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        ends = np.r_[starts[1:], len(ranked)]
        return cls({int(users[s]): ranked[s:e] for s, e in zip(starts, ends, strict=True)})


class SequenceLoader:
    """Training windows over users' training sequences, shuffled per ``(seed, epoch)``.

    A user's tokens ``[START, i_1, ..., i_{n-1}]`` with targets ``[i_1, ..., i_n]`` are cut
    from the end into windows of ``max_len`` positions every ``stride`` positions
    (default ``max_len``: disjoint windows); only a window's last ``stride`` positions are
    targets (all of the user's first window), so every training interaction is a target
    once per epoch, and with ``stride < max_len`` each one after at least
    ``max_len - stride`` earlier items (as at evaluation, where the history is full).
    ``history_order="shuffled"`` puts each user's training items in a new random order
    every epoch (for random splits, where held-out items are not the latest: each
    position then predicts a random other item of the user from a random subset);
    ``"set"`` makes each row a set of up to ``max_len`` of a user's items in a new random
    order every epoch, every item a target predicted from the row's other items (what a
    random split's held-out item is predicted from: the user's other items; the model
    must read rows that way in training, see ``set_targets`` of the sequential model).
    ``future`` (``time`` order only) makes the retrieval label a distribution over the
    catalogue (see :class:`FutureTargets`).

    A batch holds ``positions`` ``(P,)`` (the target item rows: what samples/s counts),
    ``history`` and ``target_item`` ``(B, L)`` and, with ``review_text``, ``own_review``
    (and with ``leave_out_own_review`` ``content_leave_out``) ``(B, L, D)`` (see
    :func:`sequence_batch`); labels and masks
    ``(P,)`` of every task in ``labels`` over the target positions, row-major. The
    ``retrieval_task`` label is the target item row.
    """

    def __init__(
        self,
        examples: ExampleSet,
        sequences: UserSequences,
        max_len: int,
        batch_size: int,
        retrieval_task: str,
        tasks: Sequence[str],
        seed: int = 0,
        review_text: Tensor | None = None,
        stride: int | None = None,
        leave_out_own_review: bool = False,
        sampled_softmax: bool = False,
        history_order: str = "time",
        content_text: Tensor | None = None,
        future: FutureTargets | None = None,
    ) -> None:
        step = max_len if stride is None else stride
        if not 0 < step <= max_len:
            raise ValueError(f"stride must be in 1..max_len ({max_len}), got {stride}")
        self.examples, self.max_len, self.batch_size = examples, max_len, batch_size
        self.retrieval_task, self.tasks, self.seed = retrieval_task, list(tasks), seed
        self.review_text, self.leave_out_own_review = review_text, leave_out_own_review
        self.content_text = content_text
        self.sampled_softmax = sampled_softmax
        if history_order not in ("time", "shuffled", "set"):
            raise ValueError(
                f"history_order must be 'time', 'shuffled' or 'set', got {history_order!r}"
            )
        self.history_order, self.step = history_order, step
        self.sequences = [rows for rows in sequences.examples.values()]
        if future is not None and (history_order != "time" or sampled_softmax):
            raise ValueError("future targets need history_order 'time' and the full softmax")
        # with future targets, beside them: each training example's successor in its user's
        # sequence (-1: the last one)
        self.future: tuple[FutureTargets, Tensor] | None = None
        if future is not None:
            next_example = torch.full((len(examples.split),), -1, dtype=torch.long)
            for rows in self.sequences:
                next_example[torch.from_numpy(rows[:-1])] = torch.from_numpy(rows[1:])
            self.future = (future, next_example)
        self.history, self.target_example = self._windows(self.sequences)

    def _windows(self, sequences: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
        """History tokens and target example indices ``(W, max_len)`` of every window."""
        if self.history_order == "set":
            return self._sets(sequences)
        items = self.examples.features["item_row"].numpy()
        max_len, step = self.max_len, self.step
        history, targets = [], []
        for rows in sequences:
            tokens = np.r_[START, items[rows[:-1]] + OFFSET]
            end = len(rows)
            while end > 0:
                begin = max(0, end - max_len)
                window = np.full(max_len, PAD, dtype=np.int64)
                target = np.full(max_len, -1, dtype=np.int64)
                window[max_len - (end - begin) :] = tokens[begin:end]
                # targets: the window's last `step` positions (all of the first window's),
                # so each one is a target once, after at least max_len - step others
                first = begin if begin == 0 else end - step
                target[max_len - (end - first) :] = rows[first:end]
                history.append(window)
                targets.append(target)
                end = 0 if begin == 0 else end - step
        if not history:
            return torch.zeros(0, 0, dtype=torch.long), torch.zeros(0, 0, dtype=torch.long)
        return torch.from_numpy(np.stack(history)), torch.from_numpy(np.stack(targets))

    def _sets(self, sequences: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
        """``set`` rows ``(W, max_len)``: the start token, then a piece of at most
        ``max_len - 1`` of a user's items (left-padded, as :func:`history_tokens` writes a
        history); every item is a target at its own position, predicted by the model from
        the row's other tokens (the start token and the piece's other items)."""
        items = self.examples.features["item_row"].numpy()
        size = max(self.max_len - 1, 1)
        history, targets = [], []
        for rows in sequences:
            for begin in range(0, len(rows), size):
                piece = rows[begin : begin + size]
                window = history_tokens(items[piece], self.max_len)
                target = np.full(self.max_len, -1, dtype=np.int64)
                target[self.max_len - len(piece) :] = piece
                history.append(window)
                targets.append(target)
        if not history:
            return torch.zeros(0, 0, dtype=torch.long), torch.zeros(0, 0, dtype=torch.long)
        return torch.from_numpy(np.stack(history)), torch.from_numpy(np.stack(targets))

    def __len__(self) -> int:
        return -(-len(self.history) // self.batch_size)

    @property
    def n_positions(self) -> int:
        """Training targets per epoch."""
        return int((self.target_example >= 0).sum())

    def batches(self, epoch: int) -> Iterator[Batch]:
        """The epoch's batches; their order depends on ``(seed, epoch)`` only."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        history, target_example = self.history, self.target_example
        if self.history_order != "time":  # each user's items in a new random order
            rng = np.random.default_rng(self.seed * 100_003 + epoch)
            history, target_example = self._windows([rng.permutation(r) for r in self.sequences])
        order = torch.randperm(len(history), generator=generator)
        for start in range(0, len(order), self.batch_size):
            pick = order[start : start + self.batch_size]
            yield self.batch(history[pick], target_example[pick])

    def batch(self, history: Tensor, target_example: Tensor) -> Batch:
        """A batch from history tokens and target example indices ``(B, L)`` (-1: none)."""
        return sequence_batch(
            self.examples,
            history,
            target_example,
            self.retrieval_task,
            self.tasks,
            self.review_text,
            self.leave_out_own_review,
            self.sampled_softmax,
            self.content_text,
            self.future,
        )


@dataclass(frozen=True)
class FutureTargets:
    """A soft retrieval target: ``1 - weight`` on the next item, ``weight`` spread evenly
    over the ``window`` items after it in the user's training sequence (the next item
    alone where none follow), as a distribution over ``n_items`` classes."""

    window: int
    weight: float
    n_items: int

    def label(self, index: Tensor, item_rows: Tensor, next_example: Tensor) -> Tensor:
        """``(P, n_items)`` target distributions of the target examples ``index`` ``(P,)``
        (``item_rows`` ``(N_examples,)``: each example's item; ``next_example``
        ``(N_examples,)``: its successor's example index, -1 for none)."""
        label = torch.zeros(len(index), self.n_items)
        rows = torch.arange(len(index))
        later, after = [], index
        for _ in range(self.window):  # the examples 1..window after each target (-1: none)
            after = torch.where(after >= 0, next_example[after.clamp(min=0)], -1)
            later.append(after)
        following = torch.stack(later, dim=1)  # (P, window)
        present = following >= 0
        count = present.sum(dim=1, keepdim=True)  # (P, 1)
        share = torch.where(count > 0, self.weight / count.clamp(min=1), 0.0)  # (P, 1)
        label.index_put_(
            (rows.unsqueeze(1).expand_as(following)[present], item_rows[following[present]]),
            share.expand_as(following)[present],
            accumulate=True,
        )
        own = torch.where(count.squeeze(1) > 0, 1.0 - self.weight, 1.0)
        label.index_put_((rows, item_rows[index]), own, accumulate=True)
        return label


def sequence_batch(
    examples: ExampleSet,
    history: Tensor,
    target_example: Tensor,
    retrieval_task: str,
    tasks: Sequence[str],
    review_text: Tensor | None = None,
    leave_out_own_review: bool = False,
    sampled_softmax: bool = False,
    content_text: Tensor | None = None,
    future: tuple[FutureTargets, Tensor] | None = None,
) -> Batch:
    """Features, labels and masks of target positions ``target_example`` ``(B, L)`` (example
    indices, -1 where there is no target) after ``history`` tokens ``(B, L)``.

    ``review_text`` ``(N_examples, D)`` becomes ``own_review`` ``(B, L, D)`` (what review
    tasks read); with ``leave_out_own_review`` also ``content_leave_out`` ``(B, L, D)``:
    the review of each TRAINING target (the ones in their items' review content, see
    :func:`mtlrec.pipeline.sequential.item_review_content`), zero for held-out targets,
    taken from ``content_text`` ``(N_examples, D)`` when the content sums other vectors
    than ``review_text`` (a tuned LM's reviews for the review task, frozen ones in the
    content).
    With ``sampled_softmax`` the retrieval label is 0, the target's column in the model's
    sampled logits; with ``future`` (the targets and each example's successor
    ``(N_examples,)``) it is a distribution ``(P, N_items)`` (:meth:`FutureTargets.label`)."""
    where = target_example >= 0
    index = target_example[where]  # (P,)
    item_rows = examples.features["item_row"]
    target_item = torch.full_like(target_example, -1)
    target_item[where] = item_rows[index]
    # each window is one user's: its user row (B,) from any of its targets (-1: none)
    first = torch.where(where.any(dim=1), where.float().argmax(dim=1), 0)
    owner = target_example.gather(1, first.unsqueeze(1)).squeeze(1)
    user = torch.where(owner >= 0, examples.features["user_row"][owner.clamp(min=0)], -1)
    features: dict[str, Tensor] = {
        "positions": item_rows[index],
        "history": history,
        "target_item": target_item,
        "user_row": user,
    }
    if review_text is not None:
        reviews = torch.zeros(*history.shape, review_text.shape[1])
        reviews[where] = review_text[index]
        features["own_review"] = reviews
    if leave_out_own_review and (content_text is not None or review_text is not None):
        source = content_text if content_text is not None else review_text
        assert source is not None
        in_content = (examples.split[index] == 0).unsqueeze(-1).to(source.dtype)
        leave_out = torch.zeros(*history.shape, source.shape[1])
        leave_out[where] = source[index] * in_content
        features["content_leave_out"] = leave_out
    if future is not None:
        retrieval_label = future[0].label(index, item_rows, future[1])
    else:
        retrieval_label = torch.zeros_like(index) if sampled_softmax else item_rows[index]
    labels: dict[str, Tensor] = {retrieval_task: retrieval_label}
    masks: dict[str, Tensor] = {retrieval_task: torch.ones(len(index), dtype=torch.bool)}
    for task in tasks:
        if task == retrieval_task or task not in examples.labels:
            continue
        labels[task] = examples.labels[task][index]
        masks[task] = examples.masks[task][index]
    return Batch(features, labels, masks)


def held_out_batches(
    examples: ExampleSet,
    histories: Mapping[int, np.ndarray],
    split: int,
    max_len: int,
    retrieval_task: str,
    tasks: Sequence[str],
    batch_size: int = 1024,
    review_text: Tensor | None = None,
) -> Iterator[Batch]:
    """One target per example of ``split``: the example's item after its user's history
    ``histories[user]`` (item rows, oldest first: the earlier splits' items)."""
    rows = np.flatnonzero(examples.split.numpy() == split)
    users = examples.features["user_row"].numpy()
    empty = np.zeros(0, dtype=np.int64)
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        history = np.stack(
            [history_tokens(histories.get(int(users[r]), empty), max_len) for r in chunk]
        )
        target = np.full((len(chunk), max_len), -1, dtype=np.int64)
        target[:, -1] = chunk
        yield sequence_batch(
            examples,
            torch.from_numpy(history),
            torch.from_numpy(target),
            retrieval_task,
            tasks,
            review_text,
        )
