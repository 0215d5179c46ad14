"""The keys file and ``eventsink keys create|list|revoke``."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest import MonkeyPatch

from emergency_api.keys import KeyFileError, KeyStore, create_key, hash_key, read_keys, revoke_key, split_key
from sink_lib.cli import main


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_create_prints_the_key_alone_on_the_last_line_and_stores_only_its_hash(keys_file: Path) -> None:
    # When a key is created from the command line
    code, out = run("keys", "create", "--name", "monitor-eu", "--scope", "health.*", "--keys-file", str(keys_file))
    # Then the last line is the key, which authenticates, and the file holds its hash, never the key
    assert code == 0, out
    key = out.strip().splitlines()[-1]
    assert key.startswith("es_") and " " not in key
    text = keys_file.read_text()
    assert key not in text
    entry = json.loads(text)["keys"][0]
    assert entry["name"] == "monitor-eu" and entry["scopes"] == ["health.*"]
    assert entry["hash"] == hash_key(key)
    assert KeyStore(keys_file).authenticate(key) is not None
    # And only the owner may read the file
    assert stat.S_IMODE(os.stat(keys_file).st_mode) == 0o600


def test_create_reads_the_keys_file_from_the_environment(tmp_path: Path, monkeypatch: MonkeyPatch) -> None:
    path = tmp_path / "from-env.json"
    monkeypatch.setenv("EVENTSINK_API_KEYS_FILE", str(path))
    code, out = run("keys", "create", "--name", "a", "--scope", "*")
    assert code == 0, out
    assert [k.name for k in read_keys(path)] == ["a"]


def test_list_shows_names_and_scopes_but_no_secrets(keys_file: Path) -> None:
    _, key = create_key(keys_file, "monitor", ["health.*"])
    create_key(keys_file, "old", ["*"])
    revoke_key(keys_file, "old")
    code, out = run("keys", "list", "--keys-file", str(keys_file))
    assert code == 0
    assert "monitor" in out and "health.*" in out and "old" not in out
    assert key not in out and key.split("_", 2)[2] not in out
    code, out = run("keys", "list", "--all", "--keys-file", str(keys_file))
    assert "old" in out


def test_revoke_takes_effect_in_a_running_store_without_restart(keys_file: Path) -> None:
    # Given a store that has already loaded a valid key
    _, key = create_key(keys_file, "monitor", ["health.*"])
    store = KeyStore(keys_file)
    assert store.authenticate(key) is not None
    # When the key is revoked through the command line
    code, out = run("keys", "revoke", "monitor", "--keys-file", str(keys_file))
    assert code == 0 and "revoked" in out
    # Then the same store refuses it
    assert store.authenticate(key) is None


def test_revoking_an_unknown_key_fails(keys_file: Path) -> None:
    create_key(keys_file, "monitor", ["health.*"])
    code, out = run("keys", "revoke", "nobody", "--keys-file", str(keys_file))
    assert code != 0 and "no active key" in out


def test_bad_names_scopes_and_duplicates_are_refused(keys_file: Path) -> None:
    assert run("keys", "create", "--name", "Bad Name", "--scope", "*", "--keys-file", str(keys_file))[0] != 0
    assert run("keys", "create", "--name", "ok", "--scope", "", "--keys-file", str(keys_file))[0] != 0
    assert run("keys", "create", "--name", "ok", "--scope", "*", "--keys-file", str(keys_file))[0] == 0
    code, out = run("keys", "create", "--name", "ok", "--scope", "*", "--keys-file", str(keys_file))
    assert code != 0 and "exists" in out


def test_a_key_name_with_a_trailing_newline_is_refused(keys_file: Path) -> None:
    # (a name ends up in every event's source: /api/<name>)
    with pytest.raises(KeyFileError, match="invalid name"):
        create_key(keys_file, "ops\n", ["*"])
    assert read_keys(keys_file) == []


def test_a_presented_key_with_a_trailing_newline_is_not_well_formed(keys_file: Path) -> None:
    _, key = create_key(keys_file, "monitor", ["*"])
    assert split_key(key) is not None
    assert split_key(key + "\n") is None


def test_a_tampered_key_with_a_valid_id_is_refused(keys_file: Path) -> None:
    _, key = create_key(keys_file, "monitor", ["*"])
    store = KeyStore(keys_file)
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert store.authenticate(tampered) is None
    assert store.authenticate("es_nothex_" + key.split("_", 2)[2]) is None
    assert store.authenticate("") is None


def test_scopes_are_type_patterns(keys_file: Path) -> None:
    entry, _ = create_key(keys_file, "monitor", ["health.*", "metric.cpu"])
    assert entry.allows("health.ping") and entry.allows("metric.cpu")
    assert not entry.allows("storage.file.uploaded") and not entry.allows("metric.mem")


def test_replacing_the_keys_file_fsyncs_its_folder_after_the_rename(keys_file: Path, monkeypatch: MonkeyPatch) -> None:
    # A rename is durable only once the folder holding it is fsync'd: a crash must not revive a revoked key.
    create_key(keys_file, "gone-soon", ["health.*"])
    synced: list[tuple[int, bool, bool]] = []  # (inode, is a folder, the revocation was already in place)
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        info = os.fstat(fd)
        revoked = all(k.revoked is not None for k in read_keys(keys_file))
        synced.append((info.st_ino, stat.S_ISDIR(info.st_mode), revoked))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    assert revoke_key(keys_file, "gone-soon")
    assert (os.stat(keys_file.parent).st_ino, True, True) in synced, synced
