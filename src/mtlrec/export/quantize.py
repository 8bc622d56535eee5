"""Dynamic int8 quantization of a model's ``nn.Linear`` layers, and its safetensors form.

:func:`quantize_int8` wraps ``torch.ao.quantization.quantize_dynamic``: the weights of every
``nn.Linear`` become per-tensor affine ``qint8``; activations are quantized on the fly, batch
by batch. Embeddings, entity tables, layer norms and the LM (if any) stay float32, so the
size shrinks by the share of the Linear weights only. (``torch.ao.quantization`` is marked
deprecated in favour of ``torchao``; it is still the CPU path shipped with torch 2.13 and its
deprecation warnings are silenced here.)

:func:`save_int8` writes a quantized model without pickle: for each quantized layer its
``int8`` weights, scale, zero point and float bias, plus the float state of everything else;
:func:`load_int8` rebuilds the quantized model from the float architecture and that file.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from mtlrec.models.multitask import MultiTaskModel

_INT8 = ".weight.int8"
_SCALE = ".weight.scale"
_ZERO = ".weight.zero_point"
_BIAS = ".bias"


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch.ao.quantization's deprecation warnings inside the block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, message=".*quantiz.*")
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*quantiz.*")
        yield


def _dynamic_linear() -> type[nn.Module]:
    from torch.ao.nn.quantized.dynamic import Linear

    return Linear


def quantize_int8(model: MultiTaskModel) -> MultiTaskModel:
    """A copy of ``model`` (eval mode) whose ``nn.Linear`` layers are dynamic int8 layers;
    ``model`` itself is left unchanged."""
    source = copy.deepcopy(model).eval()
    with _quiet():
        quantized = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
            source, {nn.Linear}, dtype=torch.qint8
        )
    assert isinstance(quantized, MultiTaskModel)
    return quantized.eval()


def quantized_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The dynamic int8 Linear layers of ``model`` by qualified name."""
    kind = _dynamic_linear()
    return {name: m for name, m in model.named_modules() if isinstance(m, kind)}


def _float_state(model: nn.Module, layers: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    """The state entries outside the quantized layers (their packed params are not tensors)."""
    prefixes = tuple(f"{name}." for name in layers)
    return {
        key: value
        for key, value in model.state_dict().items()
        if not key.startswith(prefixes) and isinstance(value, torch.Tensor)
    }


def save_int8(model: MultiTaskModel, path: Path) -> None:
    """Write a model from :func:`quantize_int8` as safetensors (no pickle)."""
    from safetensors.torch import save_file

    layers = quantized_layers(model)
    tensors = {k: v.detach().contiguous().clone() for k, v in _float_state(model, layers).items()}
    with _quiet():
        for name, layer in layers.items():
            weight = layer.weight()  # type: ignore[operator]
            if weight.qscheme() != torch.per_tensor_affine:
                raise ValueError(
                    f"{name}: only per-tensor int8 weights are saved, got {weight.qscheme()}"
                )
            tensors[name + _INT8] = weight.int_repr().contiguous()
            tensors[name + _SCALE] = torch.tensor(weight.q_scale(), dtype=torch.float64)
            tensors[name + _ZERO] = torch.tensor(weight.q_zero_point(), dtype=torch.int64)
            bias = layer.bias()  # type: ignore[operator]
            if bias is not None:
                tensors[name + _BIAS] = bias.detach().contiguous().clone()
    save_file(tensors, path, metadata={"format": "mtlrec-int8-dynamic"})


def load_int8(float_model: MultiTaskModel, path: Path) -> MultiTaskModel:
    """The quantized model saved by :func:`save_int8`, over ``float_model``'s architecture
    (a freshly built model of the same config; it receives the saved float state, then its
    Linear layers are quantized and given the saved int8 weights)."""
    from safetensors.torch import load_file

    tensors = load_file(path)
    quantized_names = {k.removesuffix(_INT8) for k in tensors if k.endswith(_INT8)}
    float_state = {
        k: v
        for k, v in tensors.items()
        if not k.startswith(tuple(f"{n}." for n in quantized_names))
    }
    result = float_model.load_state_dict(float_state, strict=False)
    expected_missing = {f"{n}.{p}" for n in quantized_names for p in ("weight", "bias")}
    if result.unexpected_keys or set(result.missing_keys) - expected_missing:
        raise ValueError(
            f"{path}: tensors do not match the model: missing "
            f"{sorted(set(result.missing_keys) - expected_missing)}, unexpected "
            f"{sorted(result.unexpected_keys)}"
        )
    model = quantize_int8(float_model)
    layers = quantized_layers(model)
    if set(layers) != quantized_names:
        raise ValueError(
            f"{path}: int8 layers {sorted(quantized_names)} differ from the model's "
            f"{sorted(layers)}"
        )
    with _quiet():
        for name, layer in layers.items():
            scale = float(tensors[name + _SCALE])
            zero = int(tensors[name + _ZERO])
            ints = tensors[name + _INT8].float()
            weight = torch.quantize_per_tensor((ints - zero) * scale, scale, zero, torch.qint8)
            layer.set_weight_bias(weight, tensors.get(name + _BIAS))  # type: ignore[operator]
    return model.eval()
