"""The model artifact: a versioned, checksummed folder that serves without the dataset.

This module reads bundles and imports nothing of data preparation, training or the
pipeline (the service loads an artifact from its files alone);
:func:`mtlrec.export.write.write_artifact` bundles a trained run (and its ``fusion/``
folder when present) into ``<out>/<name>-<version>/``:

- ``config.yaml``            the resolved experiment config;
- ``weights.safetensors``    the model's state dict (:class:`MultiTaskModel` or the sequential
  recommender: parameters and persistent buffers, the entity tables among them);
- ``entities.safetensors``, ``model.json``, ``vocabularies.json``, ``interactions.npz``
  everything the model and the ranking data are rebuilt from (:mod:`mtlrec.export.parts`);
- ``sequential.safetensors`` (the sequential model only) each known user's history and the
  training reviews' content per item (:mod:`mtlrec.export.sequential`);
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
fsynced, then renamed into place (:func:`mtlrec.core.atomic.staged_folder`); an existing
bundle is never overwritten, a failed write (disk full, read-only folder) leaves nothing
behind, and the temporary folder of an export killed midway is removed by the next export
into the same folder.

:func:`load_artifact` checks the manifest (format, version, file list, every checksum)
before reading anything, and refuses a damaged bundle with an :class:`ArtifactError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from mtlrec import __version__
from mtlrec.config.experiment import ExperimentConfig
from mtlrec.config.fusion import FusionConfig
from mtlrec.core.types import HeadScorer, TaskSpec
from mtlrec.data.examples import EntityData
from mtlrec.data.features import FeatureSpace
from mtlrec.evaluation.protocol import RankingData, ranking_data
from mtlrec.export.checksums import MANIFEST, ArtifactError, verify_files
from mtlrec.export.parts import (
    INTERACTIONS,
    ModelParts,
    load_interactions,
    load_parts,
)
from mtlrec.export.sequential import SEQUENTIAL_FILE, load_sequential
from mtlrec.fusion.assemble import FUSION_DIR, cascade_from_parts
from mtlrec.fusion.cascade import Cascade
from mtlrec.models.architectures import Architecture
from mtlrec.models.factory import build_model
from mtlrec.models.multitask import MultiTaskModel, TaskModel
from mtlrec.models.sequential import SequentialRecommender
from mtlrec.models.sequential_factory import model_head_scorer, model_ranking_tasks
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
    model: TaskModel
    parts: ModelParts
    features: FeatureSpace | None
    ranking: RankingData | None
    item_embeddings: np.ndarray | None
    item_index: ItemIndex | None
    fused: FusedPipeline | None
    metrics: dict[str, Any] = field(default_factory=dict)
    histories: dict[int, np.ndarray] | None = None
    """The sequential model's known users' histories (item rows, oldest first); None for
    the pointwise model."""

    @property
    def sequential(self) -> bool:
        """Whether the bundle holds the sequential model (users scored from histories)."""
        return isinstance(self.model, SequentialRecommender)

    def head_scorer(self, tasks: Sequence[str]) -> HeadScorer:
        """The model's values of ``tasks`` per (known user row, item row) pair."""
        return model_head_scorer(
            self.model, self.config, self.parts.entities, lambda: self.histories or {}, tasks
        )

    def ranking_tasks(self, tasks: Sequence[str] | None) -> list[str]:
        """The model's tasks that score a (user, item) pair: ``tasks`` checked, or all."""
        return model_ranking_tasks(self.model, tasks)

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
        base = model_from_parts(self.config, self.parts)
        if entry["kind"] == "int8":
            return load_int8(base, self.path / entry["file"])
        return load_pruned(base, self.path / entry["file"])


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


def model_from_parts(config: ExperimentConfig, parts: ModelParts) -> MultiTaskModel:
    """The untrained model of ``config`` over ``parts`` (the global RNG is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        return build_model(config, parts.entities, parts.specs, parts.excluded_inputs, parts.dense)


def _load_fused(
    path: Path,
    scorer_for: Callable[[Sequence[str] | None], tuple[HeadScorer, list[str]]],
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
    scorer, tasks = scorer_for(config.tasks)
    cascade = cascade_from_parts(
        config,
        scorer,
        tasks,
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
    model: TaskModel
    histories = None
    if Architecture.of(config).sequential:
        if not (path / SEQUENTIAL_FILE).is_file():
            raise ArtifactError(f"{path}: a sequential model's bundle needs {SEQUENTIAL_FILE}")
        model, histories = load_sequential(path, config, parts)
    else:
        model = model_from_parts(config, parts)
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
    artifact = Artifact(
        path=path,
        manifest=manifest,
        config=config,
        model=model,
        parts=parts,
        features=FeatureSpace.load(path / FEATURES) if (path / FEATURES).is_file() else None,
        ranking=ranking,
        item_embeddings=embeddings,
        item_index=index,
        fused=None,
        metrics=json.loads((path / METRICS).read_text()) if (path / METRICS).is_file() else {},
        histories=histories,
    )

    def scorer_for(tasks: Sequence[str] | None) -> tuple[HeadScorer, list[str]]:
        chosen = artifact.ranking_tasks(tasks)
        return artifact.head_scorer(chosen), chosen

    if (path / FUSION_DIR / "fusion.yaml").is_file():
        artifact.fused = _load_fused(path, scorer_for, ranking, embeddings)
    return artifact
