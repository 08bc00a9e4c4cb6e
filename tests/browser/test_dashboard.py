"""The dashboard, driven in a real browser against a real `s3dest serve` and moto S3.

Each test signs in with a project API key and does what a person would do: create a
destination through the form, watch the key preview, test the connection, follow the
troubleshooting checklist of a failing destination, watch deliveries, replay a parked
message, upload amp.yaml. Screenshots of every page land in test-output/screenshots/.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Shots
from tests.browser.helpers import sign_in
from tests.support.builders import contact_message, destination_fields
from tests.support.moto_server import S3Server
from tests.support.polling import wait_for_state, wait_until
from tests.support.s3dest_server import S3destEnv, S3destProcess
from tests.support.samples import DESTINATION, PAGE_AMP_YAML
from tests.support.shared_server import shared_server_fixtures

# one server (SQLite, as the other browser tests) for the module; each test has a project of its own
s3dest_env, s3dest_server = shared_server_fixtures(("sqlite",))

pytestmark = pytest.mark.browser

WRONG_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


# -- sign-in -------------------------------------------------------------------------------


def test_sign_in_and_sign_out(
    s3dest_server: S3destProcess, project: tuple[str, str], page: Page, shot: Shots
) -> None:
    _, api_key = project
    base = s3dest_server.url

    # Every page needs a session: a visitor lands on the sign-in page.
    page.goto(f"{base}/deliveries")
    expect(page).to_have_url(re.compile(r"/signin\?next=%2Fdeliveries$"))
    expect(page.get_by_role("heading", name="Sign in to s3dest")).to_be_visible()
    shot(page, "01-sign-in")

    page.get_by_label("API key").fill("s3d_not-a-real-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")

    # Sign in with the keyboard only, and land where we were going.
    page.get_by_label("API key").fill(api_key)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/deliveries")
    expect(page.get_by_text("Project test")).to_be_visible()

    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["s3dest_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] in ("Lax", "Strict")
    assert api_key not in session["value"]
    assert api_key[4:] not in session["value"]

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{base}/signin")
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    assert "s3dest_session" not in {c["name"] for c in page.context.cookies()}

    # The old cookie is dead too, not just forgotten by the browser.
    page.context.add_cookies([session])
    page.goto(f"{base}/destinations")
    expect(page).to_have_url(re.compile(r"/signin"))


# -- destinations --------------------------------------------------------------------------


def test_create_destination_through_the_form(
    s3_server: S3Server,
    bucket: str,
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    page: Page,
    shot: Shots,
) -> None:
    _, api_key = project
    client = s3dest_server.client(api_key)
    creds = s3_server.putonly_user(bucket)
    sign_in(page, s3dest_server.url, api_key)

    expect(page.get_by_text("No destinations yet")).to_be_visible()
    page.get_by_role("link", name="New destination").click()
    expect(page.get_by_role("heading", name="New S3 destination")).to_be_visible()

    page.get_by_label("Destination name").fill("ampersandS3Bucket")
    page.get_by_label("Bucket").fill(bucket)
    page.get_by_label("Region").fill(s3_server.region)
    page.get_by_label("Endpoint URL").fill(s3_server.endpoint)
    page.get_by_label("AWS Access Key ID").fill(creds.access_key_id)
    page.get_by_label("AWS Secret Access Key").fill(creds.secret_access_key)
    page.get_by_label("Storage class").select_option("STANDARD_IA")
    page.get_by_label("Write mode").select_option("create-only")

    # The preview follows the template as it is typed.
    template = page.get_by_label("Object key template")
    preview_read = page.locator("#preview-read")
    preview_subscribe = page.locator("#preview-subscribe")
    expect(preview_read).to_have_text(
        "2025-10-14T02:58:59.323405308Z_0199e0a8-149d-7ee9-9f50-0514403517f9.json"
    )
    template.fill("join('/', [metadata.objectName, metadata.\"event-id\"])")
    expect(preview_read).to_have_text(re.compile(r"^contacts/[0-9a-f-]{36}$"))
    expect(preview_subscribe).to_have_text(re.compile(r"^company/[0-9a-f-]{36}$"))
    expect(page.locator("#preview-warnings-box")).to_be_hidden()
    template.fill("metadata.objectName")
    expect(preview_read).to_have_text("contacts")
    expect(page.locator("#preview-warnings")).to_contain_text("neither")
    template.press_sequentially(" | to_number(@)")  # typed key by key, debounced
    expect(preview_read).to_have_text("—")
    expect(page.locator("#preview-error")).to_contain_text("does not render")

    # A broken template: the error shows inline, and nothing is saved.
    template.fill("join('/', [metadata.objectName")
    expect(page.locator("#preview-error")).to_contain_text("not a valid JMESPath expression")
    page.get_by_role("button", name="Create destination").click()
    expect(page.locator("#error-summary")).to_contain_text("Nothing was saved")
    expect(page.locator("#keyTemplate-error")).to_contain_text("not a valid JMESPath expression")
    expect(page.get_by_label("Object key template")).to_have_attribute("aria-invalid", "true")
    assert client.destinations() == []
    # What was typed is kept, except the secret, which is never sent back to the browser.
    expect(page.get_by_label("Bucket")).to_have_value(bucket)
    expect(page.get_by_label("Storage class")).to_have_value("STANDARD_IA")
    expect(page.get_by_label("AWS Secret Access Key")).to_have_value("")
    assert creds.secret_access_key not in page.content()

    page.get_by_label("Object key template").fill(
        "join('/', [metadata.objectName, time.date, metadata.\"event-id\"])"
    )
    expect(preview_read).to_have_text(re.compile(r"^contacts/2025-10-14/[0-9a-f-]{36}$"))
    page.get_by_label("AWS Secret Access Key").fill(creds.secret_access_key)
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "02-destination-form")
    page.get_by_role("button", name="Create destination").click()

    expect(page.get_by_text("Destination ampersandS3Bucket created.")).to_be_visible()
    (saved,) = client.destinations()
    assert saved["bucket"] == bucket
    assert saved["endpointUrl"] == s3_server.endpoint
    assert saved["storageClass"] == "STANDARD_IA"
    assert saved["writeMode"] == "create-only"
    card = page.locator(f"#dest-{saved['id']}")
    expect(card.locator(".badge")).to_have_text("Untested")  # nothing has written to it yet
    expect(card).to_contain_text(bucket)
    assert creds.secret_access_key not in page.content()

    # Test connection: a PutObject with the put-only user.
    card.get_by_role("button", name="Test connection").click()
    result = card.locator(".test-result")
    expect(result).to_contain_text("Connection OK")
    key = re.search(r"s3dest-connection-test/[0-9a-f-]+\.json", result.inner_text())
    assert key, result.inner_text()
    head = s3_server.client().head_object(Bucket=bucket, Key=key.group(0))
    assert head["ContentLength"] > 0
    shot(page, "03-destinations-test-ok")

    # Delete, with a confirmation page first.
    card.get_by_role("link", name="Delete…").click()
    expect(page.get_by_role("heading", name=re.compile("Delete destination"))).to_be_visible()
    assert len(client.destinations()) == 1
    shot(page, "04-delete-confirmation")
    page.get_by_role("button", name="Delete ampersandS3Bucket").click()
    expect(page.get_by_text("Destination ampersandS3Bucket deleted.")).to_be_visible()
    assert client.destinations() == []


def test_wrong_secret_shows_the_diagnosis_and_the_checklist(
    s3_server: S3Server,
    bucket: str,
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    page: Page,
    shot: Shots,
) -> None:
    _, api_key = project
    client = s3dest_server.client(api_key)
    healthy = client.create_destination(
        **destination_fields(
            s3_server,
            bucket,
            name="warehouse",
            keyTemplate="join('/', [metadata.objectName, time.date, metadata.\"event-id\"])",
        )
    )
    good = destination_fields(s3_server, bucket, name="analytics")
    broken = client.create_destination(**{**good, "secretAccessKey": WRONG_SECRET})
    sign_in(page, s3dest_server.url, api_key)

    card = page.locator(f"#dest-{broken['id']}")
    card.get_by_role("button", name="Test connection").click()
    result = card.locator(".test-result")
    expect(result).to_contain_text("Connection failed")
    expect(result).to_contain_text("secret access key does not belong")

    # Deliveries to it fail: it is marked failing, and the checklist appears beside it.
    for _ in range(2):
        client.send(contact_message("warehouse"))
    held = client.send(contact_message("analytics"))
    wait_for_state(client, held["eventId"], "held")
    wait_until(
        lambda: (
            client.deliveries(destination="warehouse", state="delivered", limit=10)
            and len(client.deliveries(destination="warehouse", state="delivered", limit=10)) == 2
        ),
        what="two deliveries to warehouse",
    )
    page.reload()
    card = page.locator(f"#dest-{broken['id']}")
    expect(card.locator(".badge")).to_have_text("Failing")
    expect(card.locator(".diagnosis")).to_contain_text("secret access key does not belong")
    checklist = card.locator("aside.checklist")
    expect(checklist).to_contain_text("Troubleshooting")
    expect(checklist).to_contain_text(bucket)
    expect(checklist).to_contain_text(s3_server.region)
    expect(checklist).to_contain_text(
        f"aws s3api put-object --bucket {bucket} --key ampersand-test.json --body test.json"
    )
    expect(checklist).to_contain_text(f'"Resource": "arn:aws:s3:::{bucket}/*"')
    expect(checklist).to_contain_text('"Action": "s3:PutObject"')
    expect(card.locator("td[data-state=held]")).to_have_text("1")
    healthy_card = page.locator(f"#dest-{healthy['id']}")
    expect(healthy_card.locator(".badge")).to_have_text("Healthy")
    expect(healthy_card.locator("td[data-state=delivered]")).to_have_text("2")
    expect(healthy_card.locator("aside.checklist")).to_have_count(0)
    shot(page, "05-destinations-failing")

    # The deliveries page lists the held message, with the reason.
    page.get_by_role("navigation").get_by_role("link", name="Deliveries").click()
    held_row = page.locator(f"#failing-table tr[data-event-id='{held['eventId']}']")

    def held_row_listed() -> bool:
        # The failing destination's probe re-sends its held message every few seconds; while
        # that PUT is out the message is `delivering` (slow on a loaded machine), and a page
        # rendered then rightly does not list it as held. Reload once it is held again.
        if held_row.count():
            return True
        wait_for_state(client, held["eventId"], "held")
        page.reload()
        return held_row.count() > 0

    wait_until(held_row_listed, what="the held message on the deliveries page")
    expect(held_row).to_contain_text("held")
    expect(held_row).to_contain_text("analytics")
    expect(page.locator(f"#counts-{broken['id']} td[data-state=held]")).to_have_text("1")
    shot(page, "06-deliveries-failing")
    page.goto(f"{s3dest_server.url}/destinations")
    card = page.locator(f"#dest-{broken['id']}")

    # Fix it in the edit form (the access key id is left blank: kept), and the held
    # message goes out.
    card.get_by_role("link", name="Edit").click()
    expect(page.locator("aside, section.checklist").first).to_contain_text("ampersand-test.json")
    page.get_by_label("AWS Secret Access Key").fill(good["secretAccessKey"])
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Destination analytics saved.")).to_be_visible()
    wait_for_state(client, held["eventId"], "delivered")
    page.reload()
    expect(page.locator(f"#dest-{broken['id']} .badge")).to_have_text("Healthy")


# -- deliveries ----------------------------------------------------------------------------


def test_messages_sent_through_the_api_appear_as_delivered(
    s3_server: S3Server,
    bucket: str,
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    page: Page,
    shot: Shots,
) -> None:
    _, api_key = project
    client = s3dest_server.client(api_key)
    destination = client.create_destination(
        **destination_fields(
            s3_server,
            bucket,
            DESTINATION,
            keyTemplate="join('/', [metadata.objectName, time.date, metadata.\"event-id\"])",
        )
    )
    accepted = [client.send(contact_message(DESTINATION)) for _ in range(3)]
    accepted.append(
        client.send(
            contact_message(
                "ampersandS3Bucket",
                action="subscribe",
                provider="salesforce",
                objectName="company",
                result=[
                    {
                        "fields": {"id": "001Dp00000ZDgmxIAD"},
                        "subscribeEventType": "update",
                        "providerEventType": "UPDATE",
                    }
                ],
            )
        )
    )
    records = [wait_for_state(client, a["eventId"], "delivered") for a in accepted]

    sign_in(page, s3dest_server.url, api_key)
    page.get_by_role("navigation").get_by_role("link", name="Deliveries").click()
    expect(page.get_by_role("heading", name="Deliveries")).to_be_visible()
    counts = page.locator(f"#counts-{destination['id']}")
    expect(counts.locator("td[data-state=delivered]")).to_have_text("4")
    recent = page.locator("#recent-table")
    for record in records:
        row = recent.locator(f"tr[data-event-id='{record['eventId']}']")
        expect(row).to_contain_text(record["key"])
        cells = row.locator("td")
        expect(cells.nth(3)).to_have_text(re.compile(r"^\d+(\.\d+)? (ms|s)$"))  # latency
        expect(cells.nth(4)).to_have_text("1")  # attempts
    shot(page, "07-deliveries")

    # One message: its metadata, key and attempts.
    first = records[0]
    recent.get_by_role("link", name=first["key"]).click()
    expect(page.locator("#message-state")).to_have_text("delivered")
    expect(page.locator("#message-key")).to_have_text(first["key"])
    expect(page.locator("#attempts-table tbody tr")).to_have_count(1)
    expect(page.locator("#attempts-table")).to_contain_text("delivered")
    expect(page.get_by_text(first["eventId"]).first).to_be_visible()
    shot(page, "08-message")
    body = s3_server.client().get_object(Bucket=bucket, Key=first["key"])["Body"].read()
    assert b'"installationId"' in body


def test_parked_message_is_replayed_from_the_page(
    s3_server: S3Server,
    bucket: str,
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    page: Page,
    shot: Shots,
) -> None:
    _, api_key = project
    client = s3dest_server.client(api_key)
    destination = client.create_destination(
        **destination_fields(
            s3_server,
            bucket,
            DESTINATION,
            keyTemplate="join('/', [data.groupRef, metadata.\"event-id\"])",
        )
    )
    sent = [client.send(contact_message(DESTINATION, groupRef=g)) for g in ("acme", "globex")]
    parked = client.send(contact_message(DESTINATION, groupRef=None, groupName=None))
    sent.append(client.send(contact_message(DESTINATION, objectName="companies")))
    # A second destination, with a wrong secret, holds its message meanwhile.
    archive = destination_fields(s3_server, bucket, name="archive")
    broken = client.create_destination(**{**archive, "secretAccessKey": WRONG_SECRET})
    held = client.send(contact_message("archive"))
    for accepted in sent:
        wait_for_state(client, accepted["eventId"], "delivered")
    wait_for_state(client, held["eventId"], "held")
    record = wait_for_state(client, parked["eventId"], "parked")
    assert "groupRef" in (record["lastError"] or "")

    sign_in(page, s3dest_server.url, api_key)
    page.goto(f"{s3dest_server.url}/deliveries")
    row = page.locator(f"#parked-table tr[data-event-id='{parked['eventId']}']")
    expect(row).to_contain_text("groupRef")
    # The destination's diagnosis once, above its held messages (issue 15 item 7).
    expect(page.locator(f"[data-diagnosis-of='{broken['id']}']")).to_contain_text(
        "secret access key does not belong"
    )
    expect(page.locator(f"#failing-table tr[data-event-id='{held['eventId']}']")).to_contain_text(
        "archive's diagnosis, above"
    )
    expect(
        page.get_by_role("button", name="Replay all parked messages of ampersandS3Bucket (1)")
    ).to_be_visible()
    shot(page, "09-deliveries-parked")

    # Replaying before fixing the template parks it again (and says why).
    # Fix the template first, as the page suggests, then replay that one message.
    page.goto(f"{s3dest_server.url}/destinations/{destination['id']}/edit")
    page.get_by_label("Object key template").fill(
        "join('/', [data.groupRef || 'no-group', metadata.\"event-id\"])"
    )
    expect(page.locator("#preview-read")).to_have_text(re.compile(r"^group-id-1/"))
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Destination ampersandS3Bucket saved.")).to_be_visible()

    page.get_by_role("navigation").get_by_role("link", name="Deliveries").click()
    page.locator(f"#parked-table tr[data-event-id='{parked['eventId']}']").get_by_role(
        "button", name="Replay"
    ).click()
    expect(page.get_by_text(f"Message {parked['eventId']} queued again.")).to_be_visible()
    delivered = wait_for_state(client, parked["eventId"], "delivered")
    assert delivered["key"] == f"no-group/{parked['eventId']}"
    page.reload()
    expect(page.locator(f"#recent-table tr[data-event-id='{parked['eventId']}']")).to_contain_text(
        f"no-group/{parked['eventId']}"
    )
    expect(page.locator("#parked-table")).to_have_count(0)
    head = s3_server.client().head_object(Bucket=bucket, Key=delivered["key"])
    assert head["ContentLength"] > 0

    page.get_by_role("link", name=f"no-group/{parked['eventId']}").click()
    expect(page.locator("#attempts-table tbody tr")).to_have_count(2)
    expect(page.locator("#attempts-table")).to_contain_text("parked")
    expect(page.locator("#attempts-table")).to_contain_text("delivered")


# -- security ------------------------------------------------------------------------------


def test_a_form_post_without_the_csrf_token_is_refused(
    s3_server: S3Server,
    bucket: str,
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    page: Page,
    shot: Shots,
) -> None:
    _, api_key = project
    base = s3dest_server.url
    client = s3dest_server.client(api_key)
    fields = destination_fields(s3_server, bucket, DESTINATION)

    # Every dashboard POST route, sign-in included, refuses a missing or forged token over
    # plain HTTP: tests/security/test_dashboard_routes.py (enumerated from the route table).
    sign_in(page, base, api_key)

    # In the page: a form whose token was removed is refused with a clear page.
    page.goto(f"{base}/destinations/new")
    for name in ("name", "bucket", "region", "accessKeyId", "secretAccessKey", "endpointUrl"):
        page.locator(f"#{name}").fill(fields[name])
    page.locator("#destination-form input[name=csrf_token]").evaluate("el => el.remove()")
    page.get_by_role("button", name="Create destination").click()
    expect(page.get_by_role("heading", name=re.compile("Form refused"))).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("security token")
    shot(page, "10-csrf-refused")
    assert client.destinations() == []

    # Still signed in: the refused form did not end the session.
    page.goto(f"{base}/destinations")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_other_projects_are_invisible(
    s3_server: S3Server,
    bucket: str,
    s3dest_env: S3destEnv,
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    page: Page,
) -> None:
    _, api_key = project
    _, other_key = s3dest_env.create_project("other")
    other = s3dest_server.client(other_key)
    theirs = other.create_destination(**destination_fields(s3_server, bucket, name="theirs"))
    their_message = other.send(contact_message("theirs"))
    base = s3dest_server.url

    sign_in(page, base, api_key)
    expect(page.get_by_text("No destinations yet")).to_be_visible()
    for path in (
        f"/destinations/{theirs['id']}/edit",
        f"/destinations/{theirs['id']}/delete",
        "/destinations/theirs/edit",
        f"/messages/{their_message['eventId']}",
        f"/deliveries?destination={theirs['id']}",
    ):
        response = page.goto(base + path)
        assert response is not None and response.status == 404, path
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    token = page.locator("body").get_attribute("data-csrf")
    for path in (
        f"/destinations/{theirs['id']}/replay",
        f"/destinations/{theirs['id']}/delete",
        f"/messages/{their_message['eventId']}/replay",
    ):
        response = page.request.post(base + path, form={"csrf_token": token or ""}, max_redirects=0)
        assert response.status == 404, path
    assert [d["name"] for d in other.destinations()] == ["theirs"]


# -- manifest ------------------------------------------------------------------------------

BAD_MANIFEST = """\
specVersion: 1.0.0
integrations:
  - name: salesforceToS3
    displayName: Salesforce to S3
    provider: salesforce
    read:
      objects:
        - objectName: account
          destinaton: ampersandS3Bucket
        - objectName: contact
          destination: nowhere
"""

GOOD_MANIFEST = PAGE_AMP_YAML


def test_manifest_upload_shows_errors_by_line(
    s3_server: S3Server,
    bucket: str,
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    page: Page,
    shot: Shots,
    tmp_path: Path,
) -> None:
    _, api_key = project
    client = s3dest_server.client(api_key)
    client.create_destination(**destination_fields(s3_server, bucket, DESTINATION))
    sign_in(page, s3dest_server.url, api_key)
    page.get_by_role("navigation").get_by_role("link", name="Manifest").click()
    expect(page.get_by_text("This project has no amp.yaml yet")).to_be_visible()

    page.get_by_label("amp.yaml", exact=True).fill(BAD_MANIFEST)
    page.get_by_role("button", name="Validate and save").click()
    errors = page.locator("#manifest-errors")
    expect(errors).to_contain_text("was not saved")
    expect(errors).to_contain_text("line 8, column 11")
    expect(errors).to_contain_text("missing required key 'destination'")
    expect(errors).to_contain_text("line 9, column 11")
    expect(errors).to_contain_text("unknown key 'destinaton'")
    expect(page.locator("ol.source li.bad")).to_have_count(2)
    expect(page.locator("#L9")).to_have_class(re.compile("bad"))
    expect(page.locator("#L9")).to_contain_text("did you mean 'destination'?")
    expect(page.get_by_label("amp.yaml", exact=True)).to_have_value(BAD_MANIFEST)
    shot(page, "11-manifest-errors")

    # Fixed syntax, but a destination that does not exist: still refused, by line.
    page.get_by_label("amp.yaml", exact=True).fill(
        BAD_MANIFEST.replace("destinaton", "destination")
    )
    page.get_by_role("button", name="Validate and save").click()
    expect(errors).to_contain_text("line 11")
    expect(errors).to_contain_text("'nowhere' does not exist")
    expect(page.locator("#L11")).to_have_class(re.compile("bad"))
    assert (
        httpx.get(
            f"{s3dest_server.url}/v1/manifest", headers={"Authorization": f"Bearer {api_key}"}
        ).status_code
        == 404
    )

    path = tmp_path / "amp.yaml"
    path.write_text(GOOD_MANIFEST)
    page.get_by_label("…or upload a file").set_input_files(str(path))
    expect(page.get_by_label("amp.yaml", exact=True)).to_have_value(GOOD_MANIFEST)
    page.get_by_role("button", name="Validate and save").click()
    expect(page.get_by_text("amp.yaml saved (1 integration).")).to_be_visible()
    expect(page.locator("table.data")).to_contain_text("account")
    expect(page.locator("table.data")).to_contain_text("ampersandS3Bucket")
    shot(page, "12-manifest")
    saved = httpx.get(
        f"{s3dest_server.url}/v1/manifest", headers={"Authorization": f"Bearer {api_key}"}
    )
    assert saved.text == GOOD_MANIFEST


# -- accessibility -------------------------------------------------------------------------

_UNLABELLED = """
() => Array.from(document.querySelectorAll('input, select, textarea, button'))
  .filter(el => el.type !== 'hidden')
  .filter(el => {
    if (el.tagName === 'BUTTON') return !(el.innerText.trim() || el.getAttribute('aria-label'));
    return !((el.labels && el.labels.length) || el.getAttribute('aria-label'));
  })
  .map(el => el.outerHTML)
"""


def test_every_control_is_labelled_and_reachable_by_keyboard(
    s3_server: S3Server,
    bucket: str,
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    page: Page,
) -> None:
    _, api_key = project
    client = s3dest_server.client(api_key)
    destination = client.create_destination(**destination_fields(s3_server, bucket, DESTINATION))
    client.send(contact_message(DESTINATION))
    base = s3dest_server.url
    page.goto(f"{base}/signin")
    assert page.evaluate(_UNLABELLED) == []
    sign_in(page, base, api_key)
    for path in (
        "/destinations",
        "/destinations/new",
        f"/destinations/{destination['id']}/edit",
        f"/destinations/{destination['id']}/delete",
        "/deliveries",
        "/manifest",
    ):
        page.goto(base + path)
        assert page.evaluate(_UNLABELLED) == [], path

    # Tab from the top of the form reaches every field, in order, then the submit button.
    page.goto(f"{base}/destinations/new")
    page.get_by_label("Destination name").focus()
    seen = []
    for _ in range(30):
        seen.append(
            page.evaluate("document.activeElement.id || document.activeElement.textContent")
        )
        if "Create destination" in seen[-1]:
            break
        page.keyboard.press("Tab")
    assert seen[:5] == ["name", "bucket", "region", "endpointUrl", "accessKeyId"]
    assert "keyTemplate" in seen and "storageClass" in seen and "writeMode" in seen
    assert "Create destination" in seen[-1]
