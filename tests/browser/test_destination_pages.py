"""The Destinations and message pages a person can trust (issue 15 items 1, 2, 3, 7, 10).

One `s3dest serve` (SQLite) and moto serve the whole module; each test has its own
project. Screenshots go to test-output/screenshots/ (docs/screenshots/ has the README's).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from sqlalchemy import Engine

from s3dest.client import Client
from s3dest.runtime import open_engine
from s3dest.settings import Settings
from s3dest.store.projects import create_project
from tests.browser.conftest import TIMEOUT_MS, Shots
from tests.browser.helpers import OVERFLOW, sign_in
from tests.support.builders import EXAMPLE_SECRET, contact_message, destination_fields
from tests.support.moto_server import S3Server
from tests.support.polling import wait_for_state, wait_until
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve
from tests.support.samples import DESTINATION, PAGE_AMP_YAML
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.browser

REGION = "join('/', [data.result[0].fields.custom_region, metadata.\"event-id\"])"


@dataclass
class Site:
    server: S3destProcess
    engine: Engine

    def project(self, name: str) -> tuple[str, Client]:
        created = create_project(self.engine, name)
        return created.api_key, self.server.client(created.api_key)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp: Path = tmp_path_factory.mktemp("destination-pages")
    env = S3destEnv(data_dir=tmp / "data", extra={"S3DEST_SECRET_KEY": ""})
    process = serve(env, tmp)
    engine = open_engine(Settings(data_dir=env.data_dir), migrate=False)
    try:
        yield Site(process, engine)
    finally:
        process.kill()
        engine.dispose()


def _region_message(destination: str, region: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"id": "438", "email": "maria@example.com"}
    if region is not None:
        fields["custom_region"] = region
    return contact_message(destination, result=[{"fields": fields}])


# -- item 1 and 7 ----------------------------------------------------------------------------


def test_a_custom_field_template_is_saved_with_a_warning_and_previewed_on_a_real_message(
    site: Site, s3_server: S3Server, bucket: str, page: Page, shot: Shots
) -> None:
    """Was: "does not render for a sample read message", and nothing saved."""
    api_key, client = site.project("custom-field")
    destination = client.create_destination(
        **destination_fields(s3_server, bucket, "crm", enabled=False)
    )
    held = client.send(_region_message("crm", "emea<b>"))  # disabled: held, body kept
    wait_for_state(client, held["eventId"], "held")
    sign_in(page, site.server.url, api_key)

    page.goto(f"{site.server.url}/destinations/{destination['id']}/edit")
    page.get_by_label("Object key template").fill(REGION)
    expect(page.locator("#preview-read")).to_have_text(re.compile(r"^\{custom_region\}/"))
    warnings = page.locator("#preview-warnings")
    expect(warnings).to_contain_text("data.result[0].fields.custom_region || 'unknown'")
    recent = page.locator(f"#preview-recent li[data-event-id='{held['eventId']}']")
    expect(recent).to_contain_text(f"emea<b>/{held['eventId']}")  # escaped, as text
    page.get_by_label("Enabled").check()
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "13-key-template-custom-field")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Destination crm saved.")).to_be_visible()
    expect(page.locator(".flash-warning").first).to_contain_text("custom_region")
    assert client.destination("crm")["keyTemplate"] == REGION
    delivered = wait_for_state(client, held["eventId"], "delivered")
    assert delivered["key"] == f"emea<b>/{held['eventId']}"

    # A message without the field is parked; its page says which field, and shows the body.
    parked = client.send(_region_message("crm", None))
    wait_for_state(client, parked["eventId"], "parked")
    page.goto(f"{site.server.url}/messages/{parked['eventId']}")
    expect(page.locator("#parked-now")).to_contain_text(
        "(data.result[0].fields.custom_region is missing)"
    )
    expect(page.locator("#message-installation")).to_have_text(re.compile(r"^inst-"))
    expect(page.locator("#message-body")).to_contain_text('"email": "maria@example.com"')
    shot(page, "14-message-parked")
    page.goto(f"{site.server.url}/messages/{held['eventId']}")
    expect(page.locator("#message-key")).to_have_text(f"emea<b>/{held['eventId']}")
    expect(page.locator("#message-body")).to_contain_text('"custom_region": "emea<b>"')


# -- item 2 ----------------------------------------------------------------------------------


def test_renaming_a_destination_keeps_amp_yaml_routing_to_it(
    site: Site, s3_server: S3Server, bucket: str, page: Page, shot: Shots
) -> None:
    """Was: the rename was accepted and every routed message refused with 422."""
    api_key, client = site.project("rename")
    created = client.create_destination(**destination_fields(s3_server, bucket, DESTINATION))
    client.put_manifest(PAGE_AMP_YAML)
    sign_in(page, site.server.url, api_key)

    card = page.locator(f"#dest-{created['id']}")
    expect(card.locator(".route-list")).to_contain_text("salesforceToS3 read account")
    card.get_by_role("link", name="Edit").click()
    expect(page.locator("#name-help")).to_contain_text("renaming rewrites those routes")
    page.get_by_label("Destination name").fill("warehouse")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Destination warehouse saved.")).to_be_visible()
    expect(page.locator(".flash-warning")).to_contain_text("amp.yaml now routes")
    card = page.locator(f"#dest-{created['id']}")
    expect(card.locator(".route-list li")).to_have_count(2)
    shot(page, "15-destination-routes")

    page.get_by_role("navigation").get_by_role("link", name="Manifest").click()
    expect(page.locator("table.data")).to_contain_text("warehouse")
    message = contact_message("x", objectName="account", provider="salesforce")
    del message["destination"]
    routed = httpx.post(
        f"{site.server.url}/v1/messages",
        headers={"Authorization": f"Bearer {api_key}"},
        json={**message, "integration": "salesforceToS3"},
    )
    assert routed.status_code == 202, routed.text
    assert routed.json()["accepted"][0]["destinationId"] == created["id"]


# -- item 3 and 7 ----------------------------------------------------------------------------


def test_a_new_destination_is_untested_until_a_connection_test_passes(
    site: Site, s3_server: S3Server, bucket: str, page: Page, shot: Shots
) -> None:
    """Was: a new destination's badge said HEALTHY before anything had written to it."""
    api_key, client = site.project("untested")
    created = client.create_destination(**destination_fields(s3_server, bucket, "fresh"))
    sign_in(page, site.server.url, api_key)
    card = page.locator(f"#dest-{created['id']}")
    badge = card.locator(".badge")
    expect(badge).to_have_text("Untested")
    expect(badge).to_have_attribute("data-status", "untested")
    expect(card).to_contain_text("Not tested yet: run Test connection")
    # The card's stripe says it too (it was healthy's green beside the Untested badge).
    assert _stripe_and_badge(card) == ("rgb(138, 90, 0)",) * 2
    shot(page, "19-untested-destination")

    card.get_by_role("button", name="Test connection").click()
    expect(card.locator(".test-result")).to_contain_text("Connection OK")
    expect(badge).to_have_text("Healthy")  # the result's status, without a reload
    expect(card).not_to_contain_text("Not tested yet")
    page.reload()
    expect(page.locator(f"#dest-{created['id']} .badge")).to_have_text("Healthy")
    assert _stripe_and_badge(card) == ("rgb(29, 122, 70)",) * 2
    assert client.destination("fresh")["status"] == "healthy"


def _stripe_and_badge(card: Locator) -> tuple[str, str]:
    """The computed colours of a destination card's left stripe and of its badge's text."""
    stripe: str = card.evaluate("el => getComputedStyle(el).borderLeftColor")
    badge: str = card.locator(".badge").evaluate("el => getComputedStyle(el).color")
    return stripe, badge


def test_status_follows_a_failed_and_a_passing_connection_test(
    site: Site, s3_server: S3Server, page: Page, shot: Shots, request: pytest.FixtureRequest
) -> None:
    """Was: a red test result beside a green HEALTHY badge."""
    api_key, client = site.project("status")
    missing = f"s3dest-later-{uuid.uuid4().hex[:12]}"
    creds = s3_server.putonly_user(missing)
    created = client.create_destination(
        **destination_fields(s3_server, missing, "lake", creds=creds)
    )
    receiver = WebhookReceiver()  # told of failing and recovered (issue 15)
    request.addfinalizer(lambda: receiver.__exit__(None, None, None))
    hooked = httpx.post(
        f"{site.server.url}/v1/webhooks",
        headers={"Authorization": f"Bearer {api_key}"},
        json={"url": receiver.url, "description": "the on-call pager"},
    )
    assert hooked.status_code == 201, hooked.text
    receiver.secret = hooked.json()["secret"]
    sign_in(page, site.server.url, api_key)
    card = page.locator(f"#dest-{created['id']}")
    card.get_by_role("button", name="Test connection").click()
    expect(card.locator(".test-result")).to_contain_text("does not exist")
    expect(card.locator(".badge")).to_have_text("Failing")
    held = [client.send(contact_message("lake")) for _ in range(2)]
    for accepted in held:
        wait_for_state(client, accepted["eventId"], "held")
    page.reload()
    expect(card.locator(".badge")).to_have_text("Failing")
    expect(card.locator(".diagnosis")).to_contain_text("does not exist")
    shot(page, "16-status-after-failed-test")

    # The Failing table says the diagnosis once for the destination, not on every row.
    page.goto(f"{site.server.url}/deliveries")
    rows = page.locator("#failing-table tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator(f"[data-diagnosis-of='{created['id']}']")).to_contain_text("does not exist")
    for row in (rows.nth(0), rows.nth(1)):
        expect(row.locator("td[data-repeat]")).to_have_text("lake's diagnosis, above")
    section = page.locator("section", has=page.locator("#failing-table"))
    assert section.inner_text().count("does not exist") == 1
    shot(page, "17-deliveries-failing")

    s3_server.create_bucket(missing)
    page.goto(f"{site.server.url}/destinations")
    card.get_by_role("button", name="Test connection").click()
    expect(card.locator(".test-result")).to_contain_text("Connection OK")
    expect(card.locator(".test-result")).to_contain_text("may be deleted")
    expect(card.locator(".badge")).to_have_text("Healthy")
    for accepted in held:
        wait_for_state(client, accepted["eventId"], "delivered")

    # The Webhooks page shows both announcements delivered to the endpoint.
    announced = ["destination.failing", "destination.recovered"]
    wait_until(lambda: [e["type"] for e in receiver.events()] == announced, 60, "both events")
    page.goto(f"{site.server.url}/webhooks")
    hook = page.locator(f"#webhook-{hooked.json()['id']}")
    for event in announced:
        expect(hook.locator(".delivery-delivered", has_text=event)).to_be_visible()
    shot(page, "21-webhooks")


def test_the_webhooks_form_subscribes_an_endpoint_to_the_daily_summary(
    site: Site, page: Page, request: pytest.FixtureRequest
) -> None:
    """Issue 16: summary.daily is offered beside the three changes, unticked (opt-in)."""
    api_key, client = site.project("summary")
    receiver = WebhookReceiver()
    request.addfinalizer(lambda: receiver.__exit__(None, None, None))
    sign_in(page, site.server.url, api_key)
    page.goto(f"{site.server.url}/webhooks")
    boxes = {
        event: page.get_by_role("checkbox", name=event)
        for event in ("destination.failing", "destination.recovered", "message.parked")
    }
    summary = page.get_by_role("checkbox", name="summary.daily")
    for box in boxes.values():
        expect(box).to_be_checked()
    expect(summary).not_to_be_checked()
    page.get_by_label("URL").fill(receiver.url)
    summary.check()
    boxes["message.parked"].uncheck()
    page.get_by_role("button", name="Add webhook").click()
    expect(page.locator("#new-webhook-secret")).to_contain_text("whsec_")
    [hook] = httpx.get(
        f"{site.server.url}/v1/webhooks", headers={"Authorization": f"Bearer {api_key}"}
    ).json()["webhooks"]
    assert hook["events"] == ["destination.failing", "destination.recovered", "summary.daily"]
    expect(page.locator(f"#webhook-{hook['id']}")).to_contain_text("summary.daily")
    client.close()


def test_test_before_saving_uses_the_forms_values(
    site: Site, s3_server: S3Server, bucket: str, page: Page, shot: Shots
) -> None:
    """Was: no test before saving, and Edit's test used the saved settings."""
    api_key, client = site.project("draft")
    good = destination_fields(s3_server, bucket, "drafted")
    sign_in(page, site.server.url, api_key)
    page.goto(f"{site.server.url}/destinations/new")
    for label, name in (
        ("Destination name", "name"),
        ("Bucket", "bucket"),
        ("Region", "region"),
        ("Endpoint URL", "endpointUrl"),
        ("AWS Access Key ID", "accessKeyId"),
    ):
        page.get_by_label(label).fill(good[name])
    page.get_by_label("AWS Secret Access Key").fill(EXAMPLE_SECRET)
    result = page.locator("#draft-test-result")
    page.get_by_role("button", name="Test these settings").click()
    expect(result).to_contain_text("Connection failed with these settings")
    expect(result).to_contain_text("secret access key does not belong")
    assert client.destinations() == []
    page.get_by_label("AWS Secret Access Key").fill(good["secretAccessKey"])
    page.get_by_role("button", name="Test these settings").click()
    expect(result).to_contain_text("Connection OK with these settings")
    assert good["secretAccessKey"] not in page.content()
    shot(page, "18-test-before-save")
    page.get_by_role("button", name="Create destination").click()
    expect(page.get_by_text("Destination drafted created.")).to_be_visible()

    # Editing: a blank secret is the saved one; a typed one is tested, not saved.
    page.goto(f"{site.server.url}/destinations/drafted/edit")
    expect(page.get_by_role("heading", name="Set up on AWS")).to_be_visible()
    shot(page, "22-destination-edit")
    page.get_by_role("button", name="Test these settings").click()
    expect(result).to_contain_text("Connection OK with these settings")
    page.get_by_label("AWS Secret Access Key").fill(EXAMPLE_SECRET)
    page.get_by_role("button", name="Test these settings").click()
    expect(result).to_contain_text("Connection failed with these settings")
    # Tests of the form's values are no evidence about the saved destination (issue 15).
    assert client.destination("drafted")["status"] == "untested"


# -- item 10 ---------------------------------------------------------------------------------

# What sticks out, for the failure message.
_WIDE = """() => Array.from(document.querySelectorAll('body *'))
  .filter(el => el.getBoundingClientRect().right > window.innerWidth + 0.5)
  .slice(0, 8).map(el => el.tagName + '.' + el.className)"""
# Text fields without the dashboard's field style (the browser's bare box: Add a key's Name
# and a webhook's Description had no type, which app.css did not style).
_UNSTYLED = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => el.offsetParent !== null && !['hidden', 'checkbox', 'radio', 'file']
    .includes(el.type))
  .filter(el => getComputedStyle(el).borderTopLeftRadius !== '6px').map(el => el.id)"""
# A destination's state counts scrolled sideways, "delivered" out of view.
_CLIPPED_COUNTS = """() => Array.from(document.querySelectorAll('table.counts'))
  .filter(t => t.offsetParent !== null && t.scrollWidth > t.clientWidth + 1)
  .map(t => t.closest('[id]').id)"""
# Keys squeezed to one character a line: a key box narrower than a few characters.
_SQUEEZED = """() => Array.from(document.querySelectorAll('code.key, td.key'))
  .filter(el => el.offsetParent !== null && el.textContent.trim().length > 8)
  .filter(el => el.getBoundingClientRect().width < 120)
  .map(el => el.textContent.trim())"""


def test_every_page_fits_a_375_px_phone_in_local_time_and_dark(
    site: Site, s3_server: S3Server, bucket: str, browser: Browser, shot: Shots
) -> None:
    """Was: pages wider than the screen, keys one character a line, UTC-only times."""
    api_key, client = site.project("mobile")
    created = client.create_destination(
        **destination_fields(
            s3_server,
            bucket,
            DESTINATION,
            keyTemplate="join('/', [metadata.objectName, time.date, metadata.\"event-id\"])",
        )
    )
    client.put_manifest(PAGE_AMP_YAML)
    event_id = client.send(contact_message(DESTINATION))["eventId"]
    wait_for_state(client, event_id, "delivered")
    client.create_destination(
        **{**destination_fields(s3_server, bucket, "broken"), "secretAccessKey": EXAMPLE_SECRET}
    )
    client.test_destination("broken")  # failing: its diagnosis and checklist show

    for scheme in ("light", "dark"):
        context = browser.new_context(
            viewport={"width": 375, "height": 812},
            color_scheme=scheme,
            timezone_id="Australia/Brisbane",
            locale="en-AU",
        )
        context.set_default_timeout(TIMEOUT_MS)
        phone = context.new_page()
        try:
            sign_in(phone, site.server.url, api_key)
            pages = (
                "/destinations",
                "/destinations/new",
                f"/destinations/{created['id']}/edit",
                "/deliveries",
                f"/messages/{event_id}",
                "/manifest",
                "/webhooks",
                "/keys",
                "/audit",  # last: its times are checked below
            )
            # Dark changes colours only: its layout is checked on the widest page.
            for path in pages if scheme == "light" else pages[:1]:
                phone.goto(site.server.url + path)
                assert phone.evaluate(OVERFLOW) <= 0, (scheme, path, phone.evaluate(_WIDE))
                assert phone.evaluate(_SQUEEZED) == [], (scheme, path)
                assert phone.evaluate(_UNSTYLED) == [], (scheme, path)
                assert phone.evaluate(_CLIPPED_COUNTS) == [], (scheme, path)
                if scheme == "light" and path in ("/destinations", f"/messages/{event_id}"):
                    name = "destinations" if path == "/destinations" else "message"
                    shot(phone, f"19-mobile-{name}")
            accepted = phone.locator("time[data-local]").first
            expect(accepted).to_have_text(re.compile(r"AEST"))  # Brisbane, not UTC
            assert "UTC" in (accepted.get_attribute("title") or "")
            if scheme == "dark":
                background = phone.evaluate("getComputedStyle(document.body).backgroundColor")
                assert background == "rgb(15, 20, 28)", background
                shot(phone, "20-mobile-destinations-dark")
        finally:
            context.close()
