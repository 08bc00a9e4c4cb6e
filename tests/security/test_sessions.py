"""Dashboard sessions live server-side (issue 13 item 6): the cookie carries only a random
id — nothing of the API key — sign-out holds across a restart, a session survives one, and
revoking its key ends it. On SQLite and PostgreSQL, against a real `s3dest serve`."""

from __future__ import annotations

import base64
import contextlib
import hashlib

import httpx

from tests.support.dashboard import browser, csrf_token, post_form, sign_in, signed_in
from tests.support.s3dest_server import S3destEnv, S3destProcess


def _decoded(cookie: str) -> str:
    """The cookie and every base64 piece of it, as text (a signed cookie's payload shows)."""
    out = [cookie]
    for part in cookie.split("."):
        with contextlib.suppress(ValueError):
            out.append(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode("latin-1"))
    return "\n".join(out)


def test_sign_out_holds_across_a_restart_and_the_cookie_says_nothing_of_the_key(
    s3dest_server: S3destProcess, s3dest_env: S3destEnv
) -> None:
    _, key = s3dest_env.create_project("alpha")
    leaving = sign_in(s3dest_server.url, key)
    staying = sign_in(s3dest_server.url, key)
    cookie = leaving.cookies["s3dest_session"]
    text = _decoded(cookie)
    assert hashlib.sha256(key.encode()).hexdigest() not in text
    assert key not in text and key[4:12] not in text
    assert len(cookie) >= 43  # 256 random bits, url-safe base64

    out = post_form(leaving, "/destinations", "/signout")
    assert out.status_code == 303
    # Replay the signed-out cookie, as an attacker who copied it would.
    stolen = browser(s3dest_server.url)
    stolen.cookies.set("s3dest_session", cookie)
    assert not signed_in(stolen)

    s3dest_server.restart()
    assert not signed_in(stolen), "a signed-out session works again after a restart"
    assert signed_in(staying), "a live session did not survive the restart"


def test_revoking_a_key_ends_its_sessions(
    s3dest_server: S3destProcess, s3dest_env: S3destEnv
) -> None:
    _, keeper = s3dest_env.create_project("alpha")
    headers = {"Authorization": f"Bearer {keeper}"}
    with httpx.Client(base_url=s3dest_server.url, headers=headers, timeout=30) as api:
        created = api.post("/v1/api-keys", json={"name": "laptop"})
        assert created.status_code == 201, created.text
        laptop = sign_in(s3dest_server.url, created.json()["key"])
        office = sign_in(s3dest_server.url, keeper)
        assert signed_in(laptop) and signed_in(office)
        assert api.delete(f"/v1/api-keys/{created.json()['id']}").status_code == 204
    assert not signed_in(laptop)
    assert signed_in(office)  # another key's session goes on
    s3dest_server.restart()
    assert not signed_in(laptop)


def test_csrf_token_is_tied_to_the_session(
    s3dest_server: S3destProcess, s3dest_env: S3destEnv
) -> None:
    _, key = s3dest_env.create_project("alpha")
    one = sign_in(s3dest_server.url, key)
    two = sign_in(s3dest_server.url, key)
    page = one.get("/keys")
    assert page.status_code == 200
    token = csrf_token(page.text)
    # Session two cannot use session one's token, nor a form without one.
    assert two.post("/keys", data={"name": "stolen", "csrf_token": token}).status_code == 403
    assert two.post("/keys", data={"name": "stolen"}).status_code == 403
    assert "stolen" not in one.get("/keys").text
    # Its own token works.
    made = post_form(two, "/keys", "/keys", name="mine")
    assert made.status_code == 200 and "mine" in made.text
