"""The API keys and audit pages, in a real browser: add a key (shown once), revoke it, see
both changes in the audit log with the dashboard as the actor; the last key offers no
revoke button."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Shots
from tests.browser.helpers import sign_in
from tests.support.s3dest_server import S3destProcess

pytestmark = pytest.mark.browser


def test_add_and_revoke_a_key_then_read_the_audit_log(
    s3dest_server: S3destProcess, project: tuple[str, str], page: Page, shot: Shots
) -> None:
    _, api_key = project
    base = s3dest_server.url
    sign_in(page, base, api_key)
    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="API keys", exact=True)).to_be_visible()
    expect(page.get_by_text("the last key cannot be revoked")).to_be_visible()

    page.get_by_label("Name").fill("deploy-bot")
    page.get_by_role("button", name="Create key").click()
    shown = page.locator("#new-key-value")
    expect(shown).to_have_text(re.compile(r"^s3d_\S{40,}$"))
    new_key = shown.inner_text()
    shot(page, "keys-01-created")

    # Reloading shows it no more: the key is shown once.
    page.goto(f"{base}/keys")
    expect(page.locator("#new-key-value")).to_have_count(0)
    assert new_key not in page.content()
    page.get_by_role("button", name=f"Revoke key deploy-bot ({new_key[:8]})").click()
    expect(page.get_by_role("status")).to_contain_text("revoked")
    expect(page.locator("#keys-table")).not_to_contain_text("deploy-bot")

    page.get_by_role("link", name="Audit").click()
    table = page.locator("#audit-table")
    expect(table).to_contain_text("apiKey.created")
    expect(table).to_contain_text("apiKey.revoked")
    expect(table).to_contain_text("dashboard:")
    shot(page, "keys-02-audit")
    assert new_key not in page.content()
