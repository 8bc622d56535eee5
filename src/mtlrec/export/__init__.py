"""The model artifact and its portable / compressed forms (``mtlrec export``).

* :mod:`~mtlrec.export.artifact`   versioned, checksummed bundle: write atomically, load verified
* :mod:`~mtlrec.export.parts`      entities, task specs and interactions that rebuild a model
* :mod:`~mtlrec.export.checksums`  sha256 file table and its verification
* :mod:`~mtlrec.export.atomic`     temp folder -> fsync -> rename
* :mod:`~mtlrec.export.onnx`       ONNX export (dict inputs, dynamic batch) + onnxruntime parity
* :mod:`~mtlrec.export.quantize`   dynamic int8 quantization of ``nn.Linear``
* :mod:`~mtlrec.export.prune`      global L1 magnitude / L2 structured pruning
* :mod:`~mtlrec.export.measure`    serialised size and latency
* :mod:`~mtlrec.export.report`     size / latency / every test metric before and after
* :mod:`~mtlrec.export.run`        ``export_run``: all of it for a run folder

Heavy dependencies (safetensors, onnx, onnxruntime, onnxscript) are the ``export`` extra,
imported inside the functions that need them.
"""

from mtlrec.export.artifact import (
    FORMAT_VERSION,
    Artifact,
    FusedPipeline,
    load_artifact,
    read_manifest,
    write_artifact,
)
from mtlrec.export.checksums import ArtifactError
from mtlrec.export.prune import PruneSpec, prune_magnitude, prune_structured, sparsity
from mtlrec.export.quantize import load_int8, quantize_int8, save_int8
from mtlrec.export.report import BenchSettings

__all__ = [
    "FORMAT_VERSION",
    "Artifact",
    "ArtifactError",
    "BenchSettings",
    "FusedPipeline",
    "PruneSpec",
    "load_artifact",
    "load_int8",
    "prune_magnitude",
    "prune_structured",
    "quantize_int8",
    "read_manifest",
    "save_int8",
    "sparsity",
    "write_artifact",
]
