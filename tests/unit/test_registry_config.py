from __future__ import annotations

from pathlib import Path

import pytest

from mtlrec.config import ConfigError, PrepareConfig, apply_overrides, load_config
from mtlrec.core.registry import Registry, UnknownNameError


def test_registry_registers_and_lists_known_names_on_unknown() -> None:
    registry: Registry[int] = Registry("widget")
    registry.register("b")(2)
    registry.register("a")(1)
    assert registry.get("a") == 1
    assert registry.names() == ["a", "b"]
    with pytest.raises(UnknownNameError, match="unknown widget 'c'; known widgets: a, b"):
        registry.get("c")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("a")(3)


def test_registry_suggests_the_closest_known_name() -> None:
    registry: Registry[int] = Registry("weighting")
    for value, name in enumerate(("pcgrad", "cagrad", "static")):
        registry.register(name)(value)
    with pytest.raises(UnknownNameError) as error:
        registry.get("pcgard")
    assert str(error.value) == (
        "unknown weighting 'pcgard'; known weightings: cagrad, pcgrad, static"
        " (did you mean 'pcgrad'?)"
    )
    with pytest.raises(UnknownNameError) as error:
        registry.get("zzz")
    assert "did you mean" not in str(error.value)


def test_overrides_parse_yaml_values_and_nest() -> None:
    data = apply_overrides(
        {"split": {"seed": 1}},
        ["split.seed=7", "split.ratios=[0.5,0.25,0.25]", "dataset.name=ml-100k"],
    )
    assert data == {
        "split": {"seed": 7, "ratios": [0.5, 0.25, 0.25]},
        "dataset": {"name": "ml-100k"},
    }
    with pytest.raises(ConfigError, match="not of the form"):
        apply_overrides({}, ["novalue"])


def test_config_typo_is_an_error_naming_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("dataset: {name: ml-100k}\nsplit: {stratgy: random}\n")
    with pytest.raises(ConfigError) as error:
        load_config(PrepareConfig, path)
    assert str(path) in str(error.value)
    assert "split.stratgy" in str(error.value)


def test_config_ratios_must_sum_to_one(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("dataset: {name: ml-100k}\nsplit: {ratios: [0.5, 0.1, 0.1]}\n")
    with pytest.raises(ConfigError, match="sum to 1"):
        load_config(PrepareConfig, path)


def test_dataset_needs_name_or_source(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("dataset: {}\n")
    with pytest.raises(ConfigError, match="exactly one of"):
        load_config(PrepareConfig, path)
    path.write_text("dataset: {source: tabular}\n")
    with pytest.raises(ConfigError, match="needs 'files'"):
        load_config(PrepareConfig, path)


CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_preset_is_valid_and_names_registered_components(path: Path) -> None:
    from mtlrec.config.experiment import ExperimentConfig
    from mtlrec.data.catalog import DATASETS
    from mtlrec.models import BACKBONES, HEADS, INPUTS
    from mtlrec.weighting import WEIGHTINGS

    config = load_config(ExperimentConfig, path)
    assert config.data.dataset.name in DATASETS
    assert config.model.backbone.name in BACKBONES
    assert config.model.inputs.name in INPUTS
    assert config.weighting.name in WEIGHTINGS
    for task in (config.tasks or {}).values():
        assert task.head is None or task.head.name in HEADS


@pytest.mark.parametrize("path", sorted((CONFIGS / "data").glob("*.yaml")), ids=lambda p: p.name)
def test_every_data_config_is_valid(path: Path) -> None:
    assert load_config(PrepareConfig, path).dataset.name is not None


def test_experiment_data_gets_the_catalog_defaults_so_the_cache_key_is_honest() -> None:
    from mtlrec.config.experiment import ExperimentConfig

    config = ExperimentConfig.model_validate(
        {"data": {"dataset": {"name": "amazon-2018-gift-cards"}, "split": {"seed": 3}}}
    )
    assert config.data.split is not None
    assert (config.data.split.strategy, config.data.split.seed) == ("leave_one_out", 3)
    assert config.data.labels is not None
    assert "interest" in {label.name for label in config.data.labels}


def test_an_open_last_stage_runs_the_rest_of_the_epochs() -> None:
    from mtlrec.config.experiment import TrainingConfig

    stages = [{"epochs": 10}, {"tasks": ["interest"]}]
    training = TrainingConfig.model_validate({"epochs": 35, "stages": stages})
    assert [(s.epochs, s.tasks) for s in training.stages] == [(10, None), (25, ["interest"])]
    with pytest.raises(ValueError, match="only the last stage may leave out epochs"):
        TrainingConfig.model_validate({"epochs": 35, "stages": [{}, {"epochs": 3}]})
    with pytest.raises(ValueError, match="none are left for the last stage"):
        TrainingConfig.model_validate({"epochs": 10, "stages": stages})


def test_a_stage_naming_an_unknown_task_is_refused(tmp_path: Path) -> None:
    from mtlrec.config.experiment import ExperimentConfig

    path = tmp_path / "run.yaml"
    path.write_text(
        "data: {dataset: {name: ml-100k}}\n"
        "tasks: {interest: {}, rating: {loss: mse}}\n"
        "training: {stages: [{epochs: 2}, {tasks: [intrest]}], epochs: 5}\n"
    )
    with pytest.raises(ConfigError, match=r"training.stages\[1\].tasks: \['intrest'\]"):
        load_config(ExperimentConfig, path)
