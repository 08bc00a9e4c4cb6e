"""/docs and /redoc in a real browser with every request off this machine refused.

Issue 13 item 10 / issue 15 item 5: Swagger UI and ReDoc came from a CDN, so offline the
pages were blank and a tenant's browser fetched third-party scripts. Fails on the planted
bug `FastAPI(...)` instead of `FastAPIOffline(...)` in api/app.py: the scripts are asked of
cdn.jsdelivr.net, refused here, and the title never renders.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from tests.support.s3dest_server import S3destProcess
from tests.support.shared_server import shared_server_fixtures

# one server (SQLite, as the other browser tests) for the module; each test has a project of its own
s3dest_env, s3dest_server = shared_server_fixtures(("sqlite",))

pytestmark = pytest.mark.browser


def _offline(page: Page) -> list[str]:
    """Refuse every request that does not go to loopback; return the refused URLs."""
    refused: list[str] = []

    def handle(route: Route) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", handle)
    return refused


def test_swagger_ui_renders_offline(s3dest_server: S3destProcess, page: Page) -> None:
    refused = _offline(page)
    page.goto(f"{s3dest_server.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("s3dest")
    # An operation of the contract is listed, so the OpenAPI document was loaded and drawn.
    expect(page.locator(".opblock-summary-path", has_text="/v1/destinations").first).to_be_visible()
    assert refused == []


def test_redoc_renders_offline(s3dest_server: S3destProcess, page: Page) -> None:
    refused = _offline(page)
    page.goto(f"{s3dest_server.url}/redoc")
    expect(page.locator("h1").first).to_contain_text("s3dest")
    assert refused == []
