"""The README shows the screenshots `make screenshots` publishes, and only those: a page
added to the README without a browser test that takes it, or a picture left in
docs/screenshots/ that nothing shows or refreshes, fails here."""

from __future__ import annotations

import re

from tests.browser.screenshots import PUBLISHED, README_SHOTS, ROOT


def test_the_readme_shows_every_published_screenshot_and_no_other() -> None:
    shown = set(re.findall(r"docs/screenshots/([\w.-]+\.png)", (ROOT / "README.md").read_text()))
    assert shown == set(README_SHOTS)
    assert {p.name for p in PUBLISHED.glob("*.png")} == set(README_SHOTS)
