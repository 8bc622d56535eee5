"""Schema of a ``data prepare`` run: which dataset, k-core, split and task labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ComponentConfig(StrictModel):
    """A registered component chosen by name, with its own keyword parameters."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class DatasetConfig(StrictModel):
    """A named dataset from the catalog, or a source with explicit files (your own data)."""

    name: str | None = None
    source: str | None = None
    files: dict[str, Path] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_of(self) -> DatasetConfig:
        if (self.name is None) == (self.source is None):
            raise ValueError("give exactly one of 'name' (a catalog dataset) or 'source'")
        if self.source is not None and not self.files:
            raise ValueError("a 'source' dataset needs 'files' (role: path)")
        return self


class KCoreConfig(StrictModel):
    """Iterative k-core filter; 0 disables it."""

    user: int = Field(default=0, ge=0)
    item: int = Field(default=0, ge=0)


class SplitConfig(StrictModel):
    """How interactions (or tabular rows) are split into train / valid / test.

    ``ties`` orders a user's pairs with equal times in ``leave_one_out``: ``random`` (a
    seeded random order, from ``seed``) or ``interaction_id`` (file order). ``temporal``
    needs no rule (pairs tied at a cut go together to the earlier split); ``random`` has
    no order in time.
    """

    strategy: Literal["random", "temporal", "leave_one_out"] = "random"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 42
    ties: Literal["random", "interaction_id"] = "random"

    @field_validator("ratios")
    @classmethod
    def _sum_to_one(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(r < 0 for r in value) or abs(sum(value) - 1.0) > 1e-6:
            raise ValueError(f"ratios must be non-negative and sum to 1, got {value}")
        return value


class FeatureConfig(StrictModel):
    """Which attribute columns get encoders fitted on train; ``auto`` picks them per dataset."""

    user_columns: list[str] | Literal["auto"] = "auto"
    item_columns: list[str] | Literal["auto"] = "auto"
    min_count: int = Field(default=1, ge=1)


class PrepareConfig(StrictModel):
    """Everything ``mtlrec data prepare`` does. ``split``/``labels`` default per dataset."""

    dataset: DatasetConfig
    kcore: KCoreConfig = Field(default_factory=KCoreConfig)
    split: SplitConfig | None = None
    labels: list[ComponentConfig] | None = None
    features: FeatureConfig = Field(default_factory=FeatureConfig)
