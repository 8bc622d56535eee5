"""Model construction: a validated experiment config + a data schema -> an untrained model.

:func:`build_model` needs no examples (only the entity tables, the tasks and the widths of
the per-example vectors), so training, evaluation and a saved artifact all rebuild the
same model from the same description.
"""

from __future__ import annotations

from collections.abc import Mapping

from mtlrec.config.experiment import ExperimentConfig
from mtlrec.core.types import TaskSpec
from mtlrec.data.examples import EntityData
from mtlrec.models.backbones import BACKBONES
from mtlrec.models.heads import HEADS
from mtlrec.models.inputs import INPUTS
from mtlrec.models.multitask import MultiTaskModel


def build_model(
    config: ExperimentConfig,
    entities: EntityData,
    specs: Mapping[str, TaskSpec],
    excluded_inputs: set[str],
    dense: Mapping[str, int],
) -> MultiTaskModel:
    """The untrained model of ``config`` over ``entities`` (their tables become buffers).

    ``specs``: the tasks; ``excluded_inputs``: label source columns never used as inputs;
    ``dense``: the per-example vectors the batches carry (name -> width, e.g.
    ``history_profile`` ``(B, 384)``). Each input encoder takes what it needs from the
    config through its own :meth:`~mtlrec.models.inputs.InputEncoder.config_params`.
    """
    n_users = int(entities.user_vocab_index.max()) + 1 if len(entities.user_ids) else 0
    n_items = int(entities.item_vocab_index.max()) + 1 if len(entities.item_ids) else 0
    schema = entities.schema(n_users, n_items, excluded_inputs, dict(dense))
    inputs_cls = INPUTS.get(config.model.inputs.name)
    params = {**inputs_cls.config_params(config), **config.model.inputs.params}
    inputs = inputs_cls(schema, entities.tables, **params)
    backbone = BACKBONES.get(config.model.backbone.name)(
        inputs.out_dim, list(specs), **config.model.backbone.params
    )
    heads = {}
    for name, spec in specs.items():
        chosen = (config.tasks or {}).get(name)
        head = chosen.head if chosen is not None and chosen.head is not None else config.model.head
        heads[name] = HEADS.get(head.name)(backbone.out_dim(name), spec, **head.params)
    head_tables = {}
    if "items.tokens" in entities.tables:  # heads that read item tokens (self-attention)
        head_tables["item_tokens"] = (entities.tables["items.tokens"], "item_row")
    return MultiTaskModel(inputs, backbone, heads, specs, head_tables)
