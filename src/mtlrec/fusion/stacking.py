"""``stacking``: a meta-model (LightGBM or logistic regression) over candidate items.

Candidates of a user are the union of every source's top-``candidates`` items among the
user's non-excluded items it scores (finite). Each (user, candidate) pair gets features:

- per source (sorted by name): its per-user z-scored score (``zscore[m]``) and its
  reciprocal rank ``1 / rank`` among those items (``rrank[m]``; 0 when not ranked);
- ``n_top``: how many sources have the item in their top-``candidates``;
- ``log1p_item_popularity`` and ``log1p_user_activity`` (zeros when not given).

The label is "relevant on validation". Fitting is out-of-fold: validation users are split
into ``n_folds`` seeded folds, a meta-model fitted on the other folds predicts each fold,
and the NDCG@``k`` of those out-of-fold scores is kept as ``oof_ndcg_`` (an honest
validation estimate); the final meta-model is then fitted on every validation pair.

Fused scores: a candidate gets ``1 + p`` (``p`` the meta-model probability, so in
``[1, 2]``); every other non-excluded item ranks below all candidates, ordered by the
mean of the sources' per-user min-max scores, scaled into ``[0, 0.99]``.

Persistence stays JSON: the LightGBM booster as its text model
(``booster_.model_to_string()``), the logistic model as the scaler mean/scale and the
coefficients (its probability is recomputed as ``sigmoid(x . w + b)``). The fitted model
is turned into that same form right away, so a loaded fusion predicts bit-identically.
LightGBM and scikit-learn are imported only when a model is fitted or loaded.

``n_jobs`` is LightGBM's thread count (training and prediction). Keep it at most the
number of free cores: LightGBM's OpenMP threads spin at every barrier, and an
oversubscribed machine (say ``n_jobs=2`` next to another busy process on two cores) can
make training a hundred times slower. Results do not depend on it (``deterministic``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from mtlrec.fusion.base import FUSIONS, Fusion, FusionInput
from mtlrec.fusion.normalize import normalize_scores, ordinal_ranks, valid_mask
from mtlrec.fusion.objective import ndcg_at_k

META_MODELS: tuple[str, ...] = ("lightgbm", "logistic")
"""Known meta-models of :class:`StackingFusion`."""

_FALLBACK_SPAN = 0.99  # non-candidates score in [0, 0.99], candidates in [1, 2]


@dataclass(frozen=True)
class Candidates:
    """The candidate pairs of a batch and their features.

    ``users``/``items`` ``(P,)`` int64 index the pairs, ``features`` is ``(P, F)``
    float64, ``mask`` ``(b, n_items)`` bool marks the candidates and ``fallback``
    ``(b, n_items)`` float64 in ``[0, 0.99]`` orders the non-candidates.
    """

    users: np.ndarray
    items: np.ndarray
    features: np.ndarray
    mask: np.ndarray
    fallback: np.ndarray

    def scores(self, probabilities: np.ndarray) -> np.ndarray:
        """Fused ``(b, n_items)`` scores from the pairs' ``probabilities`` ``(P,)``."""
        out = self.fallback.copy()
        out[self.users, self.items] = 1.0 + probabilities
        return out


def feature_names(sources: tuple[str, ...]) -> list[str]:
    """The meta-model's feature names, in column order."""
    per_source = [f"{kind}[{m}]" for m in sources for kind in ("zscore", "rrank")]
    return [*per_source, "n_top", "log1p_item_popularity", "log1p_user_activity"]


def build_candidates(inputs: FusionInput, sources: tuple[str, ...], top_n: int) -> Candidates:
    """Candidates (union of each source's top-``top_n``) and their features."""
    b, n = inputs.n_users, inputs.n_items
    ranks, zscores, minmax = [], [], np.zeros((b, n), dtype=np.float64)
    for m in sources:
        s = inputs.scores[m]
        ranks.append(ordinal_ranks(s, valid_mask(s, inputs.exclude)))
        zscores.append(normalize_scores(s, "zscore", inputs.exclude))
        minmax += normalize_scores(s, "minmax", inputs.exclude)
    in_top = [(r > 0) & (r <= top_n) for r in ranks]
    n_top = np.sum(in_top, axis=0)
    mask = n_top > 0
    users, items = np.nonzero(mask)
    columns: list[np.ndarray] = []
    for r, z in zip(ranks, zscores, strict=True):
        rank = r[users, items]
        columns.append(z[users, items].astype(np.float64))
        columns.append(np.where(rank > 0, 1.0 / np.maximum(rank, 1), 0.0))
    columns.append(n_top[users, items].astype(np.float64))
    pop = inputs.item_popularity
    act = inputs.user_activity
    columns.append(np.log1p(pop[items]) if pop is not None else np.zeros(users.size))
    columns.append(np.log1p(act[users]) if act is not None else np.zeros(users.size))
    features = np.stack(columns, axis=1) if users.size else np.zeros((0, len(columns)))
    fallback = _FALLBACK_SPAN * minmax / len(sources)
    return Candidates(users.astype(np.int64), items.astype(np.int64), features, mask, fallback)


# ---------------------------------------------------------------------------- meta-models
class MetaModel(Protocol):
    """A fitted binary classifier reduced to a JSON-able form."""

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Probabilities ``(P,)`` float64 of the positive class for ``features`` ``(P, F)``."""
        ...

    def state(self) -> dict[str, Any]:
        """JSON-able state with a ``"kind"`` key (see :func:`meta_model_from_state`)."""
        ...


@dataclass(frozen=True)
class ConstantModel:
    """Predicts ``p`` for every pair (a training fold with a single class)."""

    p: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.full(features.shape[0], self.p, dtype=np.float64)

    def state(self) -> dict[str, Any]:
        return {"kind": "constant", "p": self.p}


@dataclass(frozen=True)
class LogisticModel:
    """``sigmoid(((x - mean) / scale) . coef + intercept)``: a standardised logistic
    regression, as fitted by scikit-learn's ``StandardScaler`` + ``LogisticRegression``."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        z = ((features - self.mean) / self.scale) @ self.coef + self.intercept
        return np.asarray(np.exp(-np.logaddexp(0.0, -z)), dtype=np.float64)

    def state(self) -> dict[str, Any]:
        return {
            "kind": "logistic",
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
        }


class LightGBMModel:
    """A LightGBM booster held as its text model (what is saved is what predicts)."""

    def __init__(self, model_str: str, n_jobs: int = 2) -> None:
        import lightgbm

        self.model_str = model_str
        self.n_jobs = n_jobs
        self.booster = lightgbm.Booster(model_str=model_str)

    def predict(self, features: np.ndarray) -> np.ndarray:
        if not features.shape[0]:
            return np.zeros(0, dtype=np.float64)
        out = self.booster.predict(features, num_threads=self.n_jobs)
        return np.asarray(out, dtype=np.float64)

    def state(self) -> dict[str, Any]:
        return {"kind": "lightgbm", "model_str": self.model_str}


def meta_model_from_state(state: Mapping[str, Any], n_jobs: int = 2) -> MetaModel:
    """Rebuild a meta-model from its :meth:`MetaModel.state` (``n_jobs``: LightGBM
    prediction threads)."""
    kind = state["kind"]
    if kind == "constant":
        return ConstantModel(float(state["p"]))
    if kind == "logistic":
        return LogisticModel(
            np.asarray(state["mean"], dtype=np.float64),
            np.asarray(state["scale"], dtype=np.float64),
            np.asarray(state["coef"], dtype=np.float64),
            float(state["intercept"]),
        )
    if kind == "lightgbm":
        return LightGBMModel(str(state["model_str"]), n_jobs)
    raise ValueError(f"unknown stacking meta-model kind {kind!r}")


# ---------------------------------------------------------------------------- fusion
@FUSIONS.register("stacking")
class StackingFusion(Fusion):
    """A LightGBM / logistic meta-model over the sources' candidate items."""

    name = "stacking"
    example_params = {
        "candidates": 8,
        "n_folds": 3,
        "n_estimators": 40,
        "num_leaves": 7,
        "n_jobs": 1,  # the tests run two workers on two cores
    }
    feature_names_: list[str]
    model_: MetaModel
    oof_ndcg_: float
    side_info_: dict[str, bool]

    def __init__(
        self,
        model: str = "lightgbm",
        candidates: int = 50,
        n_folds: int = 5,
        seed: int = 0,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        k: int = 10,
        n_jobs: int = 2,
    ) -> None:
        if model not in META_MODELS:
            raise ValueError(f"unknown stacking model {model!r}; known: {', '.join(META_MODELS)}")
        if candidates <= 0 or n_folds < 2 or k <= 0:
            raise ValueError(
                f"need candidates > 0, n_folds >= 2, k > 0; got {candidates}, {n_folds}, {k}"
            )
        if n_estimators <= 0 or not learning_rate > 0 or num_leaves < 2 or n_jobs < 1:
            raise ValueError(
                "need n_estimators > 0, learning_rate > 0, num_leaves >= 2, n_jobs >= 1; "
                f"got {n_estimators}, {learning_rate}, {num_leaves}, {n_jobs}"
            )
        self.model = model
        self.candidates = candidates
        self.n_folds = n_folds
        self.seed = seed
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.k = k
        self.n_jobs = n_jobs

    def _train(self, features: np.ndarray, labels: np.ndarray) -> MetaModel:
        """A meta-model fitted on ``features`` ``(P, F)`` and bool ``labels`` ``(P,)``."""
        if labels.size == 0 or labels.all() or not labels.any():
            return ConstantModel(float(labels.mean()) if labels.size else 0.0)
        if self.model == "lightgbm":
            import lightgbm

            classifier = lightgbm.LGBMClassifier(
                objective="binary",
                n_estimators=self.n_estimators,
                learning_rate=self.learning_rate,
                num_leaves=self.num_leaves,
                deterministic=True,
                force_row_wise=True,
                n_jobs=self.n_jobs,
                verbose=-1,
                random_state=self.seed,
            )
            classifier.fit(features, labels.astype(np.int64))
            return LightGBMModel(classifier.booster_.model_to_string(), self.n_jobs)
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(features)
        logistic = LogisticRegression(max_iter=1000, random_state=self.seed)
        logistic.fit(scaler.transform(features), labels.astype(np.int64))
        return LogisticModel(
            np.asarray(scaler.mean_, dtype=np.float64),
            np.asarray(scaler.scale_, dtype=np.float64),
            np.asarray(logistic.coef_[0], dtype=np.float64),
            float(logistic.intercept_[0]),
        )

    def _fit(self, inputs: FusionInput, relevant: np.ndarray) -> None:
        b = inputs.n_users
        if b < self.n_folds:
            raise ValueError(f"stacking needs at least n_folds={self.n_folds} users, got {b}")
        self.side_info_ = {
            "item_popularity": inputs.item_popularity is not None,
            "user_activity": inputs.user_activity is not None,
        }
        cand = build_candidates(inputs, self.sources_, self.candidates)
        labels = relevant[cand.users, cand.items]
        if not labels.any():
            raise ValueError(
                f"no relevant item is among the candidates (top-{self.candidates} of each "
                "source); raise `candidates`"
            )
        self.feature_names_ = feature_names(self.sources_)
        # out-of-fold predictions: seeded folds of users
        fold_of_user = np.empty(b, dtype=np.int64)
        fold_of_user[np.random.default_rng(self.seed).permutation(b)] = np.arange(b) % self.n_folds
        pair_fold = fold_of_user[cand.users]
        oof = np.zeros(labels.size, dtype=np.float64)
        for fold in range(self.n_folds):
            held = pair_fold == fold
            model = self._train(cand.features[~held], labels[~held])
            oof[held] = model.predict(cand.features[held])
        self.oof_ndcg_ = ndcg_at_k(cand.scores(oof), relevant, inputs.exclude, self.k)
        self.model_ = self._train(cand.features, labels)

    def _fuse(self, inputs: FusionInput) -> np.ndarray:
        given = {
            "item_popularity": inputs.item_popularity is not None,
            "user_activity": inputs.user_activity is not None,
        }
        if given != self.side_info_:
            raise ValueError(
                f"stacking was fitted with side information {self.side_info_}, "
                f"but the input has {given}"
            )
        cand = build_candidates(inputs, self.sources_, self.candidates)
        return cand.scores(self.model_.predict(cand.features))

    def _get_state(self) -> dict[str, Any]:
        return {
            "feature_names": self.feature_names_,
            "model": self.model_.state(),
            "oof_ndcg": self.oof_ndcg_,
            "side_info": self.side_info_,
        }

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self.feature_names_ = [str(f) for f in state["feature_names"]]
        if self.feature_names_ != feature_names(self.sources_):
            raise ValueError("stacking state: feature names do not match the sources")
        self.model_ = meta_model_from_state(state["model"], self.n_jobs)
        self.oof_ndcg_ = float(state["oof_ndcg"])
        self.side_info_ = {str(k): bool(v) for k, v in state["side_info"].items()}
