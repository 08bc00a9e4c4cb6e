"""Helpers shared by the browser tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect

from s3dest.client import Client


def wait_until(
    predicate: Callable[[], Any], *, timeout: float = 90.0, interval: float = 0.3, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or predicate}")


def sign_in(page: Page, base_url: str, api_key: str) -> None:
    page.goto(f"{base_url}/signin")
    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def message(destination: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "destination": destination,
        "action": "read",
        "provider": "hubspot",
        "objectName": "contacts",
        "installationId": "inst-" + uuid.uuid4().hex[:8],
        "groupRef": "group-id-1",
        "groupName": "group-name-1",
        "operationId": str(uuid.uuid4()),
        "result": [{"fields": {"id": "438", "email": "maria@example.com"}}],
    }
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def wait_for_state(
    client: Client, event_id: str, state: str, timeout: float = 90.0
) -> dict[str, Any]:
    result: dict[str, Any] = wait_until(
        lambda: (record := client.message(event_id))["state"] == state and record,
        timeout=timeout,
        what=f"message {event_id} to be {state}",
    )
    return result
