"""The file path and bucket name rules (services/buckets.py): what NCLUE refuses, refused."""

from __future__ import annotations

import pytest

from taskloom.errors import Invalid
from taskloom.services.buckets import (
    FORBIDDEN_PATH_CHARS,
    check_bucket_name,
    check_file_path,
    check_file_prefix,
)

SEED_CHARS = "&$@=;:+,?*\\{}^%`[]<>~#|\"'"


def refused(path: object, field: str = "path") -> Invalid:
    with pytest.raises(Invalid) as ei:
        check_file_path(path, field)
    assert ei.value.code == "invalid_file_path"
    assert ei.value.field == field
    assert ei.value.status_code == 422
    return ei.value


def test_the_forbidden_set_is_the_seeds() -> None:
    assert set(SEED_CHARS) == FORBIDDEN_PATH_CHARS
    assert len(FORBIDDEN_PATH_CHARS) == 25


@pytest.mark.parametrize("ch", sorted(SEED_CHARS))
def test_every_forbidden_character_is_refused(ch: str) -> None:
    for path in (f"a{ch}b.tsv", f"{ch}", f"dir/{ch}x", f"x{ch}"):
        assert repr(ch) in refused(path, "train_file_path").message


@pytest.mark.parametrize("code", [*range(0, 32), *range(127, 256)])
def test_control_and_high_codes_are_refused(code: int) -> None:
    refused(f"data/a{chr(code)}b.tsv")


def test_surrogates_are_refused() -> None:
    refused("a\udc80b")


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/etc/passwd",
        "/a",
        "../a",
        "..",
        ".",
        "./a",
        "a/..",
        "a/../b",
        "a/./b",
        "a//b",
        "a/",
        "a/b/",
        "../../../../etc/passwd",
        # encoded forms: '%' is refused, so no escape can hide behind percent-encoding
        "%2e%2e/a",
        "..%2Fa",
        "a%2F..%2F..%2Fb",
        "%252e%252e/a",
        # backslash forms
        "..\\a",
        "a\\..\\b",
        # long
        "a" * 513,
        "a/" + "b" * 256,
    ],
)
def test_escapes_absolute_and_empty_paths_are_refused(path: str) -> None:
    refused(path)


@pytest.mark.parametrize("value", [None, 5, b"a.tsv", ["a"], {"a": 1}])
def test_non_strings_are_refused(value: object) -> None:
    refused(value, "test_file_path")


@pytest.mark.parametrize(
    "path",
    [
        "a.tsv",
        "train/2024-01/labels_v2.tsv",
        "a b.csv",
        "dots..in.name.csv",
        ".hidden",
        "...",
        "x/...y",
        "데이터/학습.tsv",  # letters beyond U+00FF are allowed
        "(paren)!.csv",
        "a" * 255 + "/" + "b" * 255,
    ],
)
def test_good_paths_pass(path: str) -> None:
    assert check_file_path(path) == path


def test_prefixes() -> None:
    assert check_file_prefix("") == ""
    assert check_file_prefix("data/") == "data/"
    assert check_file_prefix("data/tr") == "data/tr"
    for bad in ("../", "/", "a//", "a?b", "%2e%2e/"):
        with pytest.raises(Invalid) as ei:
            check_file_prefix(bad)
        assert ei.value.field == "prefix"


@pytest.mark.parametrize(
    "name", ["abc", "my-bucket", "my.bucket.1", "a" * 63, "0ab", "training-data-2024"]
)
def test_good_bucket_names(name: str) -> None:
    assert check_bucket_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "ab",
        "a" * 64,
        "Abc",
        "my_bucket",
        "-abc",
        "abc-",
        ".abc",
        "abc.",
        "a..b",
        "a.-b",
        "a-.b",
        "192.168.1.1",
        "a b",
        "ab/c",
        "",
        None,
        5,
    ],
)
def test_bad_bucket_names(name: object) -> None:
    with pytest.raises(Invalid) as ei:
        check_bucket_name(name, "train_bucket")
    assert (ei.value.code, ei.value.field) == ("invalid_bucket_name", "train_bucket")
