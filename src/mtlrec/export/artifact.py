"""The model artifact: a versioned, checksummed folder that serves without the dataset.

:func:`write_artifact` bundles a trained run (and its ``fusion/`` folder when present) into
``<out>/<name>-<version>/``:

- ``config.yaml``            the resolved experiment config;
- ``weights.safetensors``    the :class:`MultiTaskModel` state dict (parameters and persistent
  buffers, the entity tables among them);
- ``entities.safetensors``, ``model.json``, ``vocabularies.json``, ``interactions.npz``
  everything the model and the ranking data are rebuilt from (:mod:`mtlrec.export.parts`);
- ``features.json``          the prepared dataset's train-fitted vocabularies and scalers;
- ``results.json``           the run's metrics (``mtlrec train``);
- ``item_embeddings.npy``    LM item embeddings ``(n_items, D)`` (the vectors the cascade's
  MMR and diversity use) and ``item_index.faiss``, an exact inner-product FAISS index over
  them, L2-normalised (similar items); only for runs with text or a fusion;
- ``fusion/``                the fitted cascade (``fusion.yaml``, ``fusion.json``,
  ``retrievers/<name>.npz``, ``results.json``; the two-tower retriever's FAISS index lives
  in its ``.npz``), when the run was fused;
- whatever ``extras`` adds (``mtlrec export``: ``onnx/``, ``variants/``, ``reports/``);
- ``manifest.json``          format and version, mtlrec / torch versions, creation time, the
  model's inputs and tasks, and the sha256 and size of every other file.

**Version.** ``<UTC creation time %Y%m%dT%H%M%SZ>-<8 hex digits>``, the digits being the
sha256 of the config's and the weights' checksums: the time orders bundles, the digest tells
different models apart. ``name`` defaults to the config's name.

**Atomic.** The folder is built under a temporary name beside the destination, every file
fsynced, then renamed into place (:mod:`mtlrec.export.atomic`); an existing bundle is never
overwritten.

:func:`load_artifact` checks the manifest (format, version, file list, every checksum)
before reading anything, and refuses a damaged bundle with an :class:`ArtifactError`.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from mtlrec import __version__
from mtlrec.config.experiment import ExperimentConfig
from mtlrec.config.fusion import FusionConfig
from mtlrec.core.types import TaskSpec
from mtlrec.data.examples import EntityData
from mtlrec.data.features import FeatureSpace
from mtlrec.export.atomic import staged_folder
from mtlrec.export.checksums import MANIFEST, ArtifactError, file_table, verify_files
from mtlrec.export.parts import (
    INTERACTIONS,
    ModelParts,
    load_interactions,
    load_parts,
    save_interactions,
    save_parts,
)
from mtlrec.fusion.cascade import Cascade
from mtlrec.models.multitask import MultiTaskModel
from mtlrec.pipeline.fuse import FUSION_DIR, TrainedRun, cascade_from_parts, rerank_vectors
from mtlrec.pipeline.ranking_data import RankingData, ranking_data
from mtlrec.retrieval.faiss_index import ItemIndex

FORMAT = "mtlrec-artifact"
FORMAT_VERSION = 1
"""The bundle layout this mtlrec writes and reads; a bundle of another version is refused."""

CONFIG = "config.yaml"
WEIGHTS = "weights.safetensors"
FEATURES = "features.json"
METRICS = "results.json"
ITEM_EMBEDDINGS = "item_embeddings.npy"
ITEM_INDEX = "item_index.faiss"
RERANK_VECTORS = "rerank_vectors.npy"
"""``fusion/rerank_vectors.npy``: MMR's category vectors, when the cascade re-ranks by them."""

Extras = Callable[[Path, MultiTaskModel], dict[str, Any]]
"""``extras(folder, model)`` writes more files into the bundle being built and returns what
the manifest records about them (``{"onnx": {...}, "variants": {...}}``)."""


@dataclass
class FusedPipeline:
    """A bundle's cascade, ready to run: its config, the cascade and its metrics."""

    config: FusionConfig
    cascade: Cascade
    results: dict[str, Any]


@dataclass
class Artifact:
    """A loaded, verified bundle: everything a service needs, no dataset.

    ``model`` is the float model in eval mode on the CPU; ``parts`` hold the entities (ids
    in row order, id-vocabulary indices, entity tables, per-user stand-ins ``(N_users, D)``
    for per-example vectors), task specs and input widths; ``features`` the train-fitted
    vocabularies and scalers (None when the run had none); ``ranking`` the seen / train
    interactions per split (None unless examples are interactions); ``item_embeddings``
    ``(n_items, D)`` and ``item_index`` (None for runs without text or fusion); ``fused``
    the cascade (None when the run was not fused); ``metrics`` the run's ``results.json``.
    """

    path: Path
    manifest: dict[str, Any]
    config: ExperimentConfig
    model: MultiTaskModel
    parts: ModelParts
    features: FeatureSpace | None
    ranking: RankingData | None
    item_embeddings: np.ndarray | None
    item_index: ItemIndex | None
    fused: FusedPipeline | None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def entities(self) -> EntityData:
        return self.parts.entities

    @property
    def specs(self) -> dict[str, TaskSpec]:
        return self.parts.specs

    @property
    def onnx_path(self) -> Path | None:
        """The ONNX model of the bundle, if ``mtlrec export --onnx`` wrote one."""
        onnx = self.manifest.get("onnx")
        return None if not onnx else self.path / onnx["file"]

    @property
    def variants(self) -> dict[str, dict[str, Any]]:
        """Compressed variants by name (``int8``, ``pruned-magnitude-0.3``, ...)."""
        return dict(self.manifest.get("variants", {}))

    def variant(self, name: str) -> MultiTaskModel:
        """The compressed variant ``name`` rebuilt in eval mode (see :attr:`variants`)."""
        from mtlrec.export.prune import load_pruned
        from mtlrec.export.quantize import load_int8

        if name not in self.variants:
            raise KeyError(f"{self.path}: no variant {name!r}; it has {sorted(self.variants)}")
        entry = self.variants[name]
        base = build_model(self.config, self.parts)
        if entry["kind"] == "int8":
            return load_int8(base, self.path / entry["file"])
        return load_pruned(base, self.path / entry["file"])


# ----------------------------------------------------------------------------- writing
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
    """Each model input (a batch feature): dtype and shape with the batch axis named."""
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
        parts = ModelParts(
            data.entities, data.specs, data.excluded_inputs, dense, data.examples.unit
        )
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
        recorded = extras(folder, run.model) if extras is not None else {}
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
                "inputs": run.config.model.inputs.name,
                "backbone": run.config.model.backbone.name,
                "tasks": {t: s.kind for t, s in data.specs.items()},
                "parameters": sum(p.numel() for p in run.model.parameters()),
                "features": _input_description(run),
            },
            "item_vectors": vectors,
            "fusion": fusion,
            **recorded,
            "files": files,
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
        staging.name = f"{bundle_name}-{version}"
    return out_dir / f"{bundle_name}-{version}"


# ----------------------------------------------------------------------------- reading
def read_manifest(path: Path) -> dict[str, Any]:
    """The verified manifest of the bundle at ``path``: format and version checked, every
    listed file present with its size and sha256, no file unlisted."""
    if not path.is_dir():
        raise ArtifactError(f"{path}: not a folder; an artifact is a folder")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"{path}: no {MANIFEST}; is this an artifact of 'mtlrec export'?")
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{path}: {MANIFEST} is not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path}: {MANIFEST} does not describe an {FORMAT} bundle")
    found = manifest.get("format_version")
    if found != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: format version {found!r} is not supported; mtlrec {__version__} reads "
            f"format version {FORMAT_VERSION} (re-export the run with this mtlrec)"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or WEIGHTS not in files or CONFIG not in files:
        raise ArtifactError(f"{path}: {MANIFEST} has no file table with {CONFIG} and {WEIGHTS}")
    verify_files(path, files)
    return manifest


def build_model(config: ExperimentConfig, parts: ModelParts) -> MultiTaskModel:
    """The untrained model of ``config`` over ``parts`` (the global RNG is left untouched)."""
    from mtlrec.training.experiment import assemble_model

    with torch.random.fork_rng(devices=[]):
        return assemble_model(
            config, parts.entities, parts.specs, parts.excluded_inputs, parts.dense
        )


def _load_fused(
    path: Path,
    model: MultiTaskModel,
    parts: ModelParts,
    ranking: RankingData | None,
    item_embeddings: np.ndarray | None,
) -> FusedPipeline:
    from mtlrec.baselines.base import Recommender
    from mtlrec.fusion.base import Fusion

    folder = path / FUSION_DIR
    config = FusionConfig.model_validate(yaml.safe_load((folder / "fusion.yaml").read_text()))
    if ranking is None:
        raise ArtifactError(f"{path}: a fused bundle needs interaction examples")
    retrievers = {
        name: Recommender.load(folder / "retrievers" / f"{name}.npz") for name in config.retrievers
    }
    vectors: np.ndarray | None = None
    if config.rerank is not None:
        vectors = (
            np.load(folder / RERANK_VECTORS, allow_pickle=False)
            if config.rerank.vectors == "categories"
            else item_embeddings
        )
    cascade = cascade_from_parts(
        config,
        model,
        parts.entities,
        retrievers,
        Fusion.load(folder / "fusion.json"),
        item_vectors=vectors,
        item_popularity=ranking.item_popularity,
        user_activity=ranking.user_activity,
    )
    results_path = folder / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    return FusedPipeline(config, cascade, results)


def load_artifact(path: Path) -> Artifact:
    """Verify and load the bundle at ``path`` (see :class:`Artifact`); a damaged, incomplete
    or foreign bundle raises :class:`ArtifactError` before anything is built."""
    from safetensors.torch import load_file

    manifest = read_manifest(path)
    config = ExperimentConfig.model_validate(yaml.safe_load((path / CONFIG).read_text("utf-8")))
    parts = load_parts(path)
    model = build_model(config, parts)
    model.load_state_dict(load_file(path / WEIGHTS))
    model.eval()
    ranking = None
    if parts.unit == "interaction" and (path / INTERACTIONS).is_file():
        examples = load_interactions(path / INTERACTIONS, parts.unit)
        ranking = ranking_data(examples, len(parts.entities.user_ids), len(parts.entities.item_ids))
    embeddings = index = None
    if (path / ITEM_EMBEDDINGS).is_file():
        embeddings = np.load(path / ITEM_EMBEDDINGS, allow_pickle=False)
        index = ItemIndex.from_bytes(np.fromfile(path / ITEM_INDEX, dtype=np.uint8), kind="flat")
    fused = (
        _load_fused(path, model, parts, ranking, embeddings)
        if (path / FUSION_DIR / "fusion.yaml").is_file()
        else None
    )
    return Artifact(
        path=path,
        manifest=manifest,
        config=config,
        model=model,
        parts=parts,
        features=FeatureSpace.load(path / FEATURES) if (path / FEATURES).is_file() else None,
        ranking=ranking,
        item_embeddings=embeddings,
        item_index=index,
        fused=fused,
        metrics=json.loads((path / METRICS).read_text()) if (path / METRICS).is_file() else {},
    )
