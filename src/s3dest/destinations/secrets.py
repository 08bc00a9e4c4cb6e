"""Credentials at rest: authenticated encryption with keys kept outside the database.

Keys
----
A key is 32 random bytes written as URL-safe base64 (44 characters; `generate_key`).
Keys come from, in this order:

1. the environment variable ``S3DEST_SECRET_KEY``: one key, or several separated by
   commas, **newest first** (``S3DEST_SECRET_KEY=<new>,<old>``). Every process that
   reads or writes destinations (API and workers, on every machine) needs the same
   value.
2. when that is unset or empty, the key file ``<data_dir>/secret.key``: one key per
   line, **newest first** (blank lines and lines starting with ``#`` are ignored). It
   is generated on first use, readable only by its owner (mode 0600).

Rotation: put a new key first (`add_key_to_file` does it for the key file; for the
environment, prepend it yourself), re-encrypt the stored secrets (`SecretBox.reencrypt`
on each token for which `SecretBox.needs_rotation` is true), then drop the old key.

Tokens
------
``v1:<keyid>:<base64url(nonce || ciphertext || tag)>`` — AES-256-GCM with a random
96-bit nonce. ``keyid`` is the first 8 hex digits of SHA-256 of the key, so decryption
picks its key without trying them all, and a missing key is named in the error. The
caller's associated data (e.g. ``"<destination id>:secretAccessKey"``) is
authenticated with the token, so a token copied to another row or field fails to
decrypt.

No error message or repr ever contains key material or plaintext.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import os
import re
import secrets
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from s3dest.datadir import private_dir
from s3dest.errors import S3destError

__all__ = [
    "ENV_VAR",
    "KEY_FILE_NAME",
    "SecretBox",
    "add_key_to_file",
    "generate_key",
    "key_file_path",
    "key_id",
]

log = logging.getLogger(__name__)

ENV_VAR = "S3DEST_SECRET_KEY"
KEY_FILE_NAME = "secret.key"
_VERSION = "v1"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_KEY_ID_HEX = 8
_URLSAFE_RE = re.compile(r"[A-Za-z0-9_-]*")
_GENERATE_HINT = (
    "a key is the URL-safe base64 of 32 random bytes; generate one with "
    'python -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
)

KeySource = Literal["env", "file", "given"]


def generate_key() -> str:
    """A new key: URL-safe base64 of 32 random bytes (44 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(_KEY_BYTES)).decode("ascii")


def key_id(key: bytes) -> str:
    """The short id of a key recorded in every token it encrypts (not secret)."""
    return hashlib.sha256(key).hexdigest()[:_KEY_ID_HEX]


def key_file_path(data_dir: Path) -> Path:
    return Path(data_dir) / KEY_FILE_NAME


def add_key_to_file(data_dir: Path) -> str:
    """Prepend a newly generated key to ``<data_dir>/secret.key`` (creating the file if
    needed) and return its key id. Older keys stay, so existing tokens still decrypt.

    The file is replaced atomically and stays mode 0600.
    """
    path = key_file_path(data_dir)
    private_dir(path.parent)
    new = generate_key()
    try:
        existing = path.read_text(encoding="ascii")
    except FileNotFoundError:
        existing = ""
    # Validate what is there before rewriting it, so a damaged file is not buried.
    if existing.strip():
        _parse_keys(_lines(existing), source=f"key file {path}")
    if existing and not existing.endswith("\n"):
        existing += "\n"
    content = new + "\n" + existing
    _write_private_file_atomically(path, content, replace=True)
    return key_id(_decode_key(new, where="new key"))


class SecretBox:
    """Encrypts and decrypts credentials with a keyring; the first key is the newest
    and encrypts, every key decrypts what it encrypted."""

    __slots__ = ("_ciphers", "_ids", "source")

    def __init__(self, keys: Sequence[bytes], *, source: KeySource = "given") -> None:
        if not keys:
            raise S3destError(f"no secret key configured; set {ENV_VAR}: {_GENERATE_HINT}")
        ids: list[str] = []
        ciphers: dict[str, AESGCM] = {}
        for index, key in enumerate(keys, start=1):
            if len(key) != _KEY_BYTES:
                raise S3destError(
                    f"secret key {index} is {len(key)} bytes long; keys must be {_KEY_BYTES} bytes"
                )
            kid = key_id(key)
            if kid in ciphers:
                continue  # the same key listed twice
            ids.append(kid)
            ciphers[kid] = AESGCM(key)
        self._ids: tuple[str, ...] = tuple(ids)
        self._ciphers = ciphers
        self.source: KeySource = source

    # ---------------------------------------------------------------- loading

    @classmethod
    def from_settings(cls, data_dir: Path, env_value: str | None) -> SecretBox:
        """Keys from ``env_value`` (the value of ``S3DEST_SECRET_KEY``) when it is set
        and not blank, otherwise from ``<data_dir>/secret.key``, generated if missing."""
        if env_value is not None and env_value.strip():
            entries = [part.strip() for part in env_value.split(",")]
            return cls(_parse_keys([e for e in entries if e], source=ENV_VAR), source="env")
        return cls(_load_or_create_key_file(Path(data_dir)), source="file")

    @classmethod
    def from_keys(cls, keys: Sequence[str]) -> SecretBox:
        """Keys as URL-safe base64 strings, newest first."""
        return cls(_parse_keys(list(keys), source="the given keys"), source="given")

    generate_key = staticmethod(generate_key)
    add_key_to_file = staticmethod(add_key_to_file)

    # ------------------------------------------------------------- properties

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Ids of the configured keys, newest first."""
        return self._ids

    @property
    def primary_key_id(self) -> str:
        """Id of the key new tokens are encrypted with."""
        return self._ids[0]

    def __repr__(self) -> str:
        return f"SecretBox(key_ids={list(self._ids)!r}, source={self.source!r})"

    # ------------------------------------------------------------- encryption

    def encrypt(self, plaintext: str, *, aad: str) -> str:
        """Encrypt ``plaintext`` under the newest key, bound to ``aad``."""
        kid = self._ids[0]
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._ciphers[kid].encrypt(nonce, plaintext.encode("utf-8"), _aad(kid, aad))
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{_VERSION}:{kid}:{body}"

    def decrypt(self, token: str, *, aad: str) -> str:
        """Decrypt a token made by `encrypt` with the same ``aad``."""
        kid, blob = _parse_token(token)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise S3destError(
                f"secret was encrypted with key {kid}, which is not configured; add it to "
                f"{ENV_VAR} (or, when {ENV_VAR} is unset, to {KEY_FILE_NAME} in the data "
                f"directory). Configured keys: {', '.join(self._ids)}."
            )
        nonce, sealed = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
        try:
            plaintext = cipher.decrypt(nonce, sealed, _aad(kid, aad))
        except InvalidTag:
            raise S3destError(
                f"secret could not be decrypted with key {kid}: the stored ciphertext was "
                "altered, or it belongs to another destination or field"
            ) from None
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:  # authenticated, so only if someone encrypted bytes
            raise S3destError("secret decrypted to bytes that are not UTF-8 text") from None

    def needs_rotation(self, token: str) -> bool:
        """True when ``token`` was not encrypted with the newest key."""
        kid, _ = _parse_token(token)
        return kid != self._ids[0]

    def reencrypt(self, token: str, *, aad: str) -> str:
        """``token`` encrypted under the newest key (unchanged if it already is)."""
        if not self.needs_rotation(token):
            return token
        return self.encrypt(self.decrypt(token, aad=aad), aad=aad)


# ----------------------------------------------------------------- internals


def _aad(kid: str, aad: str) -> bytes:
    # The version and key id are authenticated too; NUL separates them from caller data.
    return f"s3dest:{_VERSION}:{kid}\x00{aad}".encode()


def _parse_token(token: str) -> tuple[str, bytes]:
    if not isinstance(token, str):
        raise S3destError("secret token must be a string")
    parts = token.split(":")
    if len(parts) != 3:
        raise S3destError("secret token is malformed: expected 'v1:<keyid>:<data>'")
    version, kid, body = parts
    if version != _VERSION:
        raise S3destError(
            f"secret token has version {version[:8]!r}; this s3dest reads only {_VERSION!r}"
        )
    if len(kid) != _KEY_ID_HEX or any(c not in "0123456789abcdef" for c in kid):
        raise S3destError("secret token is malformed: its key id is not 8 hex digits")
    try:
        if not _URLSAFE_RE.fullmatch(body):
            raise ValueError("not base64url")
        blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise S3destError(f"secret token for key {kid} is malformed: bad base64") from None
    if len(blob) < _NONCE_BYTES + _TAG_BYTES:
        raise S3destError(f"secret token for key {kid} is malformed: too short")
    return kid, blob


def _decode_key(text: str, *, where: str) -> bytes:
    cleaned = text.strip()
    try:
        raw = base64.b64decode(
            cleaned.replace("-", "+").replace("_", "/") + "=" * (-len(cleaned) % 4),
            validate=True,
        )
    except (binascii.Error, ValueError):
        raise S3destError(f"{where} is not valid base64; {_GENERATE_HINT}") from None
    if len(raw) != _KEY_BYTES:
        raise S3destError(
            f"{where} decodes to {len(raw)} bytes, not {_KEY_BYTES}; {_GENERATE_HINT}"
        )
    return raw


def _parse_keys(entries: Sequence[str], *, source: str) -> list[bytes]:
    if not entries:
        raise S3destError(f"{source} holds no key; {_GENERATE_HINT}")
    return [
        _decode_key(entry, where=f"key {index} of {source}")
        for index, entry in enumerate(entries, start=1)
    ]


def _lines(text: str) -> list[str]:
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def _load_or_create_key_file(data_dir: Path) -> list[bytes]:
    path = key_file_path(data_dir)
    if not path.exists():
        private_dir(data_dir)
        with contextlib.suppress(FileExistsError):  # another process was first: use its key
            _write_private_file_atomically(path, generate_key() + "\n", replace=False)
            log.info("generated a new secret key in %s", path)
    text = _read_key_file(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning(
            "secret key file %s is readable by others (mode %o); run: chmod 600 %s",
            path,
            mode,
            path,
        )
    return _parse_keys(_lines(text), source=f"key file {path}")


def _read_key_file(path: Path) -> str:
    # A concurrent creator without hard-link support writes in place: wait for content.
    for _ in range(50):
        text = path.read_text(encoding="ascii")
        if text.strip():
            return text
        time.sleep(0.02)
    return text


def _write_private_file_atomically(path: Path, content: str, *, replace: bool) -> None:
    """Write ``content`` to ``path`` with mode 0600 so that readers see all of it or
    nothing. With ``replace=False`` raise FileExistsError if ``path`` exists."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, content.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic, and fails if the file exists
            except FileExistsError:
                raise
            except OSError:  # no hard links here: fall back to an exclusive create
                _write_exclusive(path, content)
        _fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _write_exclusive(path: Path, content: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, content.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
