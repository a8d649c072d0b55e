"""Secrets the server must be able to read back, sealed with a key kept in the data folder.

Most secrets are stored hashed (API keys). An NCP secret key cannot be: the server needs the
secret itself to recompute a request's HMAC signature. So it is stored encrypted with
AES-256-GCM (``cryptography``), under a key that lives in ``<data_dir>/secret.key``,
created on first use with mode 0600 and never stored in the database: a copy of the
database alone does not reveal the secrets.

A sealed value is text: ``"v1." + urlsafe-base64(nonce | ciphertext | tag)``. Each seal uses
a fresh random 96-bit nonce. ``purpose`` (associated data) binds a sealed value to what it
is for, so a value sealed as one thing does not open as another. Any change to a sealed
value, the wrong key file or the wrong purpose is refused with :class:`SealedValueError`.

Losing ``secret.key`` makes the sealed secrets unreadable (keys would have to be issued
again); back it up with the database.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from taskloom.errors import ServerError

__all__ = ["KEY_FILE_NAME", "SealedValueError", "SecretBox"]

KEY_FILE_NAME = "secret.key"
_PREFIX = "v1."
_NONCE_BYTES = 12
_KEY_BYTES = 32


class SealedValueError(ServerError):
    """A sealed secret cannot be opened (altered, or sealed under another key)."""

    code = "sealed_value_invalid"


def _read_key(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SealedValueError(f"cannot read the secret key file {path}: {exc}") from exc
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except binascii.Error as exc:
        raise SealedValueError(f"the secret key file {path} is damaged") from exc
    if len(key) != _KEY_BYTES:
        raise SealedValueError(f"the secret key file {path} is damaged")
    return key


def _write_exclusive(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _create_key(path: Path) -> None:
    """Write a new key file, 0600, atomically; if another process wins the race, keep its."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        _write_exclusive(tmp, base64.b64encode(AESGCM.generate_key(bit_length=256)) + b"\n")
        try:
            os.link(tmp, path)  # never replaces an existing key
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links: exclusive create instead
            with contextlib.suppress(FileExistsError):
                _write_exclusive(path, tmp.read_bytes())
    finally:
        tmp.unlink(missing_ok=True)


class SecretBox:
    """Seals and opens secrets with the key in ``key_path`` (created on first use)."""

    def __init__(self, key_path: Path | str) -> None:
        self.key_path = Path(key_path)
        self._aead: AESGCM | None = None

    @classmethod
    def for_data_dir(cls, data_dir: Path | str) -> SecretBox:
        """The box of a data folder: its key is ``<data_dir>/secret.key``."""
        return cls(Path(data_dir) / KEY_FILE_NAME)

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            if not self.key_path.exists():
                _create_key(self.key_path)
            self._aead = AESGCM(_read_key(self.key_path))
        return self._aead

    def seal(self, plaintext: str, *, purpose: str = "") -> str:
        """``plaintext`` encrypted and authenticated, as text for a database column."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._cipher().encrypt(
            nonce, plaintext.encode("utf-8"), purpose.encode("utf-8") or None
        )
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open_(self, sealed: str, *, purpose: str = "") -> str:
        """The plaintext of a value :meth:`seal` made with the same key and ``purpose``."""
        if not isinstance(sealed, str) or not sealed.startswith(_PREFIX):
            raise SealedValueError("not a sealed value")
        try:
            # strict: no character outside the alphabet is silently skipped
            blob = base64.b64decode(
                sealed[len(_PREFIX) :].encode("ascii"), altchars=b"-_", validate=True
            )
        except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
            raise SealedValueError("a sealed value is damaged") from exc
        if len(blob) < _NONCE_BYTES + 16:
            raise SealedValueError("a sealed value is damaged")
        nonce, body = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
        try:
            plain = self._cipher().decrypt(nonce, body, purpose.encode("utf-8") or None)
        except InvalidTag as exc:
            raise SealedValueError() from exc
        return plain.decode("utf-8")
