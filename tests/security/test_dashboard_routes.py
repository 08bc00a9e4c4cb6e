"""Every dashboard route, from the app's own route table (tests.support.routes): each needs a
session, and each POST refuses a form without its CSRF token — so a page added tomorrow is
covered without anyone listing it. Was: CSRF tried on 4 of the dashboard's POST routes and
sessions on 2 of its pages, by hand. One `s3dest serve` on SQLite for the module (the
session store's behaviour on both databases is tests/security/test_sessions.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.support.builders import create_destination, message
from tests.support.dashboard import browser, csrf_token, sign_in, signed_in
from tests.support.moto_server import S3Server
from tests.support.routes import Endpoint, app_endpoints, dashboard_endpoints
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve

# Routes a visitor without a session may use: the sign-in form and the front door (which
# sends them to it). Anything else without a session is a bug — or belongs here, reviewed.
PUBLIC = {"GET /", "GET /signin", "POST /signin"}

# A few routes the enumeration must find, whatever else it finds: if one goes missing, the
# route table is being read wrongly (or the route was dropped, and this list should say so).
KNOWN = {
    "GET /destinations",
    "GET /destinations/{ref}/edit",
    "POST /destinations/new",
    "POST /destinations/{ref}/delete",
    "POST /ui/api/key-preview",
    "POST /messages/{event_id}/replay",
    "POST /keys/{key_id}/revoke",
    "POST /signout",
    "GET /audit",
}
KNOWN_API = {
    "POST /v1/messages",
    "PUT /v1/manifest",
    "GET /v1/audit",
    "DELETE /v1/api-keys/{key_id}",
}


@dataclass
class Site:
    server: S3destProcess
    api_key: str
    ids: dict[str, str]  # path parameter → a real id of the project


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> Iterator[Site]:
    tmp: Path = tmp_path_factory.mktemp("dashboard-routes")
    env = S3destEnv(data_dir=tmp / "data", extra={"S3DEST_SECRET_KEY": ""})
    _, api_key = env.create_project("routes")
    server = serve(env, tmp)
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
            dest = create_destination(api, s3_server, s3_server.create_bucket(), "d")
            sent = api.post("/v1/messages", json=message(destination="d"))
            assert sent.status_code == 202, sent.text
            key = api.post("/v1/api-keys", json={"name": "spare"})
            assert key.status_code == 201, key.text
        ids = {
            "ref": dest["id"],
            "event_id": sent.json()["accepted"][0]["eventId"],
            "key_id": key.json()["id"],
        }
        yield Site(server, api_key, ids)
    finally:
        server.kill()


def _url(endpoint: Endpoint, site: Site) -> str:
    return endpoint.url(**site.ids)


def test_the_enumeration_finds_every_known_route() -> None:
    """Planted bug: reading `app.routes` as a flat list, keeping its `Route`s (FastAPI keeps
    included routers as nodes there), finds 4 routes and no dashboard one: it fails here."""
    dashboard = {e.label for e in dashboard_endpoints()}
    assert dashboard >= KNOWN, KNOWN - dashboard
    api = {e.label for e in app_endpoints() if not e.dashboard}
    assert api >= KNOWN_API, KNOWN_API - api
    assert not dashboard & api
    assert dashboard >= PUBLIC, PUBLIC - dashboard


def _refused_sign_in(response: httpx.Response, endpoint: Endpoint) -> str | None:
    """Why the response is not "sign in first" (None when it is)."""
    if endpoint.path.startswith("/ui/api/"):
        return None if response.status_code == 401 else f"{response.status_code}"
    if response.status_code != 303:
        return f"{response.status_code}"
    location = response.headers["location"]
    expected = "/signin"
    if endpoint.method == "GET":
        expected += "?next=" + quote(response.request.url.raw_path.decode(), safe="")
    return None if location == expected else f"303 to {location}"


def test_every_dashboard_route_needs_a_session(site: Site) -> None:
    """Without a session cookie, and with the cookie of a session that signed out, every
    dashboard route but the sign-in form sends the visitor to /signin (a page GET with
    ?next= back to it); the /ui/api/ helpers answer 401. Planted bug: a page without the
    session dependency (`@router.get("/debug")` returning a page, added to pages/access.py)
    answers 200 and fails this test; so does `/audit` taking `session: Session | None`."""
    endpoints = [e for e in dashboard_endpoints() if e.label not in PUBLIC]
    assert len(endpoints) >= 20, [e.label for e in endpoints]
    gone = sign_in(site.server.url, site.api_key)
    stale = gone.cookies["s3dest_session"]
    page = gone.get("/destinations")
    assert page.status_code == 200
    out = gone.post("/signout", data={"csrf_token": csrf_token(page.text)})
    assert out.status_code == 303 and not signed_in(gone)
    gone.close()
    wrong: list[str] = []
    for cookie in (None, stale):
        with browser(site.server.url) as visitor:
            if cookie:
                visitor.cookies.set("s3dest_session", cookie)
            for endpoint in endpoints:
                response = visitor.request(endpoint.method, _url(endpoint, site))
                why = _refused_sign_in(response, endpoint)
                if why:
                    wrong.append(f"{endpoint.label} ({'stale' if cookie else 'none'}) → {why}")
    # The front door sends a visitor to sign in too (it is public only to redirect).
    with browser(site.server.url) as visitor:
        front = visitor.get("/")
        assert front.status_code == 303 and front.headers["location"] == "/signin"
    assert wrong == [], wrong


def test_every_dashboard_post_refuses_a_missing_or_forged_csrf_token(site: Site) -> None:
    """Each dashboard POST, with real ids of the project (so a missing check would act),
    signed in: without the token, and with a forged one, it is 403 "security token" and
    nothing changes (still signed in; no new audit entry). The sign-in form the same, before
    any session. Planted bug: `await csrf_form(...)` removed from POST
    /destinations/{ref}/test (it answers 303 and writes a test object), or from POST
    /keys/{key_id}/revoke (303, and the spare key is revoked)."""
    posts = [e for e in dashboard_endpoints() if e.method == "POST"]
    assert len(posts) >= 12, [e.label for e in posts]
    headers = {"Authorization": f"Bearer {site.api_key}"}
    with httpx.Client(base_url=site.server.url, headers=headers, timeout=30) as api:
        before = api.get("/v1/audit").json()["entries"]
        wrong: list[str] = []
        client = sign_in(site.server.url, site.api_key)
        try:
            for endpoint in posts:
                if endpoint.label in PUBLIC:
                    continue
                for token in (None, "forged"):
                    data = {"name": "csrf", "api_key": site.api_key}
                    extra: dict[str, str] = {}
                    if token and endpoint.path.startswith("/ui/api/"):
                        extra = {"X-CSRF-Token": token}
                    elif token:
                        data["csrf_token"] = token
                    response = client.post(_url(endpoint, site), data=data, headers=extra)
                    if response.status_code != 403 or "security token" not in response.text:
                        wrong.append(f"{endpoint.label} (token {token}) → {response.status_code}")
            assert signed_in(client), "a refused POST /signout signed the client out"
        finally:
            client.close()
        with browser(site.server.url) as visitor:
            assert visitor.get("/signin").status_code == 200  # the pre-session cookie
            for token in (None, "forged"):
                data = {"api_key": site.api_key} | ({"csrf_token": token} if token else {})
                response = visitor.post("/signin", data=data)
                if response.status_code != 403 or "s3dest_session" in visitor.cookies:
                    wrong.append(f"POST /signin (token {token}) → {response.status_code}")
        assert wrong == [], wrong
        assert api.get("/v1/audit").json()["entries"] == before
        assert [k["name"] for k in api.get("/v1/api-keys").json()["keys"]].count("spare") == 1
