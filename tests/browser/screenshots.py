"""The README's screenshots, taken by the browser tests.

`make screenshots` runs tests/browser (each test saves its pages in test-output/screenshots/)
and then this module, which copies the ones the README shows to docs/screenshots/ under
their README names. Look at each before committing it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TAKEN = ROOT / "test-output" / "screenshots"
PUBLISHED = ROOT / "docs" / "screenshots"

#: README name → the name a browser test saved it under
README_SHOTS = {
    "destinations.png": "05-destinations-failing",
    "destinations-untested.png": "19-untested-destination",
    "destination-edit.png": "22-destination-edit",
    "deliveries.png": "deliveries",
    "deliveries-search.png": "deliveries-search",
    "message.png": "08-message",
    "message-parked.png": "14-message-parked",
    "key-template-custom-field.png": "13-key-template-custom-field",
    "test-before-save.png": "18-test-before-save",
    "status-after-failed-test.png": "16-status-after-failed-test",
    "destination-routes.png": "15-destination-routes",
    "webhooks.png": "21-webhooks",
    "manifest.png": "12-manifest",
    "mobile-destinations.png": "19-mobile-destinations",
    "mobile-destinations-dark.png": "20-mobile-destinations-dark",
    "mobile-charts.png": "mobile-charts-light",
    "mobile-charts-dark.png": "mobile-charts-dark",
}


def publish() -> list[str]:
    """Copy every README screenshot; the names of those the tests did not take."""
    missing = [taken for taken in README_SHOTS.values() if not (TAKEN / f"{taken}.png").exists()]
    if not missing:
        for name, taken in README_SHOTS.items():
            shutil.copyfile(TAKEN / f"{taken}.png", PUBLISHED / name)
    return missing


if __name__ == "__main__":
    not_taken = publish()
    if not_taken:
        sys.exit(f"not taken by the browser tests (did they all pass?): {', '.join(not_taken)}")
    print(f"{len(README_SHOTS)} screenshots copied to {PUBLISHED.relative_to(ROOT)}/")
