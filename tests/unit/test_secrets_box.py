"""Sealed secrets (``taskloom.secrets_box``): round trip, a private key file made once,
and every altered value, wrong key or wrong purpose refused."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from taskloom.secrets_box import KEY_FILE_NAME, SealedValueError, SecretBox

SECRET = "ncp_iam_BPKMKRdSIyxvvK2hd2Qi5AQwvsTVZh6Z8X"


def test_round_trip_and_fresh_nonces(tmp_path):
    box = SecretBox.for_data_dir(tmp_path)
    a, b = box.seal(SECRET), box.seal(SECRET)
    assert a != b and SECRET not in a
    assert box.open_(a) == SECRET == box.open_(b)
    assert box.open_(box.seal("비밀 ✓")) == "비밀 ✓"
    assert box.open_(box.seal("")) == ""


def test_key_file_is_created_private_once_and_reused(tmp_path):
    data_dir = tmp_path / "data"
    sealed = SecretBox.for_data_dir(data_dir).seal(SECRET)
    key_file = data_dir / KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    content = key_file.read_bytes()
    assert SecretBox.for_data_dir(data_dir).open_(sealed) == SECRET  # a restart reads it
    assert key_file.read_bytes() == content
    assert [p.name for p in data_dir.iterdir()] == [KEY_FILE_NAME]  # no temporary left


def test_concurrent_first_use_agrees_on_one_key(tmp_path):
    sealed: list[str] = []
    lock = threading.Lock()

    def first_use() -> None:
        value = SecretBox.for_data_dir(tmp_path).seal(SECRET)
        with lock:
            sealed.append(value)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    box = SecretBox.for_data_dir(tmp_path)
    assert [box.open_(s) for s in sealed] == [SECRET] * 8


def flip(sealed: str, index: int) -> str:
    chars = list(sealed)
    chars[index] = "A" if chars[index] != "A" else "B"
    return "".join(chars)


@pytest.mark.parametrize("index", [3, 10, 20, -20, -2])
def test_an_altered_value_is_refused(tmp_path, index):
    box = SecretBox.for_data_dir(tmp_path)
    sealed = box.seal(SECRET)
    with pytest.raises(SealedValueError):
        box.open_(flip(sealed, index))


@pytest.mark.parametrize(
    "bad", ["", "plain-secret", "v1.", "v1.!!!!", "v2.AAAA", "v1.AAAA", "v1.AA AA"]
)
def test_malformed_values_are_refused(tmp_path, bad):
    with pytest.raises(SealedValueError):
        SecretBox.for_data_dir(tmp_path).open_(bad)


def test_junk_characters_added_to_a_value_are_refused(tmp_path):
    box = SecretBox.for_data_dir(tmp_path)
    sealed = box.seal(SECRET)
    with pytest.raises(SealedValueError):
        box.open_(sealed[:10] + "*" + sealed[10:])


def test_another_data_folder_cannot_open_it(tmp_path):
    sealed = SecretBox.for_data_dir(tmp_path / "a").seal(SECRET)
    with pytest.raises(SealedValueError):
        SecretBox.for_data_dir(tmp_path / "b").open_(sealed)


def test_purpose_binds_the_value(tmp_path):
    box = SecretBox.for_data_dir(tmp_path)
    sealed = box.seal(SECRET, purpose="ncp_secret_key:ak1")
    assert box.open_(sealed, purpose="ncp_secret_key:ak1") == SECRET
    for other in ("ncp_secret_key:ak2", ""):
        with pytest.raises(SealedValueError):
            box.open_(sealed, purpose=other)


def test_a_damaged_key_file_is_reported(tmp_path):
    key_file = tmp_path / KEY_FILE_NAME
    key_file.write_bytes(b"not a key\n")
    os.chmod(key_file, 0o600)
    with pytest.raises(SealedValueError, match="damaged"):
        SecretBox(key_file).seal(SECRET)
