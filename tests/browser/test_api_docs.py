"""/docs and /redoc in a real browser with every request off this machine refused.

Issue 13 item 10 / issue 15 item 5: Swagger UI and ReDoc came from a CDN, so offline the
pages were blank and a tenant's browser fetched third-party scripts. Fails on the planted
bug `FastAPI(...)` instead of `FastAPIOffline(...)` in api/app.py: the scripts are asked of
cdn.jsdelivr.net, refused here, and the title never renders.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from s3dest.api.openapi_responses import response_examples
from s3dest.keys.samples import READ_EXAMPLE_EVENT_ID
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
    # Its answers show their examples: POST /v1/messages's 202 has the page's read message's
    # eventId (issue 15 item 5).
    path = page.locator(".opblock-summary-path", has_text=re.compile(r"^/v1/messages$"))
    send = page.locator(".opblock-post", has=path)
    send.locator(".opblock-summary").click()
    accepted = send.locator(".responses-table tr.response[data-code='202']")
    expect(accepted).to_contain_text(READ_EXAMPLE_EVENT_ID)
    assert refused == []


def test_redoc_renders_offline(s3dest_server: S3destProcess, page: Page) -> None:
    refused = _offline(page)
    page.goto(f"{s3dest_server.url}/redoc#tag/deliveries/operation/deliveries_v1_deliveries_get")
    expect(page.locator("h1").first).to_contain_text("s3dest")
    # The response sample of GET /v1/deliveries is its example, with a nextCursor.
    cursor = answer_example("get", "/v1/deliveries", "200")["nextCursor"]
    expect(page.get_by_text(f'"{cursor}"').first).to_be_visible()
    assert refused == []


def answer_example(method: str, path: str, status: str) -> dict[str, Any]:
    """The first JSON example of an answer, as the document has it."""
    examples = response_examples()[(method, path, status)]["application/json"]
    value: dict[str, Any] = next(iter(examples.values()))["value"]
    return value
