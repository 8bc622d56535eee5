"""Mini-batches of examples, with fresh sampled negatives every epoch for implicit tasks.

The order of an epoch is a function of ``(seed, epoch)`` only, so a run resumed from a
checkpoint at an epoch boundary sees exactly the batches the uninterrupted run saw.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import polars as pl
import torch
from torch import Tensor

from mtlrec.core.types import Batch
from mtlrec.data.examples import ExampleSet
from mtlrec.data.sampling import SamplingStrategy, sample_negatives

ITEM_KEYS: frozenset[str] = frozenset({"item_row", "item_idx"})


@dataclass(frozen=True)
class NegativeConfig:
    """Sampled negatives for implicit-feedback tasks.

    ``labels`` gives, per task, the label a negative carries (``{"interest": 0.0}``); the
    negatives' other tasks are masked. Negatives of a user are never among the user's
    training positives.
    """

    per_positive: int = 4
    strategy: SamplingStrategy = "uniform"
    labels: Mapping[str, float] = field(default_factory=dict)


def negative_examples(
    positives: ExampleSet,
    n_items: int,
    item_vocab_index: Tensor,
    config: NegativeConfig,
    seed: int,
    known: ExampleSet | None = None,
) -> ExampleSet:
    """``config.per_positive`` negatives per example of ``positives`` (same user, other item).

    ``known`` (default: ``positives``) lists the pairs that must never be drawn.
    """
    known = positives if known is None else known
    pairs = pl.DataFrame(
        {
            "user_idx": positives.features["user_row"].numpy(),
            "item_idx": positives.features["item_row"].numpy(),
        }
    )
    exclude = pl.DataFrame(
        {
            "user_idx": known.features["user_row"].numpy(),
            "item_idx": known.features["item_row"].numpy(),
        }
    )
    drawn = sample_negatives(
        pairs, n_items, config.per_positive, config.strategy, seed, exclude=exclude
    )
    repeat = config.per_positive
    item_row = torch.from_numpy(drawn["item_idx"].to_numpy().copy())
    # the user side (ids and per-example user features) is copied from the positive
    features = {
        k: v.repeat_interleave(repeat, dim=0)
        for k, v in positives.features.items()
        if k not in ITEM_KEYS
    }
    features["item_row"] = item_row
    features["item_idx"] = item_vocab_index[item_row]
    n = len(item_row)
    labels, masks = {}, {}
    for task, value in positives.labels.items():
        labels[task] = torch.zeros((n, *value.shape[1:]), dtype=value.dtype)
        masks[task] = torch.zeros(n, dtype=torch.bool)
        if task in config.labels:
            labels[task][:] = config.labels[task]
            masks[task][:] = True
    return ExampleSet(
        positives.unit,
        features,
        labels,
        masks,
        positives.split.repeat_interleave(repeat),
        torch.zeros(n, dtype=torch.bool),
    )


def concat(first: ExampleSet, second: ExampleSet) -> ExampleSet:
    """Examples of both sets, ``first`` then ``second``."""
    cat = torch.cat
    return ExampleSet(
        first.unit,
        {k: cat([v, second.features[k]]) for k, v in first.features.items()},
        {k: cat([v, second.labels[k]]) for k, v in first.labels.items()},
        {k: cat([v, second.masks[k]]) for k, v in first.masks.items()},
        cat([first.split, second.split]),
        cat([first.cold_item, second.cold_item]),
    )


def to_batch(examples: ExampleSet, index: Tensor) -> Batch:
    """The examples at ``index`` as a :class:`Batch`."""
    return Batch(
        {k: v[index] for k, v in examples.features.items()},
        {k: v[index] for k, v in examples.labels.items()},
        {k: v[index] for k, v in examples.masks.items()},
    )


class ExampleLoader:
    """Iterates an :class:`ExampleSet` in mini-batches; ``batches(epoch)`` is reproducible."""

    def __init__(
        self,
        examples: ExampleSet,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        negatives: NegativeConfig | None = None,
        n_items: int = 0,
        item_vocab_index: Tensor | None = None,
    ) -> None:
        if negatives is not None and (item_vocab_index is None or n_items < 1):
            raise ValueError("negatives need n_items and item_vocab_index")
        self.examples, self.batch_size, self.shuffle, self.seed = (
            examples,
            batch_size,
            shuffle,
            seed,
        )
        self.negatives, self.n_items, self.item_vocab_index = negatives, n_items, item_vocab_index

    def epoch_examples(self, epoch: int) -> ExampleSet:
        """The examples of ``epoch``: the positives plus that epoch's negatives."""
        if self.negatives is None or not self.negatives.per_positive:
            return self.examples
        assert self.item_vocab_index is not None
        negatives = negative_examples(
            self.examples,
            self.n_items,
            self.item_vocab_index,
            self.negatives,
            seed=self.seed * 7919 + epoch,
        )
        return concat(self.examples, negatives)

    def __len__(self) -> int:
        per = 1 + (self.negatives.per_positive if self.negatives else 0)
        return -(-len(self.examples) * per // self.batch_size)

    def batches(self, epoch: int) -> Iterator[Batch]:
        """The mini-batches of ``epoch`` (shuffled with a generator seeded by seed and epoch)."""
        data = self.epoch_examples(epoch)
        n = len(data)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.arange(n)
        for start in range(0, n, self.batch_size):
            yield to_batch(data, order[start : start + self.batch_size])
