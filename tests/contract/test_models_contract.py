"""Every registered backbone and head: learns the toy task, round-trips, repeats by seed.

A new component is tested by registering it: it is built with its own ``example_params``
(a class attribute, see ``docs/extending.md``); no table here names it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from conftest import TOY_SCHEMA, TOY_SPECS
from mtlrec.core.types import TaskSpec
from mtlrec.data.examples import ExampleSet
from mtlrec.models import BACKBONES, HEADS, FeatureInputs, MultiTaskModel
from mtlrec.training.loader import ExampleLoader
from mtlrec.training.trainer import Trainer, TrainerSettings
from mtlrec.weighting import make_weighting

SCHEMA = TOY_SCHEMA


def build(
    backbone: str,
    tables: dict[str, torch.Tensor],
    head: str = "fc",
    specs: dict[str, TaskSpec] = TOY_SPECS,
) -> MultiTaskModel:
    inputs = FeatureInputs(SCHEMA, tables, embedding_dim=8, text_dim=8)
    body_class = BACKBONES.get(backbone)
    body = body_class(inputs.out_dim, list(specs), **body_class.example_params)
    heads = {}
    for task, spec in specs.items():  # tasks a head cannot serve get the fc head
        head_class = HEADS.get(head if HEADS.get(head).supports(spec) else "fc")
        heads[task] = head_class(body.out_dim(task), spec, **head_class.example_params)
    return MultiTaskModel(inputs, body, heads, specs)


def with_head_features(examples: ExampleSet, tables: dict[str, torch.Tensor]) -> ExampleSet:
    """Adds the features the attention and cosine heads read (token ids, a target vector)."""
    items = examples.features["item_row"]
    kind = tables["items.kind"][items]
    tokens = torch.stack([kind + 1, (items % 5) + 10, torch.zeros_like(items)], dim=1)
    features = {
        **examples.features,
        "item_tokens": tokens,
        "item_vector": tables["items.text"][items],
    }
    return ExampleSet(
        examples.unit, features, examples.labels, examples.masks, examples.split, examples.cold_item
    )


def train(model: MultiTaskModel, examples: ExampleSet, epochs: int = 15, seed: int = 0) -> Trainer:
    trainer = Trainer(
        model,
        TOY_SPECS,
        make_weighting("equal", list(TOY_SPECS)),
        TrainerSettings(lr=1e-2, max_epochs=epochs, seed=seed, schedule="constant"),
    )
    trainer.fit(ExampleLoader(examples.subset("train"), 64, seed=seed))
    return trainer


def losses(model: MultiTaskModel, examples: ExampleSet) -> dict[str, float]:
    trainer = Trainer(model, TOY_SPECS, make_weighting("equal", list(TOY_SPECS)))
    model.eval()
    with torch.no_grad():
        batch = ExampleLoader(examples, len(examples), shuffle=False).batches(0)
        return {
            t: float(v) for t, v in trainer.task_losses(next(iter(batch)), list(TOY_SPECS)).items()
        }


@pytest.mark.parametrize("backbone", BACKBONES.names())
def test_backbone_learns_the_toy_tasks(backbone: str, toy: Callable[..., Any]) -> None:
    examples, tables = toy()
    torch.manual_seed(0)
    model = build(backbone, tables)
    before = losses(model, examples)
    train(model, examples)
    after = losses(model, examples)
    for task in TOY_SPECS:
        assert after[task] < 0.6 * before[task], (task, before[task], after[task])


@pytest.mark.parametrize("head", HEADS.names())
def test_head_learns_the_toy_tasks(head: str, toy: Callable[..., Any]) -> None:
    examples, tables = toy()
    examples = with_head_features(examples, tables)
    torch.manual_seed(0)
    model = build("shared_bottom", tables, head=head)
    before = losses(model, examples)
    train(model, examples)
    after = losses(model, examples)
    for task in TOY_SPECS:
        assert after[task] < 0.7 * before[task], (task, before[task], after[task])


@pytest.mark.parametrize("backbone", BACKBONES.names())
def test_state_dict_round_trips(backbone: str, toy: Callable[..., Any]) -> None:
    examples, tables = toy(n=64)
    torch.manual_seed(1)
    model = build(backbone, tables)
    train(model, examples, epochs=1)
    torch.manual_seed(2)
    clone = build(backbone, tables)
    clone.load_state_dict(model.state_dict())
    model.eval()
    clone.eval()
    with torch.no_grad():
        first, second = model(examples.features), clone(examples.features)
    for task in TOY_SPECS:
        assert torch.equal(first[task], second[task])


@pytest.mark.parametrize("backbone", BACKBONES.names())
def test_same_seed_gives_the_same_numbers(backbone: str, toy: Callable[..., Any]) -> None:
    examples, tables = toy(n=128)
    params = []
    for _ in range(2):
        torch.manual_seed(3)
        model = build(backbone, tables)
        train(model, examples, epochs=2, seed=5)
        params.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(params[0], params[1])


def test_esmm_outputs_joint_probabilities_below_each_step() -> None:
    from mtlrec.models.backbones.esmm import ESMM

    esmm = ESMM(4, ["view", "buy"], cascade=("view", "buy"), tower=(4,))
    logits = {"view": torch.tensor([0.0, 2.0]), "buy": torch.tensor([0.0, -1.0])}
    joint = esmm.compose(logits)
    expected = torch.sigmoid(logits["view"]) * torch.sigmoid(logits["buy"])
    assert torch.allclose(torch.sigmoid(joint["buy"]), expected, atol=1e-6)
    assert torch.equal(joint["view"], logits["view"])


def test_dot_interactions_add_every_vector_pair(toy: Callable[..., Any]) -> None:
    examples, tables = toy(n=256)
    plain = FeatureInputs(SCHEMA, tables, embedding_dim=8, text_dim=16)
    dots = FeatureInputs(SCHEMA, tables, embedding_dim=8, text_dim=16, dot_interactions=True)
    # vectors: user id, item id, items.kind, items.text (projected to 8): 4 -> 6 pairs
    assert dots.out_dim == 8 * 4 + 1 + 6
    assert plain.out_dim == 8 * 3 + 16 + 1
    assert dots(examples.features).shape == (256, dots.out_dim)
    torch.manual_seed(0)
    body = BACKBONES.get("shared_bottom")(
        dots.out_dim, list(TOY_SPECS), shared=(32,), tower=(16,), dropout=0.0
    )
    heads = {t: HEADS.get("fc")(body.out_dim(t), s) for t, s in TOY_SPECS.items()}
    model = MultiTaskModel(dots, body, heads, TOY_SPECS)
    before = losses(model, examples)
    train(model, examples)
    after = losses(model, examples)
    assert all(after[t] < 0.6 * before[t] for t in TOY_SPECS), (before, after)
