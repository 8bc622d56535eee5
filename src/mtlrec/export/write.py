"""Writing the model artifact of a trained run (the layout: :mod:`mtlrec.export.artifact`)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from mtlrec import __version__
from mtlrec.config.fusion import FusionConfig
from mtlrec.core.atomic import staged_folder
from mtlrec.export.artifact import (
    CONFIG,
    FEATURES,
    FORMAT,
    FORMAT_VERSION,
    ITEM_EMBEDDINGS,
    ITEM_INDEX,
    METRICS,
    RERANK_VECTORS,
    WEIGHTS,
)
from mtlrec.export.checksums import MANIFEST, file_table
from mtlrec.export.parts import INTERACTIONS, ModelParts, save_interactions, save_parts
from mtlrec.export.sequential import save_sequential
from mtlrec.fusion.assemble import FUSION_DIR
from mtlrec.models.multitask import MultiTaskModel
from mtlrec.models.sequential import SequentialRecommender
from mtlrec.models.sequential_factory import sequential_params
from mtlrec.pipeline.trained_run import TrainedRun, rerank_vectors
from mtlrec.retrieval.faiss_index import ItemIndex

Extras = Callable[[Path, MultiTaskModel], dict[str, Any]]
"""``extras(folder, model)`` writes more files into the bundle being built and returns what
the manifest records about them (``{"onnx": {...}, "variants": {...}}``)."""


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    if not cleaned:
        raise ValueError(f"artifact name {name!r} has no usable characters")
    return cleaned


def artifact_version(files: dict[str, dict[str, Any]], created: datetime) -> str:
    """``<created %Y%m%dT%H%M%SZ>-<sha256 of the config's and weights' sha256>[:8]``."""
    digest = hashlib.sha256(
        (files[CONFIG]["sha256"] + files[WEIGHTS]["sha256"]).encode()
    ).hexdigest()
    return f"{created.astimezone(UTC):%Y%m%dT%H%M%SZ}-{digest[:8]}"


def _input_description(run: TrainedRun) -> dict[str, Any]:
    """Each model input (a batch feature): dtype and shape with the batch axis named (the
    sequential model reads history tokens, see :mod:`mtlrec.models.sequential`)."""
    if isinstance(run.model, SequentialRecommender):
        length = sequential_params(run.config).scoring_len  # history items read
        return {"history": {"dtype": "int64", "shape": ["batch", length]}}
    return {
        name: {
            "dtype": str(value.dtype).removeprefix("torch."),
            "shape": ["batch", *value.shape[1:]],
        }
        for name, value in run.data.examples.features.items()
    }


def _write_item_vectors(run: TrainedRun, folder: Path) -> dict[str, Any]:
    """``item_embeddings.npy`` and ``item_index.faiss`` (flat inner product, L2-normalised)."""
    vectors = np.ascontiguousarray(run.item_embeddings(), dtype=np.float32)
    np.save(folder / ITEM_EMBEDDINGS, vectors, allow_pickle=False)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    index = ItemIndex(kind="flat").build(vectors / np.maximum(norms, 1e-12))
    index.to_bytes().tofile(folder / ITEM_INDEX)
    return {"shape": list(vectors.shape), "index": "flat", "normalised": True}


def _write_fusion(run: TrainedRun, folder: Path) -> dict[str, Any] | None:
    """Copy the run's fitted cascade (``fusion/``) into ``folder/fusion``."""
    source = run.run_dir / FUSION_DIR
    if not (source / "fusion.yaml").is_file():
        return None
    config = FusionConfig.model_validate(yaml.safe_load((source / "fusion.yaml").read_text()))
    target = folder / FUSION_DIR
    (target / "retrievers").mkdir(parents=True)
    for name in ("fusion.yaml", "fusion.json", "results.json"):
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
    for name in config.retrievers:
        shutil.copyfile(
            source / "retrievers" / f"{name}.npz", target / "retrievers" / f"{name}.npz"
        )
    if config.rerank is not None and config.rerank.vectors == "categories":
        np.save(
            target / RERANK_VECTORS, np.asarray(rerank_vectors(config, run)), allow_pickle=False
        )
    return {"fusion": config.fusion.name, "retrievers": list(config.retrievers)}


def write_artifact(
    run: TrainedRun,
    out_dir: Path,
    *,
    name: str | None = None,
    extras: Extras | None = None,
    created: datetime | None = None,
) -> Path:
    """Bundle ``run`` into ``out_dir/<name>-<version>/`` atomically; returns that folder.

    ``name`` defaults to the config's name; ``extras`` may add files (see :data:`Extras`);
    ``created`` (default: now) sets the creation time recorded and used in the version.
    """
    created = created or datetime.now(UTC)
    bundle_name = _safe_name(name or run.config.name)
    data = run.data
    with staged_folder(out_dir, prefix=bundle_name) as staging:
        folder = staging.path
        (folder / CONFIG).write_text(
            yaml.safe_dump(run.config.model_dump(mode="json"), sort_keys=False), "utf-8"
        )
        from safetensors.torch import save_file

        state = {
            k: v.detach().cpu().contiguous().clone() for k, v in run.model.state_dict().items()
        }
        save_file(state, folder / WEIGHTS, metadata={"format": FORMAT})
        dense = {k: int(v.shape[1]) for k, v in data.examples.features.items() if v.dim() == 2}
        model = run.model
        sequential = None
        if isinstance(model, SequentialRecommender):
            reviews = data.examples.features.get("own_review")
            sequential = save_sequential(
                model,
                run.histories("test"),
                len(data.entities.user_ids),
                int(reviews.shape[1]) if reviews is not None else None,
                folder,
            )
        specs = dict(model.specs) if sequential is not None else data.specs
        parts = ModelParts(data.entities, specs, data.excluded_inputs, dense, data.examples.unit)
        save_parts(parts, folder)
        save_interactions(data.examples, folder / INTERACTIONS)
        if (data.dataset.root / FEATURES).is_file():
            shutil.copyfile(data.dataset.root / FEATURES, folder / FEATURES)
        if (run.run_dir / METRICS).is_file():
            shutil.copyfile(run.run_dir / METRICS, folder / METRICS)
        fusion = _write_fusion(run, folder)
        vectors = (
            _write_item_vectors(run, folder)
            if run.config.text is not None or fusion is not None
            else None
        )
        recorded = (
            extras(folder, model)
            if extras is not None and isinstance(model, MultiTaskModel)
            else {}
        )
        files = file_table(folder)
        version = artifact_version(files, created)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": bundle_name,
            "version": version,
            "created_at": created.astimezone(UTC).isoformat(),
            "mtlrec_version": __version__,
            "torch_version": torch.__version__,
            "source": {
                "run_dir": str(run.run_dir),
                "dataset": data.dataset.manifest.get("dataset", {}).get("name"),
            },
            "model": {
                "architecture": "sequential" if sequential is not None else "pointwise",
                "inputs": run.config.model.inputs.name,
                "backbone": run.config.model.backbone.name,
                "tasks": {t: s.kind for t, s in specs.items()},
                "parameters": sum(p.numel() for p in model.parameters()),
                "features": _input_description(run),
            },
            **({"sequential": sequential} if sequential is not None else {}),
            "item_vectors": vectors,
            "fusion": fusion,
            **recorded,
            "files": files,
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
        staging.name = f"{bundle_name}-{version}"
    return out_dir / f"{bundle_name}-{version}"
