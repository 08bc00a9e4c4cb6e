"""The deliveries page at scale (issue 15, item 6), in a real browser against a real
`s3dest serve` and moto: page through delivered messages, search by event id and
installation, see the counts follow the filter, re-deliver a message whose object the
customer deleted, watch new deliveries arrive without reloading the page, and read the
activity charts (item 9), also on a 375 px phone in light and dark.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import TIMEOUT_MS, Shots
from tests.browser.helpers import OVERFLOW, chart_problems, sign_in
from tests.support.builders import EXAMPLE_SECRET, create_destination, message
from tests.support.moto_server import S3Server
from tests.support.polling import wait_delivered, wait_for_state, wait_until
from tests.support.s3dest_server import S3destProcess

pytestmark = pytest.mark.browser


def test_page_search_redeliver_and_live_counts(
    s3_server: S3Server,
    bucket: str,
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    page: Page,
    browser: Browser,
    shot: Shots,
) -> None:
    _, api_key = project
    base = s3dest_server.url
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {api_key}"}, timeout=60)
    with api:
        warehouse = create_destination(api, s3_server, bucket, "warehouse")
        create_destination(api, s3_server, bucket, "archive")
        sent = api.post(
            "/v1/messages",
            json={
                "messages": [
                    message(n, "warehouse", installationId=f"inst-{n % 2}") for n in range(7)
                ]
            },
        )
        other = api.post("/v1/messages", json=message(99, "archive", installationId="inst-a"))
        assert sent.status_code == 202 and other.status_code == 202, sent.text
        ids = [a["eventId"] for a in sent.json()["accepted"]]
        records = wait_delivered(api, [*ids, other.json()["accepted"][0]["eventId"]])

        sign_in(page, base, api_key)
        # Filtering one destination scopes the counts (and their table) to it.
        page.goto(f"{base}/deliveries?destination={warehouse['id']}")
        counts = page.locator(f"#counts-{warehouse['id']}")
        expect(counts.locator("td[data-state=delivered]")).to_have_text("7")
        expect(page.locator("table.counts-table tbody tr")).to_have_count(1)

        # Every delivered message, three a page: the pages hold each once, newest first.
        page.locator("#filter-state").select_option("delivered")
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_text("Showing 7 of 7")).to_be_visible()  # one page of 50
        page.goto(f"{base}/deliveries?destination={warehouse['id']}&state=delivered&limit=3")
        seen: list[str] = []
        for expected in (3, 3, 1):
            rows = page.locator("#filtered-table tbody tr")
            expect(rows).to_have_count(expected)
            expect(page.get_by_text(f"Showing {expected} of 7")).to_be_visible()
            seen += [rows.nth(i).get_attribute("data-event-id") or "" for i in range(expected)]
            if len(seen) < 7:
                page.get_by_role("link", name="Next page »").click()
        expect(page.get_by_text("(last page)")).to_be_visible()
        assert seen == sorted(ids, reverse=True)

        # Search by installation, then by one event id.
        page.goto(f"{base}/deliveries")
        page.get_by_label("Installation").fill("inst-1")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#filtered-table tbody tr")).to_have_count(3)
        page.get_by_label("Installation").fill("")
        page.get_by_label("Event id").fill(ids[4])
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#filtered-table tbody tr")).to_have_count(1)
        expect(page.locator(f"#filtered-table tr[data-event-id='{ids[4]}']")).to_contain_text(
            records[4]["key"]
        )
        # The results fit a desktop's window: Re-deliver was cut off behind a sideways scroll
        # (an empty Last error kept 14rem, sizes wrapped "432 / B").
        hidden = "t => t.parentElement.scrollWidth - t.parentElement.clientWidth"
        assert page.locator("#filtered-table").evaluate(hidden) <= 0
        shot(page, "deliveries-search")

        # The customer deleted two objects; tick them and re-deliver.
        lost = [records[1]["key"], records[2]["key"]]
        for key in lost:
            s3_server.client().delete_object(Bucket=bucket, Key=key)
        page.goto(f"{base}/deliveries?state=delivered&installationId=inst-0")
        page.get_by_label("Auto-refresh").uncheck()
        page.get_by_label(f"Select {ids[2]}").check()
        page.get_by_role("button", name="Re-deliver selected").click()
        expect(page.get_by_text("1 message(s) queued to be written again")).to_be_visible()
        page.goto(f"{base}/deliveries?eventId={ids[1]}")
        page.get_by_role("button", name=f"Re-deliver message {ids[1]}").click()
        expect(page.get_by_text("1 message(s) queued to be written again")).to_be_visible()

        def restored() -> bool:
            listed = s3_server.client().list_objects_v2(Bucket=bucket).get("Contents", [])
            return set(lost) <= {o["Key"] for o in listed}

        wait_until(restored, 60, "the deleted objects to be written again")
        for event_id in (ids[1], ids[2]):
            again = wait_delivered(api, [event_id])[0]
            assert again["attempts"] == 2
        audit = api.get("/v1/audit").json()["entries"]
        assert [e["action"] for e in audit].count("deliveries.redelivered") == 2

        # Live: a new message shows up in the counts without a reload of the page.
        page.goto(f"{base}/deliveries")
        page.evaluate("window.__sameDocument = true")
        expect(counts.locator("td[data-state=delivered]")).to_have_text("7")
        fresh = api.post("/v1/messages", json=message(100, "warehouse"))
        wait_delivered(api, [fresh.json()["accepted"][0]["eventId"]])
        expect(counts.locator("td[data-state=delivered]")).to_have_text("8")
        assert page.evaluate("window.__sameDocument") is True
        expect(page.locator("#refreshed")).to_have_text(re.compile(r"^updated "))

        # Item 9: the charts show the traffic (server-rendered SVG, refreshed with the rest).
        delivered = page.locator("#chart-delivered")
        expect(delivered).to_have_attribute(
            "aria-label", re.compile(r"^Delivered per minute, last hour: 9 in all")
        )
        expect(delivered.locator("rect[data-count]").first).to_be_visible()
        expect(page.locator("#chart-latency polyline[data-series=p50]")).to_have_count(1)
        expect(page.locator("#chart-errors")).to_have_attribute(
            "aria-label", re.compile(r"Failed attempts per destination, last hour: 0 in all")
        )
        shot(page, "deliveries")
        page.get_by_role("link", name="Last day").click()
        expect(page.locator("#chart-delivered")).to_have_attribute(
            "aria-label", re.compile(r"^Delivered per 15 minutes, last day: 9 in all")
        )

        # The charts on a 375 px phone, light and dark, with a failed attempt drawn too:
        # nothing wider than the screen, the charts full width, every label legible (big
        # enough, inside its chart, apart from the others) and every colour readable on
        # the card (computed contrast), each series colour included.
        broken = create_destination(
            api, s3_server, bucket, "broken", secretAccessKey=EXAMPLE_SECRET
        )
        held = api.post("/v1/messages", json=message(101, "broken")).json()["accepted"][0]
        wait_for_state(api, held["eventId"], "held")
        for scheme in ("light", "dark"):
            context = browser.new_context(
                viewport={"width": 375, "height": 812}, color_scheme=scheme, locale="en-US"
            )
            context.set_default_timeout(TIMEOUT_MS)
            phone = context.new_page()
            try:
                sign_in(phone, base, api_key)
                phone.goto(f"{base}/deliveries")
                expect(phone.locator("#chart-errors")).to_have_attribute(
                    "aria-label", re.compile(r"last hour: [1-9]\d* in all")
                )
                expect(phone.locator(".legend")).to_contain_text(broken["name"])
                assert phone.evaluate(OVERFLOW) <= 0, (scheme, phone.evaluate(OVERFLOW))
                assert chart_problems(phone) == [], scheme
                phone.locator("#activity").scroll_into_view_if_needed()
                shot(phone, f"mobile-charts-{scheme}", full_page=False)
            finally:
                context.close()
