"""``MultiTaskModel``: inputs -> shared backbone -> one head per task, logits keyed by task."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from torch import Tensor, nn

from mtlrec.core.types import Predictions, TaskSpec
from mtlrec.models.backbones.base import Backbone
from mtlrec.models.heads import Head


class TaskModel(nn.Module):
    """What the Trainer trains: ``forward(features) -> Predictions`` keyed by task, the
    task ``specs``, and the parameters every task reaches (``shared_parameters``: what
    gradient-level weighting operates on). :class:`MultiTaskModel` and the sequential
    recommender are both one."""

    specs: dict[str, TaskSpec]

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters every task reaches, in module order."""
        raise NotImplementedError


class MultiTaskModel(TaskModel):
    """A composition (TorchRec-style): ``inputs(features) (B, D) -> backbone -> heads``.

    ``forward(features)`` returns ``{task: prediction}`` (see :data:`Predictions`); losses
    live outside the model. A single-task model is the same class with one head.
    """

    def __init__(
        self,
        inputs: nn.Module,
        backbone: Backbone,
        heads: Mapping[str, Head],
        specs: Mapping[str, TaskSpec],
        head_tables: Mapping[str, tuple[Tensor, str]] | None = None,
    ) -> None:
        """``head_tables`` maps a feature name the heads read (e.g. ``item_tokens``) to an
        entity table and the row key that indexes it (``(items.tokens, "item_row")``)."""
        super().__init__()
        missing = set(backbone.tasks) ^ set(heads)
        if missing:
            raise ValueError(f"backbone tasks and heads differ: {sorted(missing)}")
        self.inputs = inputs
        self.backbone = backbone
        self.heads = nn.ModuleDict(dict(heads))
        self.specs = dict(specs)
        self.head_rows = {name: row for name, (_, row) in (head_tables or {}).items()}
        for name, (table, _) in (head_tables or {}).items():
            self.register_buffer(f"head_table_{name}", table, persistent=False)

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.backbone.tasks

    def forward(self, features: Mapping[str, Tensor]) -> Predictions:
        x = self.inputs(features)  # (B, D)
        reps = self.backbone(x)  # task -> (B, H_t)
        if self.head_rows:  # entity lookups the heads read, e.g. item tokens (B, L)
            features = {
                **features,
                **{
                    name: getattr(self, f"head_table_{name}")[features[row]]
                    for name, row in self.head_rows.items()
                },
            }
        logits = {t: self.heads[t](reps[t], features) for t in self.tasks}
        return self.backbone.compose(logits)

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters every task reaches: the input encoder, then the backbone's shared part.

        The last one is the backbone's last shared layer (GradNorm's anchor), when it has one.
        """
        yield from (p for p in self.inputs.parameters() if p.requires_grad)
        yield from (p for p in self.backbone.shared_parameters() if p.requires_grad)
