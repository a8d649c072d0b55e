"""Where a client finds its API key when none is given: one search, shared by the SDK's
``Client`` and every CLI command.

In order: the key given (``api_key=`` / ``--api-key``), ``TASKLOOM_API_KEY``, then the
``credentials.json`` that ``taskloom serve`` writes into a new data folder (the folder given,
else ``TASKLOOM_DATA_DIR``, else ``./taskloom-data``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from taskloom.errors import Invalid

DEFAULT_DATA_DIR = Path("./taskloom-data")
ENV_KEY = "TASKLOOM_API_KEY"
ENV_DATA_DIR = "TASKLOOM_DATA_DIR"


@dataclass(frozen=True)
class FoundKey:
    """The key found (or ``None``), where it came from, and the places looked at when no key
    was given."""

    key: str | None
    source: str
    looked: tuple[str, ...]

    def missing(self) -> str:
        """What an error says when no key was found: where the search looked."""
        return f"no API key was given and none was found in {' or '.join(self.looked)}"


def find_api_key(
    api_key: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    given_as: str = "api_key=",
) -> FoundKey:
    """The API key to use: ``api_key`` if given, else ``TASKLOOM_API_KEY``, else the key in
    ``DATA_DIR/credentials.json``. ``given_as`` names the argument as a source.

    Raises :class:`~taskloom.errors.Invalid` when the credentials file exists and cannot be read.
    """
    folder = Path(data_dir) if data_dir is not None else None
    if folder is None:
        folder = (
            Path(os.environ[ENV_DATA_DIR]) if os.environ.get(ENV_DATA_DIR) else DEFAULT_DATA_DIR
        )
    path = (folder / "credentials.json").absolute()
    looked = (ENV_KEY, str(path))
    if api_key:
        # a CLI option may have been filled from the variable: say which
        source = ENV_KEY if api_key == os.environ.get(ENV_KEY) else given_as
        return FoundKey(api_key, source, looked)
    if os.environ.get(ENV_KEY):
        return FoundKey(os.environ[ENV_KEY], ENV_KEY, looked)
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            key = data.get("api_key") if isinstance(data, dict) else None
        except (OSError, ValueError) as exc:
            raise Invalid(
                f"cannot read the API key from {path}: {exc}", code="bad_credentials_file"
            ) from exc
        if key:
            return FoundKey(str(key), str(path), looked)
    return FoundKey(None, "", looked)
