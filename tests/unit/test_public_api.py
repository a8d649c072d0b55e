"""The SDK's public surface is ``taskloom.__all__``: sorted, importable, nothing private."""

from __future__ import annotations

import subprocess
import sys

import taskloom


def test_all_is_sorted_and_every_name_imports() -> None:
    assert taskloom.__all__ == sorted(taskloom.__all__)
    for name in taskloom.__all__:
        assert getattr(taskloom, name) is not None, name
    assert {"Client", "Dataset", "Job", "TaskloomError", "NotFound", "Invalid"} <= set(
        taskloom.__all__
    )


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        taskloom.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("taskloom.NoSuchThing should not exist")


def test_import_taskloom_does_not_load_numpy_or_httpx() -> None:
    # `import taskloom` runs in every CLI command: it must stay light
    code = "import sys, taskloom; print('numpy' in sys.modules, 'httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    code = "from taskloom import Client; print(Client.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "taskloom.sdk.client"
