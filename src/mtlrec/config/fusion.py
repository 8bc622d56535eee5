"""Schema of ``mtlrec fuse``: retrievers, the multi-task ranker's heads, fusion and re-ranking.

A fusion config sits beside a trained run (``mtlrec train``): the run gives the data split
and the multi-task model; this config names the candidate generators (baselines fitted on
the run's training interactions), which heads of the model become fusion sources, the
fusion method (fitted on the validation split only) and the diversity re-ranker.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from mtlrec.config.prepare import ComponentConfig, StrictModel


class RetrieverConfig(StrictModel):
    """One candidate generator: a registered baseline and its constructor parameters."""

    baseline: str
    params: dict[str, Any] = Field(default_factory=dict)


class RerankConfig(StrictModel):
    """MMR re-ranking of the fused list for diversity.

    ``trade_off`` is MMR's lambda (1 = fused order unchanged, 0 = diversity only); ``depth``
    is how many of the best fused items MMR chooses from; ``vectors`` says what item
    similarity means: cosine of the LM item embeddings, or of multi-hot categories read from
    the items table's ``category_column``.
    """

    trade_off: float = Field(default=0.8, ge=0.0, le=1.0)
    depth: int = Field(default=50, ge=1)
    vectors: Literal["lm", "categories"] = "lm"
    category_column: str | None = None

    @model_validator(mode="after")
    def _column_for_categories(self) -> RerankConfig:
        if self.vectors == "categories" and not self.category_column:
            raise ValueError("rerank.vectors 'categories' needs rerank.category_column")
        return self


class FusionConfig(StrictModel):
    """The cascade: retrieve (union of ``candidates`` per retriever) -> rank with the run's
    multi-task heads ``tasks`` (None: every head with one score per pair) -> ``fusion``
    (sources: those heads, plus each retriever's own score when ``retriever_scores``) ->
    optional ``rerank``. ``ks`` are the cut-offs reported."""

    retrievers: dict[str, RetrieverConfig]
    candidates: int = Field(default=200, ge=1)
    tasks: list[str] | None = None
    retriever_scores: bool = True
    fusion: ComponentConfig = Field(default_factory=lambda: ComponentConfig(name="linear"))
    rerank: RerankConfig | None = None
    ks: list[int] = Field(default_factory=lambda: [10, 20])

    @model_validator(mode="after")
    def _has_retrievers(self) -> FusionConfig:
        if not self.retrievers:
            raise ValueError("fusion config needs at least one retriever")
        if any(k <= 0 for k in self.ks):
            raise ValueError(f"ks must be positive, got {self.ks}")
        return self


DEFAULT_FUSION: dict[str, Any] = {
    "retrievers": {
        "ease": {"baseline": "ease", "params": {"l2": 500.0}},
        "user_knn": {"baseline": "user_knn", "params": {"neighbours": 100, "shrink": 10.0}},
    },
    "candidates": 100,
    "tasks": None,
    "fusion": {"name": "linear", "params": {"normalization": "zscore", "k": 10}},
    "ks": [10, 20],
}
"""The cascade ``mtlrec fuse`` fits when no ``--config`` is given: EASE and user kNN
retrieve, every head of the run that gives one score per pair ranks, linear fusion (weights
on validation). It names no task, so it fits any run."""
