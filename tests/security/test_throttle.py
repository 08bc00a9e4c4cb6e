"""Failed authentication is throttled per client address and logged without the key
(issue 13 item 7): the API (Bearer) and the dashboard's sign-in form. On SQLite and
PostgreSQL, against a real `s3dest serve` with a small limit."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson

from tests.support.dashboard import browser, post_sign_in
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve

LIMIT = 5
# Made-up keys in our format: the log may show their 8-character prefix, never more.
WRONG = [f"s3d_wrongKey{n}-abcdefghijklmnopqrstuvwxyz012345" for n in range(LIMIT + 3)]


def _server(env: S3destEnv, tmp_path: Path) -> S3destProcess:
    env.extra["S3DEST_AUTH_FAILURE_LIMIT"] = str(LIMIT)
    env.extra["S3DEST_AUTH_FAILURE_WINDOW_SECONDS"] = "60"
    return serve(env, tmp_path)


def _auth_lines(server: S3destProcess) -> list[dict[str, object]]:
    lines = [orjson.loads(x) for x in server.log().splitlines() if x.startswith("{")]
    return [x for x in lines if x.get("logger") == "s3dest.auth"]


def _get(server: S3destProcess, key: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}/v1/destinations", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def test_the_api_answers_429_after_too_many_failures(s3dest_env: S3destEnv, tmp_path: Path) -> None:
    _, known = s3dest_env.create_project("alpha")
    unused = s3dest_env.cli("projects", "add-key").stdout.strip()  # never used from here
    server = _server(s3dest_env, tmp_path)
    try:
        assert _get(server, known).status_code == 200  # a key that works from here
        for key in WRONG[:LIMIT]:
            assert _get(server, key).status_code == 401
        throttled = _get(server, WRONG[LIMIT])
        assert throttled.status_code == 429, throttled.text
        assert 1 <= int(throttled.headers["Retry-After"]) <= 60
        error = throttled.json()["error"]
        assert error["code"] == "too_busy" and "S3DEST_AUTH_FAILURE_LIMIT" in error["fields"]
        # Not even a valid key is looked up from here now, unless it worked here lately
        # (tenants may share one address: one's broken client must not lock out the others).
        assert _get(server, unused).status_code == 429
        assert _get(server, known).status_code == 200

        lines = _auth_lines(server)
        failed = [x for x in lines if x["msg"] == "authentication failed"]
        assert len(failed) == LIMIT
        for line, key in zip(failed, WRONG, strict=False):
            assert line["clientAddress"] == "127.0.0.1" and line["surface"] == "api"
            assert line["keyPrefix"] == key[:8]
        assert [x["msg"] for x in lines].count("authentication throttled") == 1
        log = server.log()
        for key in WRONG:
            assert key[8:] not in log, "a presented key (beyond its prefix) is in the log"
        assert known[8:] not in log and unused[8:] not in log
    finally:
        server.kill()


def test_the_sign_in_form_answers_429_after_too_many_failures(
    s3dest_env: S3destEnv, tmp_path: Path
) -> None:
    _, key = s3dest_env.create_project("alpha")
    server = _server(s3dest_env, tmp_path)
    try:
        client = browser(server.url)
        for wrong in WRONG[:LIMIT]:
            assert post_sign_in(client, wrong).status_code == 401
        throttled = post_sign_in(client, WRONG[LIMIT])
        assert throttled.status_code == 429
        assert int(throttled.headers["Retry-After"]) >= 1
        assert "Too many failed sign-ins" in throttled.text
        # A key that never signed in from here is refused without being looked up …
        assert post_sign_in(browser(server.url), key).status_code == 429
        # … and the API shares the window: same address, same count.
        assert _get(server, WRONG[0]).status_code == 429

        lines = _auth_lines(server)
        failed = [x for x in lines if x["msg"] == "authentication failed"]
        assert len(failed) == LIMIT and {x["surface"] for x in failed} == {"dashboard"}
        log = server.log()
        for wrong in WRONG:
            assert wrong[8:] not in log
        assert key[8:] not in log
    finally:
        server.kill()


def test_a_password_like_token_is_never_logged(s3dest_env: S3destEnv, tmp_path: Path) -> None:
    """Something that is not one of our keys (a password pasted into the wrong field) does
    not even get its prefix logged."""
    server = _server(s3dest_env, tmp_path)
    try:
        assert _get(server, "hunter2-correct-horse").status_code == 401
        line = next(x for x in _auth_lines(server) if x["msg"] == "authentication failed")
        assert line["keyPrefix"] is None
        assert "hunter2" not in server.log()
    finally:
        server.kill()
