"""``mtlrec train`` as a newcomer meets it: the run folder it is given (issue 13)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mtlrec.cli.main import app
from tiny_run import CONFIG, write_reviews

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def tiny_config(root: Path) -> Path:
    """The tiny run's config as a YAML file, one epoch."""
    raw = json.loads(json.dumps(CONFIG))
    raw["data"]["dataset"]["files"]["reviews"] = str(write_reviews(root / "reviews.json"))
    raw["training"]["epochs"] = 1
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def train(root: Path, out: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        [
            "train",
            "--config",
            str(root / "tiny.yaml"),
            "--out",
            str(out),
            "--cache-dir",
            str(root / "cache"),
            "--offline",
            *extra,
        ],
    )
    return result.exit_code, result.output


def steps(run: Path) -> int:
    return len((run / "train.jsonl").read_text().splitlines())


def test_a_second_train_into_the_same_folder_is_refused_unless_asked(tmp_path: Path) -> None:
    tiny_config(tmp_path)
    run = tmp_path / "run"
    code, output = train(tmp_path, run)
    assert code == 0, output
    lines, model = steps(run), (run / "model.pt").read_bytes()
    # a line per epoch, then a summary: best epoch, headline metrics, files, next commands
    assert "epoch 1/1" in output
    assert "trained tiny-export" in output and "1 epoch(s)" in output
    assert "test: ranking ndcg@5 " in output
    assert "interest auc" in output and "rating rmse" in output
    assert f"mtlrec fuse --run {run}" in output and "{'" not in output  # no raw dict
    code, output = train(tmp_path, run)
    assert code == 2 and "already holds a finished run" in output
    assert "--resume" in output and "--overwrite" in output
    assert steps(run) == lines and (run / "model.pt").read_bytes() == model  # untouched
    # --overwrite starts afresh: the log is not appended to, one TensorBoard file
    stopping = "training.early_stopping={monitor: valid/interest/auc, patience: 1}"
    code, output = train(tmp_path, run, "--overwrite", "--set", stopping)
    assert code == 0, output
    assert "epoch 1/1, valid/interest/auc " in output and "best epoch 1 of 1" in output
    assert steps(run) == lines
    assert len(list((run / "tensorboard").iterdir())) == 1


def test_skip_if_done_leaves_a_finished_run_of_the_same_config(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    run = tmp_path / "run"
    assert train(tmp_path, run)[0] == 0
    stamp = (run / "results.json").stat().st_mtime_ns
    code, output = train(tmp_path, run, "--skip-if-done")
    assert code == 0 and "not trained again" in output
    assert (run / "results.json").stat().st_mtime_ns == stamp
    # another config in the same folder is not silently kept
    raw = yaml.safe_load(config.read_text())
    raw["training"]["epochs"] = 2
    config.write_text(yaml.safe_dump(raw))
    code, output = train(tmp_path, run, "--skip-if-done")
    assert code == 2 and "another config" in output


def test_overwrite_never_empties_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    tiny_config(tmp_path)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    code, output = train(tmp_path, folder, "--overwrite")
    assert code == 2 and "not a run folder" in output
    assert (folder / "notes.txt").read_text() == "keep me"
    code, output = train(tmp_path, tmp_path / "new", "--resume")
    assert code == 2 and "no run to continue" in output


def test_the_cli_and_make_share_one_cache_default_and_it_is_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny_config(tmp_path)
    monkeypatch.delenv("MTLREC_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    result = runner.invoke(
        app, ["train", "--config", str(tmp_path / "tiny.yaml"), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    default = tmp_path / "home" / ".cache" / "mtlrec"
    assert f"cache: {default} (default)" in result.output
    assert (default / "prepared").is_dir()  # the prepared data went there
    # make sets no cache of its own: `make demo` uses the same default
    env = {k: v for k, v in os.environ.items() if k != "MTLREC_CACHE_DIR"}
    database = subprocess.run(
        ["make", "-n", "-p", "demo"], cwd=ROOT, env=env, capture_output=True, text=True
    ).stdout
    assert "MTLREC_CACHE_DIR" not in database
    assert "data prepare" not in database  # train prepares the data itself (item 3)


def test_the_recommend_hint_is_a_fuse_command_that_works(tmp_path: Path) -> None:
    tiny_config(tmp_path)
    run = tmp_path / "run"
    assert train(tmp_path, run)[0] == 0
    common = ["--cache-dir", str(tmp_path / "cache"), "--offline"]
    result = runner.invoke(app, ["recommend", "--run", str(run), "--user", "U0", *common])
    assert result.exit_code == 2
    hint = re.search(r"'(mtlrec fuse [^']+)'", result.output)
    assert hint is not None, result.output
    fused = runner.invoke(app, [*shlex.split(hint.group(1))[1:], *common])
    assert fused.exit_code == 0, fused.output
    assert "fusion config: the default" in fused.output
    result = runner.invoke(app, ["recommend", "--run", str(run), "--user", "U0", *common])
    assert result.exit_code == 0, result.output


def test_fuse_refuses_tasks_the_run_has_not_before_fitting_anything(tmp_path: Path) -> None:
    tiny_config(tmp_path)
    run = tmp_path / "run"
    assert train(tmp_path, run)[0] == 0
    config = tmp_path / "fusion.yaml"
    config.write_text("retrievers: {pop: {baseline: popularity}}\ntasks: [interest, genres]\n")
    result = runner.invoke(
        app,
        ["fuse", "--run", str(run), "--config", str(config), "--cache-dir", str(tmp_path / "c")],
    )
    assert result.exit_code == 2
    assert "['genres'] are not tasks of the run" in result.output
    assert "interest, rating, sentiment" in result.output  # what it has
    assert "fitted retriever" not in result.output and not (tmp_path / "c").exists()


def test_version_flag_and_data_options_have_help_on_every_command() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("mtlrec ")
    for command in (["train"], ["fuse"], ["recommend"], ["export"], ["data", "prepare"]):
        text = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "100"}).output
        assert "looked in before" in text, command  # --mirror
        assert "~/.cache/mtlrec" in text, command  # --cache-dir
        assert "Never download" in text, command  # --offline
        assert "list[Path]" not in text, command


def test_loading_the_language_model_prints_no_progress_bar(
    capfd: pytest.CaptureFixture[str],
) -> None:
    from mtlrec.text.encoder import TextEncoder, default_model_path

    TextEncoder.from_pretrained(default_model_path())
    captured = capfd.readouterr()
    assert "Loading weights" not in captured.err + captured.out


def test_ctrl_c_during_training_says_how_to_resume_and_the_command_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mtlrec.training.trainer import Trainer

    tiny_config(tmp_path)
    run = tmp_path / "run"
    original = Trainer._train_epoch

    def interrupt(self: Trainer, train: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_train_epoch", interrupt)
    code, output = train(tmp_path, run, "--set", "seed=3")
    assert code == 130 and "interrupted:" in output
    assert (run / "checkpoints" / "last.pt").is_file()  # saved before the first epoch
    command = re.search(r"(mtlrec train [^\n]+--resume)", output)
    assert command is not None and "--set seed=3" in command.group(1)
    monkeypatch.setattr(Trainer, "_train_epoch", original)
    args = shlex.split(command.group(1))[1:]
    result = runner.invoke(app, [*args, "--cache-dir", str(tmp_path / "cache"), "--offline"])
    assert result.exit_code == 0, result.output
    assert (run / "results.json").is_file()


def test_a_misspelled_config_key_gets_the_nearest_known_key(tmp_path: Path) -> None:
    tiny_config(tmp_path)
    code, output = train(tmp_path, tmp_path / "run", "--set", "training.epoch=3")
    assert code == 2
    assert "training.epoch: Extra inputs are not permitted (did you mean 'epochs'?)" in output
    assert "(from --set training.epoch=3)" in output and not (tmp_path / "run").exists()


def test_a_run_killed_mid_epoch_and_resumed_logs_every_step_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mtlrec.training.trainer import Trainer

    config = tiny_config(tmp_path)
    raw = yaml.safe_load(config.read_text())
    raw["training"]["epochs"] = 2
    config.write_text(yaml.safe_dump(raw))
    run = tmp_path / "run"
    original = Trainer._optimizer_step

    def killed(self: Trainer, *args: object) -> None:
        original(self, *args)  # type: ignore[arg-type]
        if self.state.epoch == 1 and self.state.step == self.state.steps_per_epoch + 2:
            raise KeyboardInterrupt  # two steps of the second epoch are logged

    monkeypatch.setattr(Trainer, "_optimizer_step", killed)
    code, output = train(tmp_path, run)
    assert code == 130, output
    monkeypatch.setattr(Trainer, "_optimizer_step", original)
    code, output = train(tmp_path, run, "--resume")
    assert code == 0, output
    records = [json.loads(line) for line in (run / "train.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if r["event"] == "step"]
    assert steps == list(range(1, len(steps) + 1))
    assert [r["epoch"] for r in records if r["event"] == "epoch"] == [0, 1]
