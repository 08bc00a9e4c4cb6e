"""X-Request-ID: every API answer carries one — the caller's own when it is a safe token,
otherwise a fresh one — whatever the route and the status.

Catches the planted bug "X-Request-ID not echoed" (issue 17; the header dropped in
`api.middleware.RequestIdMiddleware`, or the middleware not installed): no other test
mentions the header.
"""

from __future__ import annotations

import json
import re
import uuid

import httpx
from tests.support.polling import wait_until
from tests.support.s3dest_server import S3destProcess
from tests.support.shared_server import shared_server_fixtures

# The id does not depend on the database: one server, on SQLite, for the module (each test
# has a project of its own).
s3dest_env, s3dest_server = shared_server_fixtures(("sqlite",))

GENERATED = re.compile(r"[0-9a-f]{32}")


def answers(server: S3destProcess, api_key: str, headers: dict[str, str]) -> list[httpx.Response]:
    """One request per kind of answer: 200, 401, 404, 422 and a dashboard page."""
    auth = {"Authorization": f"Bearer {api_key}", **headers}
    with httpx.Client(base_url=server.url, timeout=60) as http:
        responses = [
            http.get("/healthz", headers=headers),
            http.get("/v1/destinations", headers=headers),  # no API key
            http.get(f"/v1/messages/{uuid.uuid4()}", headers=auth),
            http.put(
                "/v1/manifest",
                content=b"specVersion: 9\n",
                headers={**auth, "Content-Type": "application/yaml"},
            ),
            http.get("/", headers=headers),
        ]
    assert [r.status_code for r in responses[:4]] == [200, 401, 404, 422]
    assert responses[4].status_code < 500
    return responses


def test_a_safe_caller_id_is_echoed_on_every_answer(
    s3dest_server: S3destProcess, project: tuple[str, str]
) -> None:
    given = "req-2025.10_14-abc"
    for response in answers(s3dest_server, project[1], {"X-Request-ID": given}):
        assert response.headers.get("x-request-id") == given, response.request.url


def test_without_an_id_each_answer_gets_a_new_one(
    s3dest_server: S3destProcess, project: tuple[str, str]
) -> None:
    ids = [r.headers.get("x-request-id") for r in answers(s3dest_server, project[1], {})]
    assert all(i is not None and GENERATED.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == len(ids), ids


def test_an_unsafe_caller_id_is_replaced_by_a_new_one(s3dest_server: S3destProcess) -> None:
    for given in ("has space", "x" * 65, "a/b", "semi;colon", ""):
        response = httpx.get(
            f"{s3dest_server.url}/healthz", headers={"X-Request-ID": given}, timeout=60
        )
        echoed = response.headers.get("x-request-id")
        assert echoed is not None and echoed != given, (given, echoed)
        assert GENERATED.fullmatch(echoed), (given, echoed)


def test_a_request_s_log_line_carries_its_id(s3dest_server: S3destProcess) -> None:
    """The line a request writes (here: its failed authentication) says which request it
    was. Planted bug: `RequestIdMiddleware` not setting `request_id_var` (the header still
    echoed): the line has no requestId and this fails."""
    given = "req-logline-17"
    response = httpx.get(
        f"{s3dest_server.url}/v1/destinations",
        headers={"X-Request-ID": given, "Authorization": "Bearer s3d_logline-not-a-key"},
        timeout=60,
    )
    assert response.status_code == 401 and response.headers.get("x-request-id") == given

    def failure_lines() -> list[dict[str, object]]:
        entries = [json.loads(x) for x in s3dest_server.log().splitlines() if x.startswith("{")]
        return [
            e
            for e in entries
            if e.get("msg") == "authentication failed" and e.get("keyPrefix") == "s3d_logl"
        ]

    (line,) = wait_until(failure_lines, 30, "the failed authentication's log line")
    assert line.get("requestId") == given, line
