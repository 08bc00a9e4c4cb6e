"""Dashboard sessions and CSRF tokens.

A session lives in the database (s3dest.store.sessions); the session cookie carries only
its random id (256 bits from `secrets`), nothing about the API key. Every request looks
the id up, so sign-out (the row is deleted), revocation of the key that signed in (its
rows are deleted, and a session is only found through a live key) and expiry hold in
every process and across restarts.

Other cookies — the pre-sign-in id and the flash messages — are signed with HMAC-SHA256
under a secret that never leaves the server:

* with ``S3DEST_SECRET_KEY`` set (several nodes sharing one database), the secret is derived
  from it, so every node accepts every node's cookies and CSRF tokens;
* otherwise it is a random key in ``<data dir>/dashboard-session.key`` (mode 0600).

CSRF: a form's token is ``HMAC(secret, "csrf|" + sid)``, sid being the session's id (or,
before sign-in, the id in a signed pre-session cookie). A cross-site page can neither read
the token nor compute it; every POST must carry it (field ``csrf_token`` or header
``X-CSRF-Token``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine

from s3dest.access.audit import Actor
from s3dest.datadir import private_dir
from s3dest.settings import Settings
from s3dest.store import sessions as store

SESSION_COOKIE = "s3dest_session"
PRE_COOKIE = "s3dest_pre"
FLASH_COOKIE = "s3dest_flash"
SESSION_SECONDS = 12 * 3600
PRE_SECONDS = 24 * 3600
KEY_FILE = "dashboard-session.key"
_DERIVATION = b"s3dest dashboard session key v1"


def load_secret(settings: Settings) -> bytes:
    """The signing secret: derived from S3DEST_SECRET_KEY, or a private file in the data dir."""
    if settings.secret_key:
        return hmac.new(settings.secret_key.encode(), _DERIVATION, hashlib.sha256).digest()
    directory = private_dir(settings.data_dir)
    path = directory / KEY_FILE
    for _ in range(50):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            text = path.read_text().strip()
            if text:
                return base64.urlsafe_b64decode(text)
            time.sleep(0.02)  # another process is writing it right now
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return base64.urlsafe_b64decode(path.read_text().strip())
    raise RuntimeError(f"{path} stays empty; delete it and restart s3dest")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    sid: str  # the cookie's value: the key of CSRF tokens
    project_id: str
    project_name: str
    key_id: str
    key_prefix: str
    issued_at: float

    @property
    def actor(self) -> Actor:
        """Who acts, for the audit log: dashboard:<key id>."""
        return Actor.dashboard(self.key_id, self.key_prefix)


class Signer:
    """Signs and verifies cookie payloads; computes CSRF tokens."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, purpose: str, payload: bytes) -> bytes:
        return hmac.new(self._secret, purpose.encode() + b"|" + payload, hashlib.sha256).digest()

    def sign(self, purpose: str, data: dict[str, Any]) -> str:
        payload = orjson.dumps(data)
        return f"{_b64(payload)}.{_b64(self._mac(purpose, payload))}"

    def unsign(self, purpose: str, token: str | None, max_age: float) -> dict[str, Any] | None:
        if not token or token.count(".") != 1:
            return None
        body, mac = token.split(".")
        try:
            payload = _unb64(body)
            given = _unb64(mac)
        except (ValueError, TypeError):
            return None
        if not hmac.compare_digest(given, self._mac(purpose, payload)):
            return None
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        issued = data.get("iat")
        if not isinstance(issued, int | float) or not 0 <= time.time() - issued <= max_age:
            return None
        return data

    def csrf_token(self, sid: str) -> str:
        return _b64(self._mac("csrf", sid.encode()))

    def csrf_ok(self, sid: str | None, token: str | None) -> bool:
        if not sid or not token:
            return False
        return hmac.compare_digest(token.encode(), self.csrf_token(sid).encode())

    # -- sessions ---------------------------------------------------------------------------

    def new_session(self, engine: Engine, *, project_id: str, key_id: str) -> str:
        """A new server-side session; returns its id, the session cookie's value."""
        return store.create_session(
            engine, project_id=project_id, key_id=key_id, ttl=SESSION_SECONDS
        )

    def new_pre_session(self) -> str:
        return self.sign("pre", {"sid": secrets.token_urlsafe(18), "iat": time.time()})

    def pre_sid(self, token: str | None) -> str | None:
        data = self.unsign("pre", token, PRE_SECONDS)
        sid = data.get("sid") if data else None
        return sid if isinstance(sid, str) else None

    def revoke(self, engine: Engine, sid: str) -> None:
        store.delete_session(engine, sid)

    def session(self, engine: Engine, token: str | None) -> Session | None:
        # A session id is 43 characters; anything far from that is not worth a query.
        if not token or len(token) > 100:
            return None
        row = store.find_session(engine, token)
        if row is None:
            return None
        return Session(
            sid=token,
            project_id=row.project_id,
            project_name=row.project_name,
            key_id=row.key_id,
            key_prefix=row.key_prefix,
            issued_at=row.created_at,
        )
