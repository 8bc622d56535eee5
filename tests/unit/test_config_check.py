"""Configs are checked before any work: every component name is registered and every
parameter binds to its constructor; each problem is named with its key and its origin.

The command line checks twice: first from the committed component index
(:mod:`mtlrec.config.fast_check`, no torch), then against the live registries; both give
the same messages for names and parameters."""

from __future__ import annotations

import inspect
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mtlrec.cli.main import app
from mtlrec.config import ConfigError, PrepareConfig, load_config
from mtlrec.config.binding import binding_problems, entry_signature, signature_entry
from mtlrec.config.experiment import ExperimentConfig
from mtlrec.config.fast_check import (
    REGENERATE,
    fast_check_experiment,
    fast_check_fusion,
    fast_check_prepare,
)
from mtlrec.config.fusion import FusionConfig
from mtlrec.fusion.check import check_fusion_config
from mtlrec.models.check import check_experiment_config, check_prepare_config

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
ML_100K = CONFIGS / "ml-100k.yaml"
ML_100K_FUSION = CONFIGS / "fusion" / "ml-100k.yaml"


def experiment_error(*overrides: str) -> str:
    """The message of the error that ``configs/ml-100k.yaml`` with ``overrides`` raises."""
    with pytest.raises(ConfigError) as error:
        load_config(ExperimentConfig, ML_100K, overrides, check=check_experiment_config)
    return str(error.value)


def checked(config: ExperimentConfig) -> str:
    """The message of the error ``check_experiment_config`` raises for ``config``."""
    with pytest.raises(ConfigError) as error:
        check_experiment_config(config)
    return str(error.value)


def preset(**changes: object) -> ExperimentConfig:
    """``configs/ml-100k.yaml`` with top-level sections replaced by ``changes``."""
    data = load_config(ExperimentConfig, ML_100K).model_dump(mode="json")
    return ExperimentConfig.model_validate({**data, **changes})


@pytest.mark.parametrize(
    ("override", "where", "known", "closest"),
    [
        (
            "model.backbone.name=mmoee",
            "model.backbone.name",
            "esmm, mmoe, ple, shared_bottom",
            "mmoe",
        ),
        ("weighting.name=pcgard", "weighting.name", "mgda, pcgrad, static", "pcgrad"),
        ("model.head.name=fcc", "model.head.name", "cosine, fc, self_attention", "fc"),
        ("tasks.genres.head={name: cosin}", "tasks.genres.head.name", "cosine, fc", "cosine"),
        ("tasks.rating.loss=mes", "tasks.rating.loss", "huber, infonce, mse", "mse"),
        ("model.inputs.name=feature", "model.inputs.name", "cross_encoder, features", "features"),
        ("data.dataset.name=ml100k", "data.dataset.name", "ml-100k, ml-1m", "ml-100k"),
    ],
)
def test_a_misspelled_component_names_the_valid_choices_and_the_closest(
    override: str, where: str, known: str, closest: str
) -> None:
    message = experiment_error(override)
    assert f"{where}: unknown" in message
    assert known in message
    assert f"did you mean {closest!r}?" in message


def test_a_misspelled_parameter_names_the_accepted_ones() -> None:
    message = experiment_error("model.backbone.params.n_expert=3")
    assert "model.backbone.params.n_expert: unknown parameter" in message
    assert "accepted: n_experts, expert, tower, dropout" in message
    assert "did you mean 'n_experts'?" in message


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ("weighting.params={alpah: 1.5}", "weighting.params.alpah"),
        ("model.inputs.params.embeding_dim=8", "model.inputs.params.embeding_dim"),
        ("model.head.params={hiden: [8]}", "model.head.params.hiden"),
        ("data.labels=[{name: like, params: {treshold: 3}}]", "data.labels.0.params.treshold"),
    ],
)
def test_every_family_checks_its_parameters(override: str, where: str) -> None:
    message = experiment_error(override, "model.head.name=fc")
    assert f"{where}: unknown parameter; accepted: " in message


def test_a_mistyped_parameter_names_the_expected_type_and_the_value() -> None:
    message = experiment_error("model.backbone.params.n_experts=four")
    assert "model.backbone.params.n_experts: expected int, got 'four'" in message
    assert "expected Sequence[int], got {'a': 1}" in experiment_error(
        "model.backbone.params.tower={a: 1}"
    )


def test_yaml_lists_pass_for_tuples_and_ints_for_floats() -> None:
    config = preset(
        model={"backbone": {"name": "ple", "params": {"expert": [8], "dropout": 0}}},
        weighting={"name": "static", "params": {"lambdas": {"like": 1, "rating": 0.5}}},
    )
    check_experiment_config(config)


def test_the_arguments_mtlrec_passes_itself_cannot_be_set() -> None:
    message = checked(preset(model={"backbone": {"name": "mmoe", "params": {"in_dim": 8}}}))
    assert "model.backbone.params.in_dim: 'in_dim' is passed by mtlrec itself" in message


def test_a_required_parameter_left_out_is_named() -> None:
    config = preset(
        data={"dataset": {"name": "census-income"}, "labels": [{"name": "tabular_binary"}]}
    )
    message = checked(config)
    assert "data.labels.0.params: missing required parameter 'column'" in message
    assert "missing required parameter 'positive'" in message


def test_a_source_dataset_checks_the_source_and_its_params() -> None:
    data = {"dataset": {"source": "tabulr", "files": {"interactions": "x.csv"}}}
    assert "data.dataset.source: unknown source 'tabulr'" in checked(preset(data=data))
    data = {"dataset": {"source": "tabular", "files": {"i": "x.csv"}, "params": {"item": {}}}}
    assert "data.dataset.params.item: unknown parameter" in checked(preset(data=data))
    data = {"dataset": {"name": "amazon-2018-gift-cards", "params": {"release": "2020"}}}
    assert "data.dataset.params.release: expected" in checked(preset(data=data))


def test_all_problems_are_reported_at_once() -> None:
    message = experiment_error(
        "weighting.name=pcgard", "model.backbone.params.n_expert=3", "tasks.rating.loss=mes"
    )
    assert message.count("\n") == 3  # a heading and one line per problem
    for where in ("weighting.name", "model.backbone.params.n_expert", "tasks.rating.loss"):
        assert f"  {where}: " in message


def test_a_set_override_is_blamed_not_the_yaml_file(tmp_path: Path) -> None:
    message = experiment_error("weighting.name=pcgard")
    assert message.startswith("--set weighting.name=pcgard: invalid configuration")
    assert str(ML_100K) not in message
    schema = experiment_error("training.lr=-1")
    assert schema.startswith("--set training.lr=-1: invalid configuration")
    assert "training.lr: Input should be greater than 0 (from --set training.lr=-1)" in schema

    broken = tmp_path / "broken.yaml"
    broken.write_text(ML_100K.read_text().replace("name: gradnorm", "name: gradnrm"))
    with pytest.raises(ConfigError) as error:
        load_config(
            ExperimentConfig,
            broken,
            ["training.lr=0.1", "model.backbone.name=mmo"],
            check=check_experiment_config,
        )
    lines = str(error.value).splitlines()
    assert lines[0] == f"{broken}: invalid configuration"  # the file has a problem of its own
    assert any(line.endswith("(from --set model.backbone.name=mmo)") for line in lines)
    assert any("'gradnrm'" in line and "--set" not in line for line in lines)


def test_a_directory_as_config_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(ExperimentConfig, CONFIGS)
    assert str(error.value) == f"{CONFIGS}: is a directory, not a YAML config file"


def test_a_set_that_is_not_yaml_names_the_set() -> None:
    assert "--set 'weighting.name=[x'" in experiment_error("weighting.name=[x")


def test_a_fusion_config_checks_baselines_and_fusion() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(
            FusionConfig,
            ML_100K_FUSION,
            ["retrievers.als.baseline=alss", "retrievers.user_knn.params.neighbors=3"]
            + ["fusion.name=liner"],
            check=check_fusion_config,
        )
    message = str(error.value)
    assert "retrievers.als.baseline: unknown baseline 'alss'" in message
    assert "did you mean 'als'?" in message
    assert (
        "retrievers.user_knn.params.neighbors: unknown parameter; accepted: neighbours" in message
    )
    assert "fusion.name: unknown fusion 'liner'; known fusions: formula, linear, rrf" in message


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_experiment_preset_passes_the_check(path: Path) -> None:
    load_config(ExperimentConfig, path, check=fast_check_experiment)
    load_config(ExperimentConfig, path, check=check_experiment_config)


@pytest.mark.parametrize("path", sorted((CONFIGS / "fusion").glob("*.yaml")), ids=lambda p: p.name)
def test_every_fusion_preset_passes_the_check(path: Path) -> None:
    load_config(FusionConfig, path, check=fast_check_fusion)
    load_config(FusionConfig, path, check=check_fusion_config)


@pytest.mark.parametrize("path", sorted((CONFIGS / "data").glob("*.yaml")), ids=lambda p: p.name)
def test_every_data_preset_passes_the_check(path: Path) -> None:
    config = load_config(PrepareConfig, path)
    fast_check_prepare(config)
    check_prepare_config(config)


def test_train_with_a_misspelled_weighting_fails_fast_and_writes_nothing(tmp_path: Path) -> None:
    """The acceptance case of issue 11: fails before any data is read (no cache folder) or
    any run folder is created (its time, under 2 s, is benchmarks/config_check_speed.py's
    to measure: a timed unit test flakes on a loaded machine)."""
    out, cache = tmp_path / "run", tmp_path / "cache"
    args = ["train", "--config", str(ML_100K), "--set", "weighting.name=pcgard"]
    args += ["--out", str(out), "--cache-dir", str(cache), "--offline"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert not out.exists() and not cache.exists()
    message = " ".join(result.output.split())  # the console wraps long lines
    assert "--set weighting.name=pcgard" in message
    assert "known weightings: cagrad, dwa, equal, gradnorm, mgda, pcgrad" in message
    assert "did you mean 'pcgrad'?" in message
    assert "Traceback" not in message


def test_train_with_a_directory_as_config_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["train", "--config", str(CONFIGS), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert "is a directory, not a YAML config file" in " ".join(result.output.split())
    assert result.exception is None or isinstance(result.exception, SystemExit)


# ---- the fast check: the component index, no torch ----------------------------------------


def error_of(check: Callable[[Any], None], model: type[Any], path: Path, *overrides: str) -> str:
    """The message of the error that ``path`` with ``overrides`` raises under ``check``."""
    with pytest.raises(ConfigError) as error:
        load_config(model, path, overrides, check=check)
    return str(error.value)


@pytest.mark.parametrize(
    "overrides",
    [
        ["model.backbone.name=mmoee"],
        ["weighting.name=pcgard"],
        ["model.head.name=fcc"],
        ["tasks.genres.head={name: cosin}"],
        ["tasks.rating.loss=mes"],
        ["model.inputs.name=feature"],
        ["data.dataset.name=ml100k"],
        ["model.backbone.params.n_expert=3"],
        ["model.backbone.params.in_dim=8"],
        ["weighting.params={alpah: 1.5}"],
        ["model.inputs.params.embeding_dim=8"],
        ["model.head.name=fc", "model.head.params={hiden: [8]}"],
        ["data.labels=[{name: like, params: {treshold: 3}}]"],
        ["data.labels=[{name: tabular_binary}]"],
        ["data.labels=[{name: lik}]"],
        ["data.dataset={source: tabulr, files: {interactions: x.csv}}"],
        ["data.dataset={source: tabular, files: {i: x.csv}, params: {item: {}}}"],
        ["data.dataset={name: amazon-2018-gift-cards, params: {relase: '2018'}}"],
        ["weighting.name=pcgard", "model.backbone.params.n_expert=3", "tasks.rating.loss=mes"],
    ],
    ids=lambda overrides: " ".join(overrides),
)
def test_the_fast_check_names_the_same_problems_as_the_full_check(overrides: list[str]) -> None:
    fast = error_of(fast_check_experiment, ExperimentConfig, ML_100K, *overrides)
    assert fast == error_of(check_experiment_config, ExperimentConfig, ML_100K, *overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        ["retrievers.als.baseline=alss"],
        ["retrievers.user_knn.params.neighbors=3"],
        ["fusion.name=liner"],
        ["fusion.name=formula"],  # its required 'formula' left out
        ["retrievers.als.baseline=alss", "fusion.params.gird=3"],
    ],
    ids=lambda overrides: " ".join(overrides),
)
def test_the_fast_fusion_check_names_the_same_problems(overrides: list[str]) -> None:
    fast = error_of(fast_check_fusion, FusionConfig, ML_100K_FUSION, *overrides)
    assert fast == error_of(check_fusion_config, FusionConfig, ML_100K_FUSION, *overrides)


def test_the_fast_prepare_check_names_the_same_problems() -> None:
    data = {"dataset": {"name": "census-income"}, "labels": [{"name": "tabular_binary"}]}
    config = PrepareConfig.model_validate(data)
    errors = []
    for check in (fast_check_prepare, check_prepare_config):
        with pytest.raises(ConfigError) as error:
            check(config)
        errors.append(error.value)
    assert str(errors[0]) == str(errors[1])
    assert errors[0].problems == errors[1].problems
    assert "labels.0.params: missing required parameter 'column'" in str(errors[0])


def test_parameter_types_are_left_to_the_full_check() -> None:
    overrides = ["model.backbone.params.n_experts=four"]
    load_config(ExperimentConfig, ML_100K, overrides, check=fast_check_experiment)
    assert "expected int, got 'four'" in error_of(
        check_experiment_config, ExperimentConfig, ML_100K, *overrides
    )


def _every_kind(a: int, b: str, /, c: float, *args: int, d: int, e: str = "x", **kw: Any) -> None:
    """A constructor with every kind of parameter."""


def _keywords_only(first: int, *, need: str, maybe: int = 1) -> None:
    """A constructor without ``**kwargs``."""


@pytest.mark.parametrize("target", [_every_kind, _keywords_only], ids=lambda t: t.__name__)
@pytest.mark.parametrize(
    "params", [{}, {"c": 1, "d": 2}, {"a": 1, "need": "y"}, {"need": "y", "mabye": 2}, {"zz": 0}]
)
@pytest.mark.parametrize("supplied", [0, 1, 2])
def test_an_index_entry_binds_like_its_live_signature(
    target: Callable[..., None], params: dict[str, Any], supplied: int
) -> None:
    entry = signature_entry(target, supplied)
    where = ("x", "params")
    assert binding_problems(entry_signature(entry), params, supplied, where) == binding_problems(
        inspect.signature(target), params, supplied, where
    )


def run_python(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """This interpreter (a fresh process: no torch imported yet) run in the repository."""
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def test_the_committed_component_index_matches_the_registries() -> None:
    """In a fresh process, so the registries hold only the packaged components (the
    extending tests register throwaway ones for a while)."""
    result = run_python("tools/write_component_index.py", "--check")
    assert result.returncode == 0, (
        f"src/mtlrec/config/components.json is stale (a component was added or a "
        f"constructor changed); regenerate it with: {REGENERATE}\n{result.stderr}"
    )


FORBIDDEN_PREFIXES = (
    "torch",
    "numpy",
    "mtlrec.models",
    "mtlrec.weighting",
    "mtlrec.baselines",
    "mtlrec.fusion",
    "mtlrec.data.sources",
    "mtlrec.data.labels",
)
"""Modules the fast check must not import: torch, numpy and every registry of components."""

FAST_CHECK_SCRIPT = f"""
import sys
from pathlib import Path
from mtlrec.config import PrepareConfig, load_config
from mtlrec.config.experiment import ExperimentConfig
from mtlrec.config.fusion import FusionConfig
from mtlrec.config.fast_check import fast_check_experiment, fast_check_fusion, fast_check_prepare

load_config(ExperimentConfig, Path("configs/ml-100k.yaml"), check=fast_check_experiment)
load_config(FusionConfig, Path("configs/fusion/ml-100k.yaml"), check=fast_check_fusion)
for path in sorted(Path("configs/data").glob("*.yaml")):
    fast_check_prepare(load_config(PrepareConfig, path))
print(sorted(m for m in sys.modules if m.startswith({FORBIDDEN_PREFIXES!r})))
"""


def test_the_fast_check_imports_no_torch_and_no_registry() -> None:
    result = run_python("-c", FAST_CHECK_SCRIPT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"the fast check imported {result.stdout.strip()}"


CLI_SCRIPT = """
import atexit, sys
atexit.register(lambda: print("torch imported:", "torch" in sys.modules, file=sys.stderr))
from mtlrec.cli.main import app
app()
"""
"""``mtlrec ARGS`` in this process, saying at exit whether torch was imported."""


@pytest.mark.parametrize(
    ("command", "known"),
    [
        (
            ["train", "--config", "configs/ml-100k.yaml", "--set", "weighting.name=pcgard"],
            "known weightings: cagrad, dwa, equal, gradnorm, mgda, pcgrad",
        ),
        (
            ["fuse", "--run", "{tmp}/run", "--config", "configs/fusion/ml-100k.yaml"]
            + ["--set", "fusion.name=liner"],
            "known fusions: formula, linear, rrf, softmax, stacking",
        ),
        (
            ["data", "prepare", "ml-100k", "--out", "{tmp}/run", "--set", "labels=[{name: lik}]"],
            "known label builders: behaviour, brand, category",
        ),
    ],
    ids=["train", "fuse", "data-prepare"],
)
def test_a_misspelled_name_fails_on_the_command_line_without_torch(
    command: list[str], known: str, tmp_path: Path
) -> None:
    args = [part.replace("{tmp}", str(tmp_path)) for part in command]
    args += ["--cache-dir", str(tmp_path / "cache"), "--offline"]
    if command[0] == "train":
        args += ["--out", str(tmp_path / "run")]
    result = run_python("-c", CLI_SCRIPT, *args)
    assert result.returncode == 2, result.stderr
    assert known in " ".join(result.stderr.split())
    assert "torch imported: False" in result.stderr, "the config check imported torch"
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


def test_the_mtlrec_script_fails_fast_on_a_misspelled_weighting(tmp_path: Path) -> None:
    """Issue 11's acceptance case as a user runs it: the installed ``mtlrec`` script, a
    fresh process. Its wall time is printed, not asserted (a loaded machine would make a
    bound flaky); ``benchmarks/config_check_speed.py`` measures it, and the test above
    makes sure the check imports no torch, which is what made it slow."""
    script = Path(sys.executable).with_name("mtlrec")
    assert script.is_file(), (
        f"{script}: the mtlrec console script is not installed (pip install -e .)"
    )
    out = tmp_path / "run"
    start = time.perf_counter()
    result = subprocess.run(
        [str(script), "train", "--config", str(ML_100K), "--set", "weighting.name=pcgard"]
        + ["--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--offline"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    seconds = time.perf_counter() - start
    print(f"mtlrec train with a misspelled weighting: exit {result.returncode} in {seconds:.2f} s")
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "--set weighting.name=pcgard: invalid configuration" in message
    assert "weighting.name: unknown weighting 'pcgard'" in message
    assert (
        "known weightings: cagrad, dwa, equal, gradnorm, mgda, pcgrad, static, uncertainty"
        in message
    )
    assert "did you mean 'pcgrad'?" in message
    assert "Traceback" not in message
    assert not out.exists() and not (tmp_path / "cache").exists()
