"""Fine-tuning the language model on a text classification task (stage one of staged
training): the LM's top layers (or LoRA adapters) and a linear classifier learn, e.g.,
review sentiment from the TRAINING texts; the epoch is chosen on validation macro-F1; the
tuned LM then encodes texts for the multi-task model (stage two), which reads them as
cached embeddings.

::

    settings = TuningSettings(mode="top_k", top_k=2, epochs=3)
    classifier, result = tune_classifier(encoder, train_texts, train_labels, valid_texts,
                                         valid_labels, n_classes=3, settings=settings)
    vectors = encoder.encode(texts)  # the encoder now holds the best epoch's weights

Costs on a CPU: each step runs the whole LM forward (the frozen layers without a graph)
and the backward of the trainable layers only.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from rich.progress import track
from sklearn.metrics import f1_score
from torch import Tensor, nn

from mtlrec.config.experiment import TextTuning
from mtlrec.text.encoder import TextEncoder
from mtlrec.text.finetune import configure_finetuning

TuningSettings = TextTuning
"""The settings of a tuning run (``text.tune_reviews`` of an experiment config)."""


@dataclass
class TuningResult:
    """What tuning measured: validation macro-F1 per epoch, the chosen epoch, seconds."""

    valid_macro_f1: list[float] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    steps: int = 0

    def to_json(self) -> dict[str, object]:
        """Plain JSON of the result."""
        return {
            "valid_macro_f1": [round(v, 4) for v in self.valid_macro_f1],
            "best_epoch": self.best_epoch,
            "seconds": round(self.seconds, 1),
            "steps": self.steps,
        }


def class_weights(labels: np.ndarray, n_classes: int) -> Tensor:
    """``(C,)`` balanced weights ``n / (C * count_c)`` (a missing class counts as one)."""
    counts = np.maximum(np.bincount(labels, minlength=n_classes), 1).astype(np.float64)
    return torch.tensor(counts.sum() / (n_classes * counts), dtype=torch.float32)


def _batches(order: np.ndarray, size: int) -> list[np.ndarray]:
    return [order[start : start + size] for start in range(0, len(order), size)]


def length_bucketed_batches(
    lengths: np.ndarray, size: int, window: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Row batches of ``size`` for one epoch: a random permutation cut into windows of
    ``window`` batches, each window sorted by ``lengths`` ``(N,)`` (token counts) before
    it is cut into batches, and the batches shuffled. Every row appears once; batches hold
    texts of similar length, so less padding is computed. ``window`` 0: plain random
    batches."""
    order = rng.permutation(len(lengths))
    if window == 0:
        return _batches(order, size)
    span = size * window
    batches: list[np.ndarray] = []
    for start in range(0, len(order), span):
        chunk = order[start : start + span]
        batches += _batches(chunk[np.argsort(lengths[chunk], kind="stable")], size)
    return [batches[i] for i in rng.permutation(len(batches))]


@torch.inference_mode()
def predict_classes(
    encoder: TextEncoder, classifier: nn.Module, texts: Sequence[str], batch_size: int = 64
) -> np.ndarray:
    """``(N,)`` predicted class of every text (eval mode, no gradients)."""
    encoder.eval()
    classifier.eval()
    vectors = torch.from_numpy(encoder.encode(texts, batch_size=batch_size))
    return np.asarray(classifier(vectors).argmax(dim=-1).numpy())


def tune_classifier(
    encoder: TextEncoder,
    train_texts: Sequence[str],
    train_labels: np.ndarray,
    valid_texts: Sequence[str],
    valid_labels: np.ndarray,
    n_classes: int,
    settings: TuningSettings,
    seed: int = 0,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> tuple[nn.Module, TuningResult]:
    """Fine-tune ``encoder`` (in place) with a linear classifier on ``train_texts``
    (labels ``(N,)`` in ``0..n_classes-1``); after every epoch the validation macro-F1 is
    measured and the best epoch's LM and classifier weights are kept (validation data
    only choose, never train); ``log`` receives one line per epoch. Returns the classifier
    and the result."""
    if len(train_texts) != len(train_labels) or len(valid_texts) != len(valid_labels):
        raise ValueError("texts and labels must have the same length")
    if len(train_texts) == 0 or len(valid_texts) == 0:
        raise ValueError("tuning needs training and validation texts")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    encoder.max_length = settings.max_length
    configure_finetuning(encoder, settings.mode, top_k=settings.top_k, lora_r=settings.lora_r)
    classifier = nn.Linear(encoder.dim, n_classes)
    trainable = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": trainable, "lr": settings.lr},
            {"params": classifier.parameters(), "lr": settings.head_lr},
        ],
        weight_decay=0.01,
    )
    weights = class_weights(train_labels, n_classes) if settings.balanced else None
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    labels = torch.as_tensor(train_labels, dtype=torch.long)
    lengths = np.array(
        [
            len(ids)
            for ids in encoder.tokenizer(
                list(train_texts), truncation=True, max_length=settings.max_length
            )["input_ids"]
        ]
    )
    result = TuningResult()
    best: tuple[float, dict[str, Tensor], dict[str, Tensor]] | None = None
    start = time.perf_counter()
    for epoch in range(settings.epochs):
        encoder.train()
        classifier.train()
        batches = length_bucketed_batches(
            lengths, settings.batch_size, settings.length_buckets, rng
        )
        for rows in track(batches, description=f"tuning epoch {epoch}", disable=not progress):
            tokens = encoder.tokenize([train_texts[i] for i in rows])
            logits = classifier(encoder(tokens["input_ids"], tokens["attention_mask"]))
            loss = loss_fn(logits, labels[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            result.steps += 1
        predicted = predict_classes(encoder, classifier, valid_texts)
        score = float(f1_score(valid_labels, predicted, average="macro"))
        result.valid_macro_f1.append(score)
        if log is not None:
            log(
                f"tuning epoch {epoch}: valid macro-F1 {score:.4f} "
                f"({time.perf_counter() - start:.0f}s)"
            )
        if best is None or score > best[0]:
            result.best_epoch = epoch
            best = (
                score,
                copy.deepcopy(encoder.state_dict()),
                copy.deepcopy(classifier.state_dict()),
            )
    assert best is not None
    encoder.load_state_dict(best[1])
    classifier.load_state_dict(best[2])
    encoder.eval()
    classifier.eval()
    result.seconds = time.perf_counter() - start
    return classifier, result


class TunedEncoder:
    """An encoder fine-tuned on demand, for the embedding cache
    (:class:`mtlrec.text.cache.SupportsEncode`).

    ``model_id`` names the base LM, the tuning settings and ``digest`` (what the tuning
    learned from: the dataset and its training labels), so tuned vectors never mix with
    frozen ones or with another tuning's; the tuning itself runs the first time a text
    the cache lacks is encoded, so a second run over the same data tunes nothing.
    ``load`` gives a fresh copy of the base LM."""

    def __init__(
        self,
        load: Callable[[], TextEncoder],
        base_model_id: str,
        dim: int,
        settings: TuningSettings,
        digest: str,
        train: tuple[Sequence[str], np.ndarray],
        valid: tuple[Sequence[str], np.ndarray],
        n_classes: int,
        seed: int = 0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._load, self._dim, self.settings = load, dim, settings
        key = hashlib.sha256(f"{settings.fingerprint()}|{digest}|{seed}".encode()).hexdigest()
        self._model_id = f"{base_model_id}-tuned-{settings.task}-{key[:12]}"
        self.train, self.valid, self.n_classes, self.seed = train, valid, n_classes, seed
        self.log = log
        self.encoder: TextEncoder | None = None
        self.result: TuningResult | None = None

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    def tuned(self) -> TextEncoder:
        """The tuned LM (tuned now if it was not yet)."""
        if self.encoder is None:
            encoder = self._load()
            _, self.result = tune_classifier(
                encoder,
                self.train[0],
                self.train[1],
                self.valid[0],
                self.valid[1],
                self.n_classes,
                self.settings,
                seed=self.seed,
                log=self.log,
            )
            self.encoder = encoder
        return self.encoder

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        """Embeddings ``(N, D)`` of ``texts`` by the tuned LM."""
        return self.tuned().encode(texts, batch_size=batch_size, progress=progress)
