"""Dashboard sessions and CSRF tokens: signed cookies, never the API key itself.

A session cookie carries ``{sid, pid, kh, iat}`` — a random session id, the project id, the
SHA-256 of the API key that signed in, and the issue time — signed with HMAC-SHA256 under a
secret that never leaves the server:

* with ``S3DEST_SECRET_KEY`` set (several nodes sharing one database), the secret is derived
  from it, so every node accepts every node's cookies;
* otherwise it is a random key in ``<data dir>/dashboard-session.key`` (mode 0600).

Every request re-checks that the key hash still names a live (not revoked) key of that
project, so revoking the API key ends its dashboard sessions too. Sign-out drops the
cookie and remembers the session id as revoked until the cookie would have expired.

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
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine

from s3dest.datadir import private_dir
from s3dest.settings import Settings
from s3dest.store.projects import authenticate_hash, hash_key

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
    sid: str
    project_id: str
    project_name: str
    key_hash: str
    issued_at: float


class Signer:
    """Signs and verifies cookie payloads; computes CSRF tokens."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._revoked: dict[str, float] = {}
        self._lock = threading.Lock()

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

    def new_session(self, project_id: str, api_key: str) -> str:
        return self.sign(
            "session",
            {
                "sid": secrets.token_urlsafe(18),
                "pid": project_id,
                "kh": hash_key(api_key),
                "iat": time.time(),
            },
        )

    def new_pre_session(self) -> str:
        return self.sign("pre", {"sid": secrets.token_urlsafe(18), "iat": time.time()})

    def pre_sid(self, token: str | None) -> str | None:
        data = self.unsign("pre", token, PRE_SECONDS)
        sid = data.get("sid") if data else None
        return sid if isinstance(sid, str) else None

    def revoke(self, sid: str) -> None:
        now = time.time()
        with self._lock:
            for old, until in list(self._revoked.items()):
                if until < now:
                    del self._revoked[old]
            self._revoked[sid] = now + SESSION_SECONDS

    def session(self, engine: Engine, token: str | None) -> Session | None:
        data = self.unsign("session", token, SESSION_SECONDS)
        if data is None:
            return None
        sid, pid, kh = data.get("sid"), data.get("pid"), data.get("kh")
        if not (isinstance(sid, str) and isinstance(pid, str) and isinstance(kh, str)):
            return None
        with self._lock:
            if sid in self._revoked:
                return None
        project = authenticate_hash(engine, kh, project_id=pid)
        if project is None:
            return None
        return Session(
            sid=sid,
            project_id=pid,
            project_name=project.name,
            key_hash=kh,
            issued_at=float(data["iat"]),
        )
