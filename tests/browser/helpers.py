"""Helpers shared by the browser tests."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from s3dest.dashboard.charts import PALETTE


def sign_in(page: Page, base_url: str, api_key: str) -> None:
    page.goto(f"{base_url}/signin")
    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


# What makes a chart unreadable (chart_problems.js), measured in the page: a font smaller than
# MIN_TEXT_PX on the screen, or text cut
# off by its chart, two labels on top of each other, and colours too close to the card's
# background (WCAG 2.1: 4.5:1 for text, 3:1 for the bars, lines and axis of a graphic,
# 1.4.3 and 1.4.11). Colours are the computed ones, blended with their opacity.
MIN_TEXT_PX = 11
_CHART_PROBLEMS = (Path(__file__).parent / "chart_problems.js").read_text()


def chart_problems(page: Page) -> list[str]:
    """Why the dashboard's charts are hard to read on this page (empty: they are not)."""
    found: list[str] = page.evaluate(_CHART_PROBLEMS, [MIN_TEXT_PX, list(PALETTE)])
    return found


#: How much wider than the window the page is (> 0: it scrolls sideways).
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"
