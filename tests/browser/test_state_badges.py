"""Every delivery state's badge on the dashboard, in a real browser, light and dark: each
state has colours of its own rule (a state added to MessageState without one showed the
plain grey badge: batching and batched did) and its text is readable on them (WCAG 2.1
1.4.3: 4.5:1), as computed by the browser from app.css."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from s3dest.store.queue.states import STATES
from tests.browser.conftest import TIMEOUT_MS
from tests.browser.helpers import sign_in
from tests.support.s3dest_server import S3destProcess

pytestmark = pytest.mark.browser

# Puts one badge per state (and one of a state no rule names) on the page, as the templates
# write them, and reads their computed colours.
_BADGES = (Path(__file__).parent / "state_badges.js").read_text()


def test_every_state_has_a_readable_badge_of_its_own_in_light_and_dark(
    s3dest_server: S3destProcess, project: tuple[str, str], browser: Any
) -> None:
    _, api_key = project
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme, locale="en-US")
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        try:
            sign_in(page, s3dest_server.url, api_key)
            page.goto(f"{s3dest_server.url}/deliveries")
            badges = page.evaluate(_BADGES, [s.value for s in STATES])
        finally:
            context.close()
        plain = badges.pop("no-such-state")["paint"]
        assert set(badges) == {s.value for s in STATES}
        unstyled = [s for s, b in badges.items() if b["paint"] == plain]
        assert unstyled == [], (scheme, unstyled, plain)
        unreadable = {s: b for s, b in badges.items() if b["contrast"] < 4.5}
        assert unreadable == {}, scheme
