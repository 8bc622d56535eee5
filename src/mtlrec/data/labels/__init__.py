"""Task labels built from the canonical tables, each with a mask where it is unknown.

A builder (registered in :data:`LABEL_BUILDERS`, constructed with explicit keyword
arguments that are stored untouched) turns the tables plus the split frame into one or
more :class:`TaskLabels`. The keyword ``task`` names the task (so a config can say
``{"name": "like", "params": {"threshold": 4.5, "task": "loved"}}``); ``behaviour`` makes
one task per behaviour. The split frame is the interactions table with its ``split``
column, or, for tabular datasets, the users table with its ``split`` column.

Every label frame holds the key columns, ``split`` (interaction, pair and tabular user
level), the value column ``<name>`` and the boolean ``<name>_mask``; the value is null
exactly where the mask is False. Value types by kind:

===========  ==================================================================
binary       Int8 0/1
multiclass   Int64 index into ``classes``
multilabel   List[Int64] of sorted indices into ``classes`` (see :func:`multi_hot`)
regression   Float64
===========  ==================================================================

Vocabularies of classes (categories, brands, genres) and price buckets are fitted on the
items that occur in TRAIN interactions only.

The package has one module per component: :mod:`~mtlrec.data.labels.base` (TaskLabels,
the builder protocol and registry, shared helpers), one module per family of builders
(:mod:`~mtlrec.data.labels.interaction`, :mod:`~mtlrec.data.labels.item`,
:mod:`~mtlrec.data.labels.pair`, :mod:`~mtlrec.data.labels.tabular`) and
:mod:`~mtlrec.data.labels.build` (specs, building, joining and writing). Importing the
package imports every builder module, so :data:`LABEL_BUILDERS` is complete.
"""

from __future__ import annotations

from mtlrec.data.labels.base import LABEL_BUILDERS, LabelBuilder, TaskLabels, multi_hot
from mtlrec.data.labels.base import LEVEL_KEYS as LEVEL_KEYS
from mtlrec.data.labels.base import RATED_EVENTS as RATED_EVENTS
from mtlrec.data.labels.base import SENTIMENT_CLASSES as SENTIMENT_CLASSES
from mtlrec.data.labels.base import TASK_KINDS as TASK_KINDS
from mtlrec.data.labels.base import TASK_LEVELS as TASK_LEVELS
from mtlrec.data.labels.base import VALUE_DTYPES as VALUE_DTYPES
from mtlrec.data.labels.base import TaskKind as TaskKind
from mtlrec.data.labels.base import TaskLevel as TaskLevel
from mtlrec.data.labels.build import (
    LABEL_FILES,
    LabelSpec,
    as_label_builder,
    build_labels,
    default_split_frame,
    join_level,
    make_label_builder,
    read_tasks,
    write_labels,
)
from mtlrec.data.labels.build import TASKS_FILE as TASKS_FILE
from mtlrec.data.labels.interaction import (
    InterestLabels,
    LikeLabels,
    RatingLabels,
    SentimentLabels,
)
from mtlrec.data.labels.item import BrandLabels, CategoryLabels, GenreLabels, PriceBucketLabels
from mtlrec.data.labels.pair import BehaviourLabels
from mtlrec.data.labels.tabular import TabularBinaryLabels

# Names imported ``X as X`` above were importable from the single-module version and stay
# so, but are not in ``__all__``.
__all__ = [
    "InterestLabels",
    "LABEL_BUILDERS",
    "LABEL_FILES",
    "BehaviourLabels",
    "BrandLabels",
    "CategoryLabels",
    "GenreLabels",
    "LabelBuilder",
    "LabelSpec",
    "LikeLabels",
    "PriceBucketLabels",
    "RatingLabels",
    "SentimentLabels",
    "TabularBinaryLabels",
    "TaskLabels",
    "as_label_builder",
    "build_labels",
    "default_split_frame",
    "join_level",
    "make_label_builder",
    "multi_hot",
    "read_tasks",
    "write_labels",
]
