"""Request and response bodies of the HTTP API (pydantic, ``extra="forbid"``).

The limits here (string lengths, list sizes, ``k``) are part of the OpenAPI schema, so a
client (and schemathesis) sees them; a request outside them is a 422 with a readable
message. A body within them can still be larger than the service's byte limit (413).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

MAX_K = 100
"""The longest list a request may ask for (``k``, recommendations and similar items)."""

MAX_ID_LENGTH = 256
"""The longest user or item id a request may hold (body, query or path)."""

Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]
"""A user or item id as the dataset spells it."""


def _integral(value: object) -> object:
    """An integral float (``10.0``, which JSON Schema counts as an integer) as that int;
    anything else as it is, for the strict check that follows (``true``, ``"5"``, ``2.5``
    stay errors)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


JsonInt = Annotated[int, BeforeValidator(_integral)]
"""An integer as JSON Schema defines one: ``5`` or ``5.0``, never ``true`` or ``"5"``."""

Strategy = Literal["fused", "model", "cold_history", "popularity"]
"""How a list was made: the fused cascade, the multi-task model alone (the sequential model
also for an ad-hoc history), a cold-start user's ad-hoc history (co-occurrence + item
embeddings), or popularity."""


class Strict(BaseModel):
    """A model with fixed fields: an unknown one is an error (responses, query strings)."""

    model_config = ConfigDict(extra="forbid")


class StrictRequest(BaseModel):
    """A request body: unknown fields are a 422 and JSON values are taken as they are typed,
    never coerced (``"k": true`` or ``"k": "5"`` is a 422, not 1 or 5; ``"exclude_seen":
    "true"`` is not a boolean). Query models stay :class:`Strict` only: a query string is
    text, so ``?k=5`` must read as the number 5."""

    model_config = ConfigDict(extra="forbid", strict=True)


# ----------------------------------------------------------------------------- recommend
class Filters(StrictRequest):
    """Which items may be recommended.

    ``exclude_seen``: leave out what the user interacted with (a known user's interactions
    in the artifact, plus any ``history`` given); ``exclude_items``: never these;
    ``include_items``: only these (an allow-list; omitted = the whole catalogue);
    ``attributes``: only items whose categorical attribute (an item column of the
    artifact, e.g. ``genres``) takes one of the values. Unknown item ids are ignored.
    """

    exclude_seen: bool = True
    exclude_items: list[Id] = Field(default_factory=list, max_length=1000)
    include_items: list[Id] | None = Field(default=None, max_length=10_000)
    attributes: dict[Id, Annotated[list[Id], Field(max_length=100)]] = Field(
        default_factory=dict, max_length=8
    )


class RecommendRequest(StrictRequest):
    """A user id (a user of the artifact), or an ad-hoc ``history`` of item ids for a user
    the artifact does not know (cold start); neither gives the popular items."""

    user_id: Id | None = None
    history: list[Id] = Field(default_factory=list, max_length=500)
    k: JsonInt = Field(default=10, ge=1, le=MAX_K)
    filters: Filters = Field(default_factory=Filters)


class Retrieval(Strict):
    retriever: str
    rank: int


class RecommendedItem(Strict):
    """One recommendation: per-task head predictions (probability / prediction / expected
    class position), the fused score (what ordered the list before re-ranking), the
    retrievers that proposed it and a short reason."""

    rank: int
    item_id: str
    scores: dict[str, float]
    fused: float | None
    sources: dict[str, float] = Field(default_factory=dict)
    retrieved_by: list[Retrieval] = Field(default_factory=list)
    reason: str


class RecommendResponse(Strict):
    model_version: str
    strategy: Strategy
    known_user: bool
    items: list[RecommendedItem]
    ignored_history: list[str] = Field(default_factory=list)


# ----------------------------------------------------------------------------- score
class Pair(StrictRequest):
    user_id: Id
    item_id: Id


class ScoreRequest(StrictRequest):
    pairs: list[Pair] = Field(min_length=1, max_length=1000)


class PairScore(Strict):
    user_id: str
    item_id: str
    known_user: bool
    scores: dict[str, float]


class ScoreResponse(Strict):
    model_version: str
    tasks: list[str]
    predictions: list[PairScore]


# ----------------------------------------------------------------------------- items / users
class SimilarQuery(Strict):
    """Query of ``GET /v1/items/{item_id}/similar`` (unknown parameters are a 422)."""

    k: int = Field(default=10, ge=1, le=MAX_K)


class UsersQuery(Strict):
    """Query of ``GET /v1/users``: a page of ids, optionally those starting with ``prefix``."""

    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=100, ge=1, le=1000)
    prefix: Id | None = None


class SimilarItem(Strict):
    item_id: str
    score: float


class SimilarResponse(Strict):
    model_version: str
    item_id: str
    method: Literal["embedding", "cooccurrence"]
    items: list[SimilarItem]


class UsersResponse(Strict):
    model_version: str
    total: int
    offset: int
    users: list[str]


class HistoryResponse(Strict):
    model_version: str
    user_id: str
    items: list[str]


# ----------------------------------------------------------------------------- operations
def _without_nul(path: str) -> str:
    """``path`` itself; a NUL byte (which no file system path can hold) is a 422."""
    if "\x00" in path:
        raise PydanticCustomError("nul_byte", "a path cannot hold a NUL byte")
    return path


ReloadPath = Annotated[
    str,
    StringConstraints(min_length=1, max_length=4096),
    AfterValidator(_without_nul),
    Field(json_schema_extra={"pattern": "^[^\\x00]*$"}),
]
"""A path as a reload request gives it: 1 to 4096 characters, no NUL byte."""


class ReloadRequest(StrictRequest):
    """A bundle folder inside the service's reload root (see ``mtlrec serve --reload-root``),
    relative to it or absolute."""

    path: ReloadPath


class ReloadResponse(Strict):
    previous_version: str
    version: str
    name: str
    load_s: float


class Health(Strict):
    status: Literal["ok"]


class Ready(Strict):
    status: Literal["ready", "not ready"]
    model_version: str | None
    model_name: str | None


class ErrorBody(Strict):
    """Every error answer: a machine-readable ``error`` code, a sentence for people and,
    for validation errors, pydantic's list of what failed where."""

    error: str
    message: str
    detail: list[dict[str, Any]] | None = None
