"""The Trainer: exact resume, staged training, early stopping, accumulation, precision."""

from __future__ import annotations

import json
import resource
import signal
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from rich.console import Console

from conftest import TOY_SCHEMA, TOY_SPECS
from mtlrec.config.experiment import TrainingConfig
from mtlrec.data.examples import ExampleSet
from mtlrec.models import BACKBONES, HEADS, FeatureInputs, MultiTaskModel
from mtlrec.training.callbacks import Callback, EarlyStopping, JsonlLogger, ProgressBar
from mtlrec.training.loader import ExampleLoader, NegativeConfig
from mtlrec.training.trainer import Stage, Trainer, TrainerSettings
from mtlrec.weighting import make_weighting

SCHEMA = TOY_SCHEMA


def model_for(
    tables: dict[str, torch.Tensor], seed: int = 0, dropout: float = 0.2
) -> MultiTaskModel:
    torch.manual_seed(seed)
    inputs = FeatureInputs(SCHEMA, tables, embedding_dim=8, text_dim=8)
    body = BACKBONES.get("mmoe")(
        inputs.out_dim, list(TOY_SPECS), n_experts=2, expert=(16,), tower=(8,), dropout=dropout
    )
    heads = {t: HEADS.get("fc")(body.out_dim(t), s) for t, s in TOY_SPECS.items()}
    return MultiTaskModel(inputs, body, heads, TOY_SPECS)


def loader(examples: ExampleSet, negatives: bool = True) -> ExampleLoader:
    config = NegativeConfig(1, "uniform", {"click": 0.0}) if negatives else None
    return ExampleLoader(
        examples.subset("train"),
        32,
        seed=3,
        negatives=config,
        n_items=30,
        item_vocab_index=torch.arange(30) + 1,
    )


SETTINGS = TrainerSettings(lr=5e-3, warmup_steps=5, schedule="cosine", seed=11)


def trainer_for(
    model: MultiTaskModel,
    epochs: int,
    checkpoint_dir: Path | None = None,
    callbacks: Sequence[Callback] = (),
    **settings: Any,
) -> Trainer:
    return Trainer(
        model,
        TOY_SPECS,
        make_weighting("uncertainty", list(TOY_SPECS)),
        replace(SETTINGS, max_epochs=epochs, **settings),
        checkpoint_dir=checkpoint_dir,
        callbacks=callbacks,
    )


def flat(model: MultiTaskModel) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_two_epochs_equal_one_epoch_kill_resume_one_epoch(
    toy: Callable[..., Any], tmp_path: Path
) -> None:
    examples, tables = toy(n=256)
    straight = model_for(tables)
    trainer_for(straight, 2).fit(loader(examples))

    first = model_for(tables)
    trainer_for(first, 2, tmp_path, callbacks=[StopAfter(1)]).fit(loader(examples))
    assert (tmp_path / "last.pt").exists()
    torch.manual_seed(999)  # the "new process" starts from other random state
    resumed = model_for(tables, seed=123)
    state = trainer_for(resumed, 2, tmp_path).fit(
        loader(examples), resume_from=tmp_path / "last.pt"
    )
    assert state.epoch == 2
    assert torch.equal(flat(straight), flat(resumed))


class StopAfter(EarlyStopping):
    """Simulates a kill after ``epochs`` epochs (the checkpoint of that epoch is written)."""

    def __init__(self, epochs: int) -> None:
        super().__init__("unused")
        self.epochs = epochs

    def on_epoch_end(self, trainer: Trainer, state: Any, metrics: dict[str, float]) -> None:
        if state.epoch + 1 >= self.epochs:
            state.should_stop = True


def test_staged_training_only_moves_the_stage_tasks_heads(toy: Callable[..., Any]) -> None:
    examples, tables = toy(n=128)
    model = model_for(tables, dropout=0.0)
    before = {t: flat(model.heads[t]).clone() for t in TOY_SPECS}
    trainer = trainer_for(model, 0, stages=(Stage(1, ("click",)), Stage(1)))
    assert trainer.active_tasks(0) == ("click",)
    assert trainer.active_tasks(1) == tuple(TOY_SPECS)
    trainer.stages = (Stage(1, ("click",)),)
    trainer.max_epochs = 1
    trainer.fit(loader(examples, negatives=False))
    assert not torch.equal(flat(model.heads["click"]), before["click"])
    assert torch.equal(flat(model.heads["score"]), before["score"])
    assert torch.equal(flat(model.heads["tags"]), before["tags"])


def test_early_stopping_stops_and_restores_the_best_epoch(
    toy: Callable[..., Any], tmp_path: Path
) -> None:
    examples, tables = toy(n=128)
    model = model_for(tables)
    scores = iter([0.5, 0.7, 0.6, 0.55, 0.4, 0.3])
    snapshots: list[torch.Tensor] = []

    def validate(m: MultiTaskModel) -> dict[str, float]:
        snapshots.append(flat(m).clone())
        return {"valid/click/auc": next(scores)}

    trainer = trainer_for(
        model,
        6,
        tmp_path,
        monitor="valid/click/auc",
        callbacks=[
            EarlyStopping("valid/click/auc", patience=2),
            JsonlLogger(tmp_path / "log.jsonl"),
        ],
    )
    state = trainer.fit(loader(examples), validate)
    assert state.epoch == 4  # best at epoch 1, two epochs without improvement
    assert state.best_epoch == 1 and state.best == 0.7
    assert torch.equal(flat(model), snapshots[1])  # the best weights are restored
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert any('"weight/click"' in line for line in lines)  # task weights logged per step


def test_gradient_accumulation_matches_one_big_batch(toy: Callable[..., Any]) -> None:
    examples, tables = toy(n=64)
    results = []
    for batch, accumulate in ((32, 1), (16, 2)):
        model = model_for(tables, dropout=0.0)
        trainer = Trainer(
            model,
            TOY_SPECS,
            make_weighting("equal", list(TOY_SPECS)),
            TrainerSettings(
                optimizer="sgd",
                momentum=0.0,
                lr=0.1,
                max_epochs=1,
                schedule="constant",
                accumulate=accumulate,
                seed=0,
            ),
        )
        # fixed, full masks so the micro-batch means average to the big-batch mean
        data = examples.subset("train").select(torch.arange(32))
        for mask in data.masks.values():
            mask[:] = True
        trainer.fit(ExampleLoader(data, batch, shuffle=False))
        results.append(flat(model))
    assert torch.allclose(results[0], results[1], atol=1e-6)


def test_bf16_autocast_on_cpu_trains(toy: Callable[..., Any]) -> None:
    examples, tables = toy(n=256)
    model = model_for(tables, dropout=0.0)
    trainer = trainer_for(model, 3, precision="bf16", grad_clip=1.0)
    data = loader(examples, negatives=False)
    first = sum(trainer.task_losses(next(iter(data.batches(0))), list(TOY_SPECS)).values())
    trainer.fit(data)
    last = sum(trainer.task_losses(next(iter(data.batches(0))), list(TOY_SPECS)).values())
    assert float(last.detach()) < float(first.detach())


def test_fp16_needs_cuda(toy: Callable[..., Any]) -> None:
    _, tables = toy(n=8)
    with pytest.raises(ValueError, match="fp16 mixed precision needs CUDA"):
        trainer_for(model_for(tables), 1, precision="fp16")


def test_negatives_never_hit_training_positives(toy: Callable[..., Any]) -> None:
    examples, _ = toy(n=256)
    data = loader(examples)
    epoch = data.epoch_examples(0)
    n = len(examples.subset("train"))
    positives = set(
        zip(
            epoch.features["user_row"][:n].tolist(),
            epoch.features["item_row"][:n].tolist(),
            strict=True,
        )
    )
    negatives = zip(
        epoch.features["user_row"][n:].tolist(),
        epoch.features["item_row"][n:].tolist(),
        strict=True,
    )
    assert not positives & set(negatives)
    assert bool(epoch.masks["click"][n:].all()) and not bool(epoch.masks["score"][n:].any())
    assert float(epoch.labels["click"][n:].sum()) == 0.0
    assert not torch.equal(
        data.epoch_examples(1).features["item_row"][n:], epoch.features["item_row"][n:]
    )  # fresh negatives every epoch


def test_epoch_history_records_training_throughput(toy: Callable[..., Any]) -> None:
    """Every epoch's history has the training pass's time and examples/s (validation not
    counted): samples/s * seconds = the examples trained on, negatives included."""
    examples, tables = toy(n=128)
    train = loader(examples, negatives=False)
    trainer = trainer_for(model_for(tables), 2)
    state = trainer.fit(train, lambda m: {"valid/score": 0.0})
    expected = sum(b.size for b in train.batches(0))
    assert len(state.history) == 2
    for epoch in state.history:
        assert epoch["train/epoch_s"] > 0
        examples_seen = epoch["train/samples_per_s"] * epoch["train/epoch_s"]
        assert examples_seen == pytest.approx(expected, rel=1e-6)


def test_settings_from_config_carry_every_training_setting() -> None:
    """One settings object from the ``training`` section: stages become :class:`Stage`s and
    the early-stopping metric becomes the monitored one."""
    training = TrainingConfig.model_validate(
        {
            "optimizer": "sgd",
            "lr": 0.05,
            "weight_decay": 0.01,
            "momentum": 0.5,
            "schedule": "linear",
            "warmup_steps": 7,
            "epochs": 3,
            "stages": [{"epochs": 1, "tasks": ["click"]}, {"epochs": 2}],
            "grad_clip": 1.5,
            "accumulate": 2,
            "precision": "bf16",
            "early_stopping": {"monitor": "valid/score/rmse", "mode": "min"},
            "ema": 0.9,
        }
    )
    settings = TrainerSettings.from_config(training, seed=4)
    assert settings == TrainerSettings(
        optimizer="sgd",
        lr=0.05,
        weight_decay=0.01,
        momentum=0.5,
        schedule="linear",
        warmup_steps=7,
        max_epochs=3,
        stages=(Stage(1, ("click",)), Stage(2)),
        grad_clip=1.5,
        accumulate=2,
        precision="bf16",
        device="cpu",
        seed=4,
        ema=0.9,
        monitor="valid/score/rmse",
        mode="min",
    )
    plain = TrainerSettings.from_config(TrainingConfig())
    assert (plain.monitor, plain.mode, plain.stages) == (None, "max", ())


def test_stages_decide_the_epochs_run(toy: Callable[..., Any]) -> None:
    _, tables = toy(n=8)
    staged = trainer_for(model_for(tables), 10, stages=(Stage(1, ("click",)), Stage(2)))
    assert staged.max_epochs == 3
    assert trainer_for(model_for(tables), 4).stages == (Stage(4),)


def test_the_progress_bar_writes_only_to_its_console(
    toy: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A quiet console silences the bar and the epoch lines; a recording one gets both."""
    examples, tables = toy(n=64)
    quiet = ProgressBar(Console(quiet=True))
    trainer_for(model_for(tables), 1, callbacks=[quiet]).fit(loader(examples, negatives=False))
    assert capsys.readouterr().out == ""
    recorded = Console(record=True, force_terminal=False, width=100)
    trainer = trainer_for(model_for(tables), 1, callbacks=[ProgressBar(recorded)])
    trainer.fit(loader(examples, negatives=False), lambda m: {"valid/score": 0.5})
    assert "epoch 1/1" in recorded.export_text()


# ------------------------------------------------------------------ logs after a resume
THROUGHPUT = ("train/epoch_s", "train/samples_per_s")


class KillAt(Callback):
    """Simulates ``kill -9`` at ``step`` of ``epoch`` (after the logs of that step)."""

    def __init__(self, epoch: int, step: int) -> None:
        self.epoch, self.step = epoch, step

    def on_step_end(self, trainer: Trainer, state: Any, logs: dict[str, float]) -> None:
        if state.epoch == self.epoch and state.step == self.step:
            raise KeyboardInterrupt


def log_records(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSONL log as a record (a torn line fails), timings left out."""
    lines = path.read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in THROUGHPUT} for line in lines]


def killed_and_resumed(
    toy: Callable[..., Any], folder: Path, make_logger: Callable[[], Callback]
) -> None:
    """Three epochs, killed during the second (after its first checkpoint, mid-write of a
    log line), then resumed from ``folder/last.pt``: the logs see every session."""
    examples, tables = toy(n=256)
    steps_per_epoch = len(loader(examples))
    kill = KillAt(epoch=1, step=steps_per_epoch + 3)
    with pytest.raises(KeyboardInterrupt):
        trainer_for(model_for(tables), 3, folder, callbacks=[make_logger(), kill]).fit(
            loader(examples)
        )
    trainer_for(model_for(tables, seed=5), 3, folder, callbacks=[make_logger()]).fit(
        loader(examples), resume_from=folder / "last.pt"
    )


def test_after_a_resume_the_jsonl_log_holds_every_step_once(
    toy: Callable[..., Any], tmp_path: Path
) -> None:
    examples, tables = toy(n=256)
    straight = tmp_path / "straight.jsonl"
    trainer_for(model_for(tables), 3, callbacks=[JsonlLogger(straight)]).fit(loader(examples))
    log = tmp_path / "run" / "train.jsonl"

    class Logger(JsonlLogger):
        def on_step_end(self, trainer: Trainer, state: Any, logs: dict[str, float]) -> None:
            super().on_step_end(trainer, state, logs)
            if isinstance(trainer.callbacks[-1], KillAt) and state.step == 3 + len(
                loader(examples)
            ):
                with self.path.open("a") as handle:  # the kill tore the next line
                    handle.write('{"event": "step", "epo')

    killed_and_resumed(toy, tmp_path / "run", lambda: Logger(log))
    records = log_records(log)
    assert records == log_records(straight)  # bit-exact resume: the same losses too
    steps = [r["step"] for r in records if r["event"] == "step"]
    assert steps == list(range(1, len(steps) + 1))
    assert [r["epoch"] for r in records if r["event"] == "epoch"] == [0, 1, 2]


def test_after_a_resume_tensorboard_shows_every_step_once(
    toy: Callable[..., Any], tmp_path: Path
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from mtlrec.training.callbacks import TensorBoardLogger

    board = tmp_path / "tensorboard"
    killed_and_resumed(toy, tmp_path / "run", lambda: TensorBoardLogger(board))
    assert len(list(board.iterdir())) == 2  # one event file per session
    events = EventAccumulator(str(board))
    events.Reload()
    losses = [e.step for e in events.Scalars("loss")]
    assert losses == list(range(1, losses[-1] + 1)) and losses[-1] == 3 * len(loader(toy(n=256)[0]))
    assert [e.step for e in events.Scalars("train/epoch_s")] == [0, 1, 2]


def test_a_log_line_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    """A write that fails midway (here: past the file-size limit, as on a full disk) leaves
    the log as it was, and the error names the log."""
    from mtlrec.training.trainer import TrainState

    log = tmp_path / "train.jsonl"
    logger = JsonlLogger(log)
    logger.on_step_end(None, TrainState(step=1), {"loss": 1.0})  # type: ignore[arg-type]
    before = log.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 10, hard))
    try:
        with pytest.raises(Exception) as caught:
            logger.on_step_end(None, TrainState(step=2), {"loss": 0.5})  # type: ignore[arg-type]
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert log.read_bytes() == before
    assert str(caught.value) == f"cannot write {log}: file too large"


class KernelsSeen(Callback):
    """Records whether deterministic kernels are on while each epoch trains."""

    def __init__(self) -> None:
        self.seen: list[bool] = []

    def on_epoch_start(self, trainer: Trainer, state: Any) -> None:
        self.seen.append(torch.are_deterministic_algorithms_enabled())


@pytest.mark.parametrize("deterministic", [True, False])
def test_training_uses_deterministic_kernels_as_set_and_restores_the_setting(
    toy: Callable[..., Any], deterministic: bool
) -> None:
    """Multi-threaded CPU backward kernels add in varying order: a seeded run repeats only
    with deterministic kernels (on by default), and the process's setting comes back."""
    examples, tables = toy(n=64)
    seen = KernelsSeen()
    trainer = trainer_for(model_for(tables), 2, callbacks=[seen], deterministic=deterministic)
    assert not torch.are_deterministic_algorithms_enabled()
    trainer.fit(loader(examples, negatives=False))
    assert seen.seen == [deterministic, deterministic]
    assert not torch.are_deterministic_algorithms_enabled()
    assert TrainerSettings.from_config(TrainingConfig()).deterministic  # the default
