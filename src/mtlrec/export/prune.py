"""Pruning a model's ``nn.Linear`` weights with ``torch.nn.utils.prune``, made permanent.

Two methods (:data:`PRUNE_METHODS`), each on a copy of the model:

- ``magnitude``: global L1 unstructured pruning: the ``amount`` share of all Linear weights
  with the smallest absolute value, over every Linear layer together, is set to zero;
- ``structured``: L2 structured pruning of output rows: in every Linear layer but the
  heads' output layers (``head.out``, whose rows are the task outputs), the ``amount`` share
  of weight rows with the smallest L2 norm is set to zero (the unit's bias is kept).

Pruning is followed by ``prune.remove``, so the zeros are plain weights: the model keeps its
shapes and its dense size (zeros compress, see :func:`mtlrec.export.measure.model_size`), and
serialises as any float model (:func:`save_pruned` / :func:`load_pruned`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import prune

from mtlrec.models.multitask import MultiTaskModel

PRUNE_METHODS: tuple[str, ...] = ("magnitude", "structured")


@dataclass(frozen=True)
class PruneSpec:
    """A pruning method and the share of weights (magnitude) or rows (structured) to zero."""

    method: str
    amount: float

    @classmethod
    def parse(cls, text: str) -> PruneSpec:
        """``"magnitude:0.3"`` or ``"structured:0.2"`` -> a checked spec."""
        method, sep, amount = text.partition(":")
        if method not in PRUNE_METHODS or not sep:
            raise ValueError(
                f"prune spec {text!r} must be METHOD:AMOUNT with METHOD one of "
                f"{', '.join(PRUNE_METHODS)} (e.g. magnitude:0.3)"
            )
        try:
            value = float(amount)
        except ValueError:
            raise ValueError(f"prune amount {amount!r} is not a number") from None
        if not 0.0 < value < 1.0:
            raise ValueError(f"prune amount must lie in (0, 1), got {value}")
        return cls(method, value)

    @property
    def name(self) -> str:
        """The variant's name: ``pruned-magnitude-0.3``."""
        return f"pruned-{self.method}-{self.amount:g}"


def linear_layers(model: nn.Module) -> dict[str, nn.Linear]:
    """Every ``nn.Linear`` of ``model`` by qualified name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear)}


def output_layers(model: MultiTaskModel) -> set[str]:
    """Qualified names of the heads' output layers (``heads.<task>.out``)."""
    return {
        f"heads.{task}.out"
        for task, head in model.heads.items()
        if isinstance(getattr(head, "out", None), nn.Linear)
    }


def prune_magnitude(model: MultiTaskModel, amount: float) -> MultiTaskModel:
    """A copy of ``model`` with the ``amount`` smallest-magnitude share of all Linear weights
    (global L1 unstructured) set to zero, permanently."""
    pruned = copy.deepcopy(model).eval()
    targets = [(layer, "weight") for layer in linear_layers(pruned).values()]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    for layer, name in targets:
        prune.remove(layer, name)  # type: ignore[no-untyped-call]
    return pruned


def prune_structured(model: MultiTaskModel, amount: float) -> MultiTaskModel:
    """A copy of ``model`` where each hidden Linear layer (heads' output layers excepted) has
    its ``amount`` share of output rows with the smallest L2 norm set to zero, permanently."""
    pruned = copy.deepcopy(model).eval()
    keep = output_layers(pruned)
    for name, layer in linear_layers(pruned).items():
        if name in keep:
            continue
        prune.ln_structured(layer, "weight", amount=amount, n=2, dim=0)  # type: ignore[no-untyped-call]
        prune.remove(layer, "weight")  # type: ignore[no-untyped-call]
    return pruned


def apply_pruning(model: MultiTaskModel, spec: PruneSpec) -> MultiTaskModel:
    """:func:`prune_magnitude` or :func:`prune_structured` as ``spec`` says."""
    if spec.method == "magnitude":
        return prune_magnitude(model, spec.amount)
    return prune_structured(model, spec.amount)


def sparsity(model: nn.Module) -> dict[str, float]:
    """Share of zero weights over all Linear layers (``linear``), share of Linear weight rows
    that are all zero (``rows``), and share of zeros over every parameter (``parameters``)."""
    layers = list(linear_layers(model).values())
    weights = [layer.weight.detach() for layer in layers]
    n_linear = sum(w.numel() for w in weights)
    n_rows = sum(w.shape[0] for w in weights)
    params = [p.detach() for p in model.parameters()]
    n_params = sum(p.numel() for p in params)
    return {
        "linear": sum(int((w == 0).sum()) for w in weights) / max(n_linear, 1),
        "rows": sum(int((w == 0).all(dim=1).sum()) for w in weights) / max(n_rows, 1),
        "parameters": sum(int((p == 0).sum()) for p in params) / max(n_params, 1),
    }


def save_pruned(model: MultiTaskModel, path: Path) -> None:
    """Write a pruned model's state dict as safetensors."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, path, metadata={"format": "mtlrec-pruned"})


def load_pruned(float_model: MultiTaskModel, path: Path) -> MultiTaskModel:
    """The pruned model saved by :func:`save_pruned`, loaded into ``float_model`` (eval)."""
    from safetensors.torch import load_file

    float_model.load_state_dict(load_file(path))
    return float_model.eval()


def zero_rows(layer: nn.Linear) -> torch.Tensor:
    """Bool ``(out_features,)``: the rows of ``layer.weight`` that are all zero."""
    return (layer.weight.detach() == 0).all(dim=1)
