"""Model architectures (``model.name``) and their settings (``model.params``).

Each architecture is a frozen dataclass whose fields are its ``model.params``, so the
config check binds them like any component's parameters. Shared machinery asks the
architecture instead of testing its name: whether it trains on users' sequences, which
tasks it makes itself (not read from the prepared dataset) and whether a task of it reads
each interaction's own review text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from mtlrec.core.registry import Registry

if TYPE_CHECKING:
    from mtlrec.config.experiment import ExperimentConfig


@dataclass(frozen=True)
class Architecture:
    """The default declarations: single examples, no task of its own, no review read."""

    sequential: ClassVar[bool] = False
    """Trained on users' sequences (every position predicts the next item)."""

    @classmethod
    def of(cls, config: ExperimentConfig) -> Architecture:
        """The architecture of ``config.model`` with its params."""
        chosen = ARCHITECTURES.get(config.model.name)
        return chosen(**config.model.params)

    def made_tasks(self) -> set[str]:
        """Task names this architecture makes itself (absent from the dataset's labels)."""
        return set()

    def needs_review_text(self) -> bool:
        """Whether a task reads the LM embedding of each interaction's own review."""
        return False


ARCHITECTURES: Registry[type[Architecture]] = Registry("model architecture")


@ARCHITECTURES.register("multitask")
@dataclass(frozen=True)
class MultiTaskArchitecture(Architecture):
    """Input encoder -> shared backbone -> heads, one example at a time (``model.inputs``,
    ``model.backbone``, ``model.head``); no params of its own."""


@ARCHITECTURES.register("sequential")
@dataclass(frozen=True)
class SequentialArchitecture(Architecture):
    """History encoder over LM item vectors + retrieval task + auxiliary heads
    (:mod:`mtlrec.models.sequential`).

    ``dim`` item / state width; ``encoder`` ``causal`` (self-attention, SASRec-style) or
    ``pooled`` (running mean); ``max_len`` history positions; ``stride`` between training
    windows (None: ``max_len``; smaller gives every target a longer history at a higher
    epoch cost); ``history_len`` the history items a user is scored after (ranking,
    held-out heads, serving; None: ``max_len``): the pooled encoder is length-free and may
    read a longer history than its training windows, the causal one may not (it has
    ``max_len`` positions); ``history_order`` of the training sequences (``time``;
    ``shuffled``: a new random order per user every epoch, for random splits; ``set``:
    each training item predicted from the user's other items, pooled encoder only, for
    random splits); ``layers``,
    ``heads``,
    ``dropout`` of the encoder; ``use_ids`` / ``use_text`` / ``use_attributes``: the parts of
    the item vector; ``item_bias`` a learned retrieval-score offset per train item;
    ``item_item`` a linear item-to-item term in the retrieval score, learned, or with
    ``item_item_ease`` (an L2 strength) EASE's closed-form weights on the training
    interactions, fixed, under a learned scale; ``item_item_folds`` cross-fits those
    weights for training (K user folds: a training target is scored with weights fitted
    without its user, as a held-out one is); ``exclude_seen``: the training softmax leaves
    out the items already in the target's history (ranking excludes known items too);
    ``future_window`` / ``future_weight``: the training target of a position is a
    distribution, ``1 - future_weight`` on the next item and ``future_weight`` spread
    evenly over the ``future_window`` items after it in the user's training sequence
    (``time`` order only; the next item alone where none follow): in data whose
    order inside a session is arbitrary (a batch of ratings given the same minute) the
    items soon after are as much "next" as the one that came first;
    ``n_experts`` of the text adaptor; ``temperature`` of the retrieval
    logits; ``retrieval_task`` its name; ``task_inputs`` what each other task reads
    (``pair``: state and item, the default; ``review``: its own review text and the item;
    ``item``: the item alone); ``balance_classes``: class-weighted cross-entropy for
    multiclass tasks; ``test_history`` the history a test user is ranked after
    (``earlier``: train + valid, as the exclusion rule; ``train``: train only).
    """

    sequential: ClassVar[bool] = True
    dim: int = 64
    encoder: Literal["causal", "pooled"] = "causal"
    max_len: int = 50
    history_len: int | None = None
    stride: int | None = None
    history_order: Literal["time", "shuffled", "set"] = "time"
    layers: int = 2
    heads: int = 2
    dropout: float = 0.2
    use_ids: bool = True
    use_text: bool = True
    use_attributes: bool = True
    item_bias: bool = True
    item_item: bool = False
    item_item_ease: float | None = None
    item_item_folds: int | None = None
    exclude_seen: bool = False
    future_window: int = 0
    future_weight: float = 0.0
    item_reviews: bool = False
    item_norm: bool = True
    sampled_negatives: int | None = None
    n_experts: int = 4
    temperature: float = 1.0
    retrieval_task: str = "interest"
    task_inputs: Mapping[str, Literal["pair", "review", "item"]] | None = None
    balance_classes: bool = True
    test_history: Literal["earlier", "train"] = "earlier"

    def __post_init__(self) -> None:
        if self.future_window < 0 or not 0.0 <= self.future_weight < 1.0:
            raise ValueError(
                "model.params.future_window must be >= 0 and future_weight in [0, 1), got "
                f"{self.future_window} and {self.future_weight}"
            )
        if (self.future_weight > 0) != (self.future_window > 0):
            raise ValueError(
                "model.params.future_window and future_weight go together: set both above 0 "
                f"or neither (got {self.future_window} and {self.future_weight})"
            )
        if self.future_window and (self.history_order != "time" or self.sampled_negatives):
            raise ValueError(
                "model.params.future_window needs history_order 'time' (the items after a "
                "target) and the full softmax (no sampled_negatives)"
            )

    @property
    def scoring_len(self) -> int:
        """History items a user is scored after: ``history_len``, or ``max_len``."""
        return self.max_len if self.history_len is None else self.history_len

    def made_tasks(self) -> set[str]:
        """The retrieval task: its label is the next item itself."""
        return {self.retrieval_task}

    def needs_review_text(self) -> bool:
        return self.item_reviews or "review" in dict(self.task_inputs or {}).values()

    def inputs_of(self, task: str) -> Literal["pair", "review", "item"]:
        """What ``task`` reads (``pair`` unless ``task_inputs`` says otherwise)."""
        return dict(self.task_inputs or {}).get(task, "pair")
