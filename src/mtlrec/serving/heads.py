"""Per-task predictions of the multi-task heads for the service: known and unknown users.

A known user is scored exactly as in evaluation (:func:`~mtlrec.models.scoring.
pair_features`: the user's id index and per-user stand-ins). An unknown user is the train
vocabulary's ``<unk>`` user (id index 0, the index every user unseen in training gets) with
per-user vectors made from what the request tells: ``history_profile`` is the mean LM
embedding (``items.text``) of the given history, as training builds it, and every other
per-user vector (``review_profile``) is zero, as for a training user without reviews.

A model that reads per-user attribute tables (``users.*``, the cross-encoder's user tokens)
has no row for an unknown user; :attr:`HeadPredictor.scores_unknown_users` is then False and
unknown users get no per-task predictions.

The sequential model (:class:`SequentialHeadPredictor`) encodes a user from a history: a
known user's is the artifact's (training and validation interactions, oldest first), an
unknown user's the history the request gives, so it ranks for both the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import torch

from mtlrec.data.examples import EntityData
from mtlrec.export.artifact import Artifact
from mtlrec.models.multitask import MultiTaskModel
from mtlrec.models.scoring import head_value, pair_features, scorable_tasks
from mtlrec.models.sequential import SequentialRecommender, history_tokens
from mtlrec.models.sequential_factory import (
    pair_values,
    sequential_head_scorer,
    sequential_params,
    sequential_ranking_tasks,
)

HISTORY_PROFILE = "history_profile"
ITEM_TEXT = "items.text"
EMPTY = np.zeros(0, dtype=np.int64)


def wanted_tasks(tasks: Sequence[str], asked: Sequence[str] | None) -> list[str]:
    """The tasks of ``tasks`` that ``asked`` names, in ``tasks``' order (None: all)."""
    return [t for t in tasks if asked is None or t in asked]


class PairScorer(Protocol):
    """One user's values over item rows ``items`` ``(P,)``: ``{task: (P,)}`` for the
    ``tasks`` wanted (None: every task)."""

    def __call__(
        self, items: np.ndarray, tasks: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]: ...


class HeadPredictor:
    """``model``'s scorable heads over (user, item) pairs, in eval mode, on the CPU."""

    def __init__(self, model: MultiTaskModel, entities: EntityData, batch_size: int = 8192):
        self.model = model.eval()
        self.entities = entities
        self.tasks = scorable_tasks(model)
        self.batch_size = batch_size
        self.scores_unknown_users = not any(name.startswith("users.") for name in entities.tables)

    @torch.inference_mode()
    def _run(
        self, features: dict[str, torch.Tensor], tasks: Sequence[str] | None
    ) -> dict[str, np.ndarray]:
        n = int(features["item_row"].shape[0])
        wanted = wanted_tasks(self.tasks, tasks)
        parts: dict[str, list[np.ndarray]] = {t: [] for t in wanted}
        for start in range(0, n, self.batch_size):
            chunk = {k: v[start : start + self.batch_size] for k, v in features.items()}
            outputs = self.model(chunk)  # one forward gives every head
            for task in wanted:
                value = head_value(self.model.specs[task], outputs[task].float())
                parts[task].append(value.numpy().astype(np.float32))
        return {t: np.concatenate(v) if v else np.empty(0, np.float32) for t, v in parts.items()}

    def for_user(self, row: int | None, history: np.ndarray) -> PairScorer:
        """One user's head values: of the known user ``row``, or (``row`` None) of an
        unknown user with item rows ``history`` (see :meth:`unknown`)."""
        if row is not None:
            return lambda items, tasks=None: self.known(np.full(len(items), row), items, tasks)
        return lambda items, tasks=None: self.unknown(history, items, tasks)

    def known(
        self, users: np.ndarray, items: np.ndarray, tasks: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Head values ``{task: (P,)}`` for known user rows ``users`` and item rows ``items``
        (both ``(P,)``); ``tasks``: those of :attr:`tasks` wanted (None: all)."""
        features = pair_features(
            self.entities,
            torch.from_numpy(np.asarray(users, dtype=np.int64)),
            torch.from_numpy(np.asarray(items, dtype=np.int64)),
        )
        return self._run(features, tasks)

    def unknown(
        self, history: np.ndarray, items: np.ndarray, tasks: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Head values ``{task: (P,)}`` of an unknown user with item rows ``history``
        ``(h,)`` (may be empty) for item rows ``items`` ``(P,)``; empty dicts when the model
        cannot score unknown users. ``tasks``: those wanted (None: all)."""
        if not self.scores_unknown_users:
            return {}
        item_rows = torch.from_numpy(np.asarray(items, dtype=np.int64))
        n = int(item_rows.shape[0])
        features = {
            "user_row": torch.zeros(n, dtype=torch.int64),  # read by no table (checked)
            "user_idx": torch.zeros(n, dtype=torch.int64),  # <unk>
            "item_row": item_rows,
            "item_idx": self.entities.item_vocab_index[item_rows],
        }
        for name, table in self.entities.user_dense.items():
            profile = torch.zeros(table.shape[1], dtype=table.dtype)
            text = self.entities.tables.get(ITEM_TEXT)
            usable = text is not None and text.shape[1] == table.shape[1]
            if name == HISTORY_PROFILE and usable and len(history):
                assert text is not None
                profile = text[torch.from_numpy(np.asarray(history, dtype=np.int64))].mean(0)
            features[name] = profile.to(table.dtype).expand(n, -1)
        return self._run(features, tasks)


class SequentialHeadPredictor:
    """The sequential model's pair tasks over (user, item) pairs (the retrieval task's
    value is its logit), users encoded from their histories; in eval mode, on the CPU."""

    def __init__(
        self,
        model: SequentialRecommender,
        histories: Mapping[int, np.ndarray],
        max_len: int,
    ) -> None:
        self.model = model.eval()
        self.tasks = sequential_ranking_tasks(model, None)
        self.histories = histories
        self.max_len = max_len
        self.scores_unknown_users = True
        with torch.inference_mode():  # the served model does not change: computed once
            self.item_vectors = self.model.items()  # (N_items, dim)

    def for_user(self, row: int | None, history: np.ndarray) -> PairScorer:
        """One user's values over any items, the state after the history computed once:
        the known user ``row`` after its history in the artifact, or (``row`` None) after
        the item rows ``history`` ``(h,)`` (oldest first; may be empty). The scorer takes
        item rows ``(P,)`` and the tasks wanted (None: all) and gives ``{task: (P,)}``; a
        head not asked for does not run, so ranking a catalogue by the retrieval logit and
        then reading every head of the picks encodes the user once."""
        known = self.histories.get(int(row), EMPTY) if row is not None else history
        tokens = torch.from_numpy(history_tokens(np.asarray(known, np.int64), self.max_len))
        with torch.inference_mode():
            context = self.model.history_context(tokens[None, :], self.item_vectors)

        def score(items: np.ndarray, tasks: Sequence[str] | None = None) -> dict[str, np.ndarray]:
            wanted = wanted_tasks(self.tasks, tasks)
            rows = torch.from_numpy(np.asarray(items, dtype=np.int64))
            with torch.inference_mode():
                outputs = self.model.outputs_after(
                    context,
                    torch.zeros(len(rows), dtype=torch.int64),
                    rows,
                    self.item_vectors,
                    wanted,
                )
            return pair_values(self.model, outputs, wanted)

        return score

    def known(
        self, users: np.ndarray, items: np.ndarray, tasks: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Values ``{task: (P,)}`` for known user rows ``users`` and item rows ``items``
        (both ``(P,)``), after each user's history in the artifact. ``tasks``: those wanted
        (None: all); a head not asked for does not run (ranking a whole catalogue by the
        retrieval logit alone costs one matrix product)."""
        scorer = sequential_head_scorer(
            self.model,
            self.histories,
            self.max_len,
            wanted_tasks(self.tasks, tasks),
            item_vectors=self.item_vectors,
        )
        return scorer(users, items)

    def unknown(
        self, history: np.ndarray, items: np.ndarray, tasks: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Values ``{task: (P,)}`` after the item rows ``history`` ``(h,)`` (oldest first;
        may be empty) for item rows ``items`` ``(P,)``; ``tasks`` as in :meth:`known`."""
        return self.for_user(None, history)(items, tasks)


def head_predictor(artifact: Artifact) -> HeadPredictor | SequentialHeadPredictor:
    """The predictor of the artifact's model (pointwise or sequential)."""
    if isinstance(artifact.model, SequentialRecommender):
        return SequentialHeadPredictor(
            artifact.model, artifact.histories or {}, sequential_params(artifact.config).scoring_len
        )
    assert isinstance(artifact.model, MultiTaskModel)
    return HeadPredictor(artifact.model, artifact.entities)


def row_scores(
    scores: dict[str, np.ndarray], position: int, tasks: Sequence[str]
) -> dict[str, float]:
    """``{task: float}`` of entry ``position`` of each task's array (finite values only)."""
    out: dict[str, float] = {}
    for task in tasks:
        if task in scores:
            value = float(scores[task][position])
            if np.isfinite(value):
                out[task] = value
    return out
