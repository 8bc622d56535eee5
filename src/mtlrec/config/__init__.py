"""Configuration: pydantic schemas (typos fail loudly) and YAML loading with overrides."""

from mtlrec.config.loading import ConfigError, apply_overrides, load_config, load_yaml
from mtlrec.config.prepare import (
    ComponentConfig,
    DatasetConfig,
    FeatureConfig,
    KCoreConfig,
    PrepareConfig,
    SplitConfig,
)

__all__ = [
    "ComponentConfig",
    "ConfigError",
    "DatasetConfig",
    "FeatureConfig",
    "KCoreConfig",
    "PrepareConfig",
    "SplitConfig",
    "apply_overrides",
    "load_config",
    "load_yaml",
]
