"""Browser tests: Playwright's Python package driving Debian's Chromium, headless.

Never downloads a browser (no `playwright install`): it uses /usr/bin/chromium (or
$S3DEST_CHROMIUM) and, when that is missing and the tests run as root, installs Debian's
`chromium` package with apt-get. Screenshots go to test-output/screenshots/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 45_000  # generous: two shared, busy cores


@pytest.fixture
def database_url() -> None:
    """Browser tests run on SQLite only (the embedded default), to stay fast."""
    return None


def _apt_install() -> str:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "chromium"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if first.returncode == 0:
        return first.stdout[-2000:]
    update = subprocess.run(
        ["apt-get", "update", "-q"], env=env, capture_output=True, text=True, timeout=900
    )
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if second.returncode != 0:
        raise RuntimeError(
            "apt-get install -y chromium failed:\n"
            + first.stderr[-2000:]
            + update.stderr[-2000:]
            + second.stderr[-2000:]
        )
    return second.stdout[-2000:]


def chromium_path() -> str:
    path = os.environ.get("S3DEST_CHROMIUM") or "/usr/bin/chromium"
    if os.access(path, os.X_OK):
        return path
    if os.geteuid() != 0:
        pytest.fail(
            f"Chromium is not installed at {path}. Install Debian's package as root "
            "(`apt-get install -y chromium`), or set S3DEST_CHROMIUM to a Chromium binary. "
            "The tests never download a browser (`playwright install` is not used).",
            pytrace=False,
        )
    if not shutil.which("apt-get"):
        pytest.fail(f"Chromium is missing at {path} and apt-get is not available", pytrace=False)
    try:
        _apt_install()
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"could not install Chromium: {exc}", pytrace=False)
    if not os.access(path, os.X_OK):
        pytest.fail(f"apt-get installed chromium but {path} is still missing", pytrace=False)
    return path


# Package scope: Playwright's sync API keeps an asyncio loop running in the main thread while it
# is open, which would break every later test that calls asyncio.run().
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:  # pragma: no cover
        pytest.fail("playwright is not installed: pip install -e '.[dev]'", pytrace=False)
    executable = chromium_path()
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True, timeout=120_000
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="session")
def screenshot_dir(pytestconfig: pytest.Config) -> Path:
    directory = Path(pytestconfig.rootpath) / "test-output" / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


@dataclass
class Shots:
    directory: Path

    def __call__(self, page: Any, name: str, *, full_page: bool = True) -> Path:
        path = self.directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
def shot(screenshot_dir: Path) -> Shots:
    return Shots(screenshot_dir)
