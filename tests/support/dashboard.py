"""The dashboard driven over plain HTTP (no browser): sign in, read a form's CSRF token,
post a form — for the security tests of sessions and throttling."""

from __future__ import annotations

import re

import httpx

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


def browser(base_url: str) -> httpx.Client:
    """A client that keeps cookies and does not follow redirects (tests look at them)."""
    return httpx.Client(base_url=base_url, timeout=30, follow_redirects=False)


def post_sign_in(client: httpx.Client, api_key: str) -> httpx.Response:
    """GET /signin (for the pre-session cookie and its CSRF token), then POST the key."""
    page = client.get("/signin")
    assert page.status_code == 200, page.text
    return client.post("/signin", data={"api_key": api_key, "csrf_token": csrf_token(page.text)})


def sign_in(base_url: str, api_key: str) -> httpx.Client:
    """A client signed in to the dashboard with `api_key`."""
    client = browser(base_url)
    response = post_sign_in(client, api_key)
    assert response.status_code == 303, response.text
    assert client.cookies.get("s3dest_session"), "no session cookie after sign-in"
    return client


def signed_in(client: httpx.Client) -> bool:
    """Whether the client's session still opens a page (else: a redirect to /signin)."""
    response = client.get("/destinations")
    if response.status_code == 200:
        return True
    assert response.status_code == 303, response.status_code
    assert response.headers["location"].startswith("/signin"), response.headers["location"]
    return False


def post_form(client: httpx.Client, page: str, action: str, **fields: str) -> httpx.Response:
    """Open `page`, then post `fields` to `action` with that page's CSRF token."""
    opened = client.get(page)
    assert opened.status_code == 200, opened.text
    return client.post(action, data={**fields, "csrf_token": csrf_token(opened.text)})
