"""Target credentials at rest: encrypted with the hub's key, from SCIMWARD_SECRET_KEY or a private key file."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from scimward.sync.secrets import KEY_ENV, KEY_FILE_ENV, SecretBox, SecretKeyError, generate_key

CREDENTIAL = "crm-token-0123456789abcdef"


def test_a_credential_round_trips_and_is_not_stored_in_clear() -> None:
    box = SecretBox(key=generate_key())
    sealed = box.encrypt(CREDENTIAL)
    assert CREDENTIAL not in sealed
    assert box.decrypt(sealed) == CREDENTIAL


def test_encrypting_twice_gives_different_ciphertexts() -> None:
    box = SecretBox(key=generate_key())
    assert box.encrypt(CREDENTIAL) != box.encrypt(CREDENTIAL)


def test_the_key_comes_from_the_environment_first(tmp_path: Path) -> None:
    key = generate_key()
    sealed = SecretBox(environ={KEY_ENV: key, KEY_FILE_ENV: str(tmp_path / "unused.key")}).encrypt(CREDENTIAL)
    assert SecretBox(key=key).decrypt(sealed) == CREDENTIAL
    assert not (tmp_path / "unused.key").exists()


def test_an_invalid_environment_key_names_the_variable() -> None:
    with pytest.raises(SecretKeyError, match=KEY_ENV) as caught:
        SecretBox(environ={KEY_ENV: "not-a-key"})
    assert "not-a-key" not in str(caught.value)


def test_a_key_file_is_generated_on_first_encryption_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "secret.key"
    box = SecretBox(environ={KEY_FILE_ENV: str(path)})
    assert not path.exists(), "the key file is created on first use, not by constructing the box"
    sealed = box.encrypt(CREDENTIAL)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SecretBox(environ={KEY_FILE_ENV: str(path)}).decrypt(sealed) == CREDENTIAL
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"], "no temporary file is left behind"


def test_the_default_key_file_is_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    SecretBox(environ={}).encrypt(CREDENTIAL)
    assert (tmp_path / "scimward-secret.key").exists()


def test_decrypting_never_creates_a_key(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    sealed = SecretBox(key=generate_key()).encrypt(CREDENTIAL)
    with pytest.raises(SecretKeyError, match="does not exist"):
        SecretBox(key_file=path).decrypt(sealed)
    assert not path.exists()


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    SecretBox(key_file=path).encrypt(CREDENTIAL)
    path.chmod(0o644)
    with pytest.raises(SecretKeyError, match="chmod 600"):
        SecretBox(key_file=path).encrypt(CREDENTIAL)


def test_a_corrupt_key_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text("garbage\n")
    path.chmod(0o600)
    with pytest.raises(SecretKeyError, match=str(path)):
        SecretBox(key_file=path).encrypt(CREDENTIAL)


def test_an_unusable_key_file_path_is_named(tmp_path: Path) -> None:
    (tmp_path / "a-directory").mkdir()
    with pytest.raises(SecretKeyError, match="is not a regular file"):
        SecretBox(key_file=tmp_path / "a-directory").encrypt(CREDENTIAL)


def test_a_relative_key_file_is_resolved_when_the_box_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    box = SecretBox(key_file="secret.key")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    box.encrypt(CREDENTIAL)
    assert (tmp_path / "secret.key").exists()


def test_another_key_cannot_decrypt_and_says_why() -> None:
    sealed = SecretBox(key=generate_key()).encrypt(CREDENTIAL)
    with pytest.raises(SecretKeyError, match=f"was {KEY_ENV} changed") as caught:
        SecretBox(key=generate_key()).decrypt(sealed)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_processes_racing_to_create_the_key_end_up_sharing_one(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    sealed: list[str] = []
    boxes = [SecretBox(key_file=path) for _ in range(8)]
    threads = [threading.Thread(target=lambda b=box: sealed.append(b.encrypt(CREDENTIAL))) for box in boxes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reader = SecretBox(key_file=path)
    assert [reader.decrypt(s) for s in sealed] == [CREDENTIAL] * 8


def test_the_repr_names_where_the_key_is_never_the_key(tmp_path: Path) -> None:
    key = generate_key()
    assert key not in repr(SecretBox(key=key))
    assert str(tmp_path / "k") in repr(SecretBox(key_file=tmp_path / "k"))


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_generous_umask_does_not_widen_the_key_file(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        SecretBox(key_file=tmp_path / "secret.key").encrypt(CREDENTIAL)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600
