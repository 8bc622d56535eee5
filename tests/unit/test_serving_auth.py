"""API keys: hashes only on disk, scopes, constant-time lookup, the ``api-keys`` commands."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mtlrec.cli.main import app
from mtlrec.core.atomic import owner_tag
from mtlrec.serving.auth import KeyStore, add_key, hash_key, read_key_file, revoke_key
from mtlrec.serving.middleware import mask_user_id

runner = CliRunner()


def test_key_file_stores_only_hashes_and_lookup_finds_the_scopes(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    reader = add_key(path, "reader", ["recommend"])
    admin = add_key(path, "ops", ["admin", "recommend", "admin"])
    text = path.read_text()
    assert reader not in text and admin not in text  # the keys themselves never hit the disk
    assert hashlib.sha256(reader.encode()).hexdigest() in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert reader.startswith("mtk_") and len(reader) > 40 and reader != admin

    store = KeyStore.from_file(path)
    found = store.lookup(reader)
    assert found is not None and found.name == "reader" and found.scopes == ("recommend",)
    ops = store.lookup(admin)
    assert ops is not None and ops.scopes == ("admin", "recommend")  # duplicates dropped
    assert store.lookup(None) is None and store.lookup("") is None
    assert store.lookup(reader + "x") is None and store.lookup(reader[:-1]) is None
    assert store.lookup("ünïcode\udcff") is None  # odd header bytes never raise

    with pytest.raises(ValueError, match="exists"):
        add_key(path, "reader", ["score"])
    revoke_key(path, "reader")
    assert KeyStore.from_file(path).lookup(reader) is None
    with pytest.raises(ValueError, match="no key named"):
        revoke_key(path, "reader")


def test_lookup_compares_every_stored_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    import mtlrec.serving.auth as auth

    keys = ["k1", "k2", "k3"]
    store = KeyStore(
        [auth.KeyRecord(name=k, sha256=hash_key(k), scopes=("recommend",)) for k in keys]
    )
    calls: list[int] = []
    real = auth.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    record = store.lookup("k1")  # the first one matches: the others are compared all the same
    assert record is not None and record.name == "k1" and len(calls) == 3


def test_bad_key_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="api-keys add"):
        read_key_file(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_key_file(broken)
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"keys": [{"name": "x", "key": "secret", "scopes": ["admin"]}]}))
    with pytest.raises(ValueError, match="key"):  # a stored plaintext key is not a hash
        read_key_file(plain)


def test_user_ids_are_masked() -> None:
    mask = mask_user_id("A2IBPI20UZIR0U", "salt")
    assert mask == mask_user_id("A2IBPI20UZIR0U", "salt")
    assert mask.startswith("u:") and len(mask) == 14 and "A2IBPI" not in mask
    assert mask != mask_user_id("A2IBPI20UZIR0U", "other salt")
    assert mask != mask_user_id("A2IBPI20UZIR0V", "salt")


def test_api_keys_commands(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    made = runner.invoke(
        app, ["api-keys", "add", str(path), "--name", "ci", "--scope", "recommend"]
    )
    assert made.exit_code == 0, made.output
    key = made.output.strip().splitlines()[-1]
    assert key.startswith("mtk_") and key not in path.read_text()
    record = KeyStore.from_file(path).lookup(key)
    assert record is not None and record.name == "ci"
    listed = runner.invoke(app, ["api-keys", "list", str(path)])
    assert listed.exit_code == 0 and "ci\trecommend\tsha256:" in listed.output
    assert key not in listed.output
    bad = runner.invoke(app, ["api-keys", "add", str(path), "--name", "x", "--scope", "root"])
    assert bad.exit_code == 2 and "unknown scope" in bad.output
    gone = runner.invoke(app, ["api-keys", "revoke", str(path), "--name", "ci"])
    assert gone.exit_code == 0 and read_key_file(path).keys == []


def test_a_killed_key_writers_temporary_is_removed_by_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    add_key(path, "reader", ["recommend"])
    pid, start, host = owner_tag().split("-")
    # the temporary of a writer whose pid now belongs to another process (killed)
    left = tmp_path / f".keys.json.{pid}-{int(start) + 7}-{host}.abcd1234.tmp"
    left.write_text("{half")
    revoke_key(path, "reader")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.json"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file(path).keys == []
