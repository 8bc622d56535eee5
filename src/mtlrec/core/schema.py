"""The data schema a model is built over, shared by the data layer and the models.

The data layer describes what it holds (:meth:`mtlrec.data.examples.EntityData.schema`) and
the input encoders read it; neither imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class InputSchema:
    """What the input encoder can read.

    ``n_user_ids`` / ``n_item_ids``: sizes of the train id vocabularies (0 = not used).
    ``categorical``: ``"users.gender" -> vocab size`` (tables of shape ``(N,)`` or, for
    list-valued columns, ``(N, L)`` padded with 0); ``numeric``: standardised ``(N,)``
    columns; ``text``: ``"items.text" -> D`` LM embedding tables ``(N, D)``; ``dense``:
    per-example vectors in the batch (e.g. ``review_profile`` ``(B, D)``).
    """

    n_user_ids: int = 0
    n_item_ids: int = 0
    categorical: Mapping[str, int] = field(default_factory=dict)
    numeric: tuple[str, ...] = ()
    text: Mapping[str, int] = field(default_factory=dict)
    dense: Mapping[str, int] = field(default_factory=dict)
    """Per-example vectors carried in the batch itself: ``name -> D`` for ``(B, D)``."""
