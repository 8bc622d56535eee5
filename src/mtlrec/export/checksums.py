"""Checksums of a bundle's files and their verification.

A bundle lists every file it holds (relative POSIX path -> sha256 and size in bytes) in its
``manifest.json``. :func:`verify_files` compares that list with the folder: a missing, an
extra or an altered file is an :class:`ArtifactError` naming the file and what is wrong.
Checksums detect damage (a truncated copy, a flipped bit, a stray file), not a deliberate
rewrite of the manifest itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

MANIFEST = "manifest.json"
"""The manifest's file name; it is the one file the manifest does not list."""

_CHUNK = 1 << 20


class ArtifactError(ValueError):
    """A bundle is damaged, incomplete or of an unsupported format; the message names the
    bundle, the file and what is wrong."""


def sha256_file(path: Path) -> str:
    """The hex sha256 of the file at ``path`` (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def bundle_files(root: Path) -> list[str]:
    """Every regular file under ``root`` but the manifest, as sorted relative POSIX paths."""
    files = (p for p in root.rglob("*") if p.is_file() or p.is_symlink())
    return sorted(p.relative_to(root).as_posix() for p in files if p.name != MANIFEST)


def file_table(root: Path) -> dict[str, dict[str, Any]]:
    """``{path: {"sha256": hex, "bytes": size}}`` of every file under ``root`` (manifest aside)."""
    return {
        name: {"sha256": sha256_file(root / name), "bytes": (root / name).stat().st_size}
        for name in bundle_files(root)
    }


def _safe(name: str) -> bool:
    """True for a plain relative path that stays inside the bundle."""
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts


def verify_files(root: Path, expected: Mapping[str, Mapping[str, Any]]) -> None:
    """Check ``root`` against the manifest's file table ``expected``: the same files, each
    with its size and sha256. Raises :class:`ArtifactError` on the first problem."""
    unsafe = [name for name in expected if not _safe(name)]
    if unsafe:
        raise ArtifactError(f"{root}: the manifest lists paths outside the bundle: {unsafe}")
    present = set(bundle_files(root))
    missing = sorted(set(expected) - present)
    if missing:
        raise ArtifactError(
            f"{root}: file {missing[0]!r} is listed in the manifest but missing"
            + (f" ({len(missing) - 1} more missing)" if len(missing) > 1 else "")
        )
    extra = sorted(present - set(expected))
    if extra:
        raise ArtifactError(
            f"{root}: file {extra[0]!r} is not listed in the manifest (an extra file; "
            "a bundle is never changed after it is written)"
        )
    for name, entry in sorted(expected.items()):
        path = root / name
        if path.is_symlink():
            raise ArtifactError(f"{root}: file {name!r} is a symbolic link, not a regular file")
        size = path.stat().st_size
        if size != int(entry["bytes"]):
            raise ArtifactError(
                f"{root}: file {name!r} has {size} bytes, the manifest says {entry['bytes']} "
                "(truncated or altered)"
            )
        digest = sha256_file(path)
        if digest != entry["sha256"]:
            raise ArtifactError(
                f"{root}: file {name!r} fails its checksum (sha256 {digest[:16]}..., the "
                f"manifest says {str(entry['sha256'])[:16]}...): the file is damaged or altered"
            )
