from __future__ import annotations

import errno
import hashlib
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from mtlrec.core.atomic import owner_tag
from mtlrec.data.catalog import DATASETS, resolve_dataset
from mtlrec.data.fetch import (
    ArchiveMemberOrigin,
    ChecksumError,
    DatasetUnavailableError,
    FetchSettings,
    FileResolver,
    RemoteFile,
    UrlOrigin,
    download_url,
    verify_checksum,
)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_verify_checksum_accepts_sha256_and_md5_and_rejects_damage(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"hello")
    verify_checksum(path, _sha(b"hello"))
    verify_checksum(path, "md5:" + hashlib.md5(b"hello").hexdigest())
    verify_checksum(path, None)
    with pytest.raises(ChecksumError, match="damaged"):
        verify_checksum(path, _sha(b"other"))


def test_mirror_wins_over_cache_and_is_verified(tmp_path: Path) -> None:
    mirror, cache = tmp_path / "mirror", tmp_path / "cache"
    (mirror / "ds").mkdir(parents=True)
    (cache / "ds").mkdir(parents=True)
    (mirror / "ds" / "a.txt").write_bytes(b"mirror")
    (cache / "ds" / "a.txt").write_bytes(b"cache")
    resolver = FileResolver(FetchSettings(cache_dir=cache, mirrors=(mirror,), offline=True))
    remote = RemoteFile("a.txt", UrlOrigin("http://invalid.invalid/a.txt"), _sha(b"mirror"))
    assert resolver.resolve("ds", remote) == mirror / "ds" / "a.txt"
    bad = RemoteFile("a.txt", None, _sha(b"cache"))
    with pytest.raises(ChecksumError):
        resolver.resolve("ds", bad)


def test_missing_file_offline_says_what_where_and_how(tmp_path: Path) -> None:
    resolver = FileResolver(
        FetchSettings(cache_dir=tmp_path / "c", mirrors=(tmp_path,), offline=True)
    )
    remote = RemoteFile("x.json.gz", UrlOrigin("https://example.org/x.json.gz"))
    with pytest.raises(DatasetUnavailableError) as error:
        resolver.resolve("ds", remote)
    message = str(error.value)
    assert "'x.json.gz' is not available" in message
    assert str(tmp_path / "ds" / "x.json.gz") in message
    assert "https://example.org/x.json.gz" in message
    assert "--mirror DIR" in message and "MTLREC_DATA_MIRRORS" in message
    assert "offline" in message


def test_failed_download_is_reported_with_the_cause(tmp_path: Path) -> None:
    resolver = FileResolver(FetchSettings(cache_dir=tmp_path / "c", timeout_s=2))
    remote = RemoteFile("x.bin", UrlOrigin("http://nonexistent.invalid/x.bin"))
    with pytest.raises(DatasetUnavailableError, match="Fetching it failed"):
        resolver.resolve("ds", remote)
    assert not list((tmp_path / "c").rglob(".*.tmp"))


def test_archive_member_comes_from_a_local_archive(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "ds").mkdir(parents=True)
    with zipfile.ZipFile(mirror / "ds" / "bundle.zip", "w") as bundle:
        bundle.writestr("bundle/u.data", "1\t2\t3\t4\n")
    origin = ArchiveMemberOrigin(
        "bundle.zip", UrlOrigin("http://nonexistent.invalid/bundle.zip"), "bundle/u.data"
    )
    resolver = FileResolver(FetchSettings(cache_dir=tmp_path / "cache", mirrors=(mirror,)))
    path = resolver.resolve("ds", RemoteFile("u.data", origin, _sha(b"1\t2\t3\t4\n")))
    assert path == tmp_path / "cache" / "ds" / "u.data"
    assert path.read_text() == "1\t2\t3\t4\n"


def test_a_full_disk_while_extracting_names_the_file_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "ds").mkdir(parents=True)
    with zipfile.ZipFile(mirror / "ds" / "bundle.zip", "w") as bundle:
        bundle.writestr("bundle/u.data", "1\t2\t3\t4\n")
    origin = ArchiveMemberOrigin(
        "bundle.zip", UrlOrigin("http://nonexistent.invalid/bundle.zip"), "bundle/u.data"
    )

    def full(source: Any, target: Any, length: int = 0) -> None:
        target.write(b"1\t2")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(shutil, "copyfileobj", full)
    resolver = FileResolver(FetchSettings(cache_dir=tmp_path / "cache", mirrors=(mirror,)))
    with pytest.raises(Exception) as caught:
        resolver.resolve("ds", RemoteFile("u.data", origin, _sha(b"1\t2\t3\t4\n")))
    target = tmp_path / "cache" / "ds" / "u.data"
    assert str(caught.value) == f"cannot write {target}: no space left on device"
    assert list(target.parent.iterdir()) == []


def test_catalog_prefers_a_complete_local_layout(tmp_path: Path) -> None:
    mirror = tmp_path / "m" / "ml-100k"
    mirror.mkdir(parents=True)
    for role in ("inter", "item", "user"):
        (mirror / f"ml-100k.{role}").write_text("x\n")
    resolver = FileResolver(
        FetchSettings(cache_dir=tmp_path / "c", mirrors=(tmp_path / "m",), offline=True)
    )
    resolved = resolve_dataset("ml-100k", resolver)
    assert resolved.layout.source == "movielens-atomic"
    assert resolved.files["inter"] == mirror / "ml-100k.inter"


def test_catalog_offline_without_files_lists_every_layout(tmp_path: Path) -> None:
    resolver = FileResolver(FetchSettings(cache_dir=tmp_path / "c", offline=True))
    with pytest.raises(DatasetUnavailableError) as error:
        resolve_dataset("ml-100k", resolver)
    message = str(error.value)
    assert "[official zip]" in message and "[recbole atomic files]" in message
    assert "ml-100k/u.data inside https://files.grouplens.org" in message


def test_catalog_has_the_datasets_of_shared_data() -> None:
    assert {
        "ml-100k",
        "ml-1m",
        "ml-latest-small",
        "amazon-2014-musical-instruments",
        "amazon-2018-magazine-subscriptions",
        "amazon-2018-gift-cards",
        "retailrocket",
        "census-income",
    } <= set(DATASETS.names())


def test_a_download_removes_the_part_file_of_a_killed_download(tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"payload")
    cache = tmp_path / "cache"
    cache.mkdir()
    pid, start, host = owner_tag().split("-")
    left = cache / f".x.bin.{pid}-{int(start) + 7}-{host}.abcd1234.tmp"  # pid since reused
    left.write_bytes(b"pay")
    target = download_url(source.as_uri(), cache / "x.bin", None, timeout_s=5)
    assert target.read_bytes() == b"payload"
    assert [p.name for p in cache.iterdir()] == ["x.bin"]
