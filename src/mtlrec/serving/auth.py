"""API keys: stored as sha256 hashes with scopes, compared in constant time.

A key is ``mtk_`` + 43 url-safe characters (32 random bytes from :mod:`secrets`). The key
file (JSON) keeps only ``sha256(key)`` in hex with a name and scopes; the key itself is
printed once when it is made (``mtlrec api-keys add``) and never stored::

    {"format": "mtlrec-api-keys", "version": 1,
     "keys": [{"name": "ci", "sha256": "9f86...", "scopes": ["recommend", "score"],
               "created_at": "2026-11-28T17:00:00+00:00"}]}

Why sha256 and not scrypt: a key holds 256 random bits, so a fast hash cannot be brute
forced, while a slow KDF on every request would cost tens of milliseconds of the latency
budget. :meth:`KeyStore.lookup` hashes the presented key once and compares it with *every*
stored hash through :func:`hmac.compare_digest`, without stopping at a match, so the time
taken does not tell which (or whether a) stored key shares a prefix.

Scopes: ``recommend`` (recommendations, similar items), ``score`` (per-pair predictions),
``users`` (listing the artifact's user ids and reading a user's history: personal data, so a
key gets it only when it asks for it), ``admin`` (reloading the artifact), ``metrics``
(``/metrics``, when the service is told to require a key there). The service answers 401
without a valid key and 403 for a valid key without the route's scope.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mtlrec.core.atomic import atomic_file

Scope = Literal["recommend", "score", "users", "admin", "metrics"]
SCOPES: tuple[Scope, ...] = ("recommend", "score", "users", "admin", "metrics")
KEY_PREFIX = "mtk_"


class KeyRecord(BaseModel):
    """One stored key: its name, the sha256 hex digest of the key, its scopes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: tuple[Scope, ...] = Field(min_length=1)
    created_at: str | None = None


class KeyFile(BaseModel):
    """The key file's content."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["mtlrec-api-keys"] = "mtlrec-api-keys"
    version: Literal[1] = 1
    keys: list[KeyRecord] = Field(default_factory=list)


def hash_key(key: str) -> str:
    """The sha256 hex digest of ``key`` (what the key file stores)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random API key (``mtk_`` + 32 random bytes, url-safe base64)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyStore:
    """The keys a service accepts (hashes only), looked up in constant time."""

    def __init__(self, records: list[KeyRecord]) -> None:
        self.records = list(records)
        self._digests = [bytes.fromhex(r.sha256) for r in self.records]

    @classmethod
    def from_file(cls, path: Path) -> KeyStore:
        """Read a key file (see the module docstring); an unreadable file is a ValueError."""
        return cls(read_key_file(path).keys)

    def lookup(self, key: str | None) -> KeyRecord | None:
        """The record whose hash matches ``key``, or None. Every stored digest is compared
        (:func:`hmac.compare_digest`), whatever matched before."""
        if not key:
            return None
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        found: KeyRecord | None = None
        for record, stored in zip(self.records, self._digests, strict=True):
            if hmac.compare_digest(digest, stored):
                found = record
        return found


def read_key_file(path: Path) -> KeyFile:
    """The parsed key file at ``path``; a missing file is an error (a service without keys
    would refuse every request)."""
    try:
        raw = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        message = f"{path}: no API key file; make one with 'mtlrec api-keys add'"
        raise FileNotFoundError(message) from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: the API key file is not valid JSON ({error})") from None
    return KeyFile.model_validate(raw)


def add_key(path: Path, name: str, scopes: list[Scope]) -> str:
    """Make a key with ``scopes`` named ``name``, store its hash in the key file at ``path``
    (created, mode 0600, when missing; written atomically) and return the key itself, which
    is not stored anywhere."""
    keys = read_key_file(path) if path.exists() else KeyFile()
    if any(record.name == name for record in keys.keys):
        raise ValueError(f"{path}: a key named {name!r} exists; revoke it first")
    if not scopes:
        raise ValueError(f"give at least one scope: {', '.join(SCOPES)}")
    key = new_key()
    record = KeyRecord(
        name=name,
        sha256=hash_key(key),
        scopes=tuple(dict.fromkeys(scopes)),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    keys.keys.append(record)
    write_key_file(path, keys)
    return key


def revoke_key(path: Path, name: str) -> None:
    """Remove the key named ``name`` from the key file (a running service keeps the keys it
    read at start until restarted)."""
    keys = read_key_file(path)
    kept = [record for record in keys.keys if record.name != name]
    if len(kept) == len(keys.keys):
        raise ValueError(f"{path}: no key named {name!r}")
    write_key_file(path, KeyFile(keys=kept))


def write_key_file(path: Path, keys: KeyFile) -> None:
    """Write ``keys`` to ``path`` atomically (:func:`~mtlrec.core.atomic.atomic_file`: a
    temporary file of mode 0600, fsynced, then renamed; a killed writer's temporary is
    removed by the next write)."""
    with atomic_file(path) as handle:
        handle.write((keys.model_dump_json(indent=2) + "\n").encode("utf-8"))
