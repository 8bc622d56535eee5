"""Fine-tuning modes of a :class:`~mtlrec.text.encoder.TextEncoder`'s language model.

=======  ==================================================================
frozen   no parameter trains; the encoder is put in eval mode
top_k    only the last ``top_k`` transformer layers (and the pooler) train
lora     peft LoRA adapters on ``target_modules``; the base weights stay frozen
full     every parameter trains
=======  ==================================================================

::

    report = configure_finetuning(encoder, "lora", lora_r=8)
    report.trainable_params, report.total_params
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from torch import nn

from mtlrec.text.encoder import TextEncoder

FinetuneMode = Literal["frozen", "top_k", "lora", "full"]
FINETUNE_MODES: tuple[str, ...] = ("frozen", "top_k", "lora", "full")

_LAYER_PATHS: tuple[str, ...] = ("encoder.layer", "transformer.layer", "encoder.layers", "layers")
"""Where transformer blocks live: BERT/RoBERTa/MiniLM, DistilBERT, BART-like, ModernBERT."""


@dataclass(frozen=True)
class FinetuneReport:
    """Which mode was applied and how many parameters now train."""

    mode: str
    trainable_params: int
    total_params: int

    @property
    def trainable_fraction(self) -> float:
        """``trainable_params / total_params``."""
        return self.trainable_params / max(self.total_params, 1)


def transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The list of transformer blocks of ``model`` (e.g. ``model.encoder.layer`` for BERT)."""
    for path in _LAYER_PATHS:
        found: Any = model
        for name in path.split("."):
            found = getattr(found, name, None)
        if isinstance(found, nn.ModuleList) and len(found) > 0:
            return found
    raise ValueError(
        f"cannot find the transformer layers of {type(model).__name__} "
        f"(looked for {', '.join(_LAYER_PATHS)}); use mode 'lora' or 'full' instead"
    )


def _is_peft(model: nn.Module) -> bool:
    return hasattr(model, "peft_config")


def configure_finetuning(
    encoder: TextEncoder,
    mode: FinetuneMode,
    top_k: int = 2,
    lora_r: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.05,
    target_modules: Sequence[str] = ("query", "value"),
) -> FinetuneReport:
    """Set which parameters of ``encoder.model`` train; ``lora`` replaces ``encoder.model``.

    A LoRA-wrapped encoder can still be frozen, but not switched to another mode.
    """
    if mode not in FINETUNE_MODES:
        raise ValueError(f"unknown finetuning mode {mode!r}; known: {list(FINETUNE_MODES)}")
    if _is_peft(encoder.model) and mode != "frozen":
        raise ValueError(f"encoder is already LoRA-wrapped; cannot switch it to {mode!r}")
    model = encoder.model
    if mode == "lora":
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=lora_r,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            target_modules=list(target_modules),
            bias="none",
        )
        # get_peft_model freezes the base weights and makes only the adapters trainable.
        encoder.model = cast(nn.Module, get_peft_model(cast(Any, model), config))
    else:
        model.requires_grad_(mode == "full")
        if mode == "top_k":
            layers = transformer_layers(model)
            if not 1 <= top_k <= len(layers):
                raise ValueError(f"top_k must be in 1..{len(layers)}, got {top_k}")
            for layer in layers[len(layers) - top_k :]:
                layer.requires_grad_(True)
            pooler = getattr(model, "pooler", None)
            if isinstance(pooler, nn.Module):
                pooler.requires_grad_(True)
        elif mode == "frozen":
            encoder.eval()
    params = list(encoder.model.parameters())
    return FinetuneReport(
        mode=mode,
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_params=sum(p.numel() for p in params),
    )
