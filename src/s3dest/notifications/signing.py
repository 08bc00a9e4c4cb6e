"""Standard Webhooks signatures, made by the `standardwebhooks` library (the reference
implementation): `webhook-id`, `webhook-timestamp` and `webhook-signature` (v1, an
HMAC-SHA256 of ``id.timestamp.body`` under the endpoint's secret, base64)."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime

SECRET_PREFIX = "whsec_"
_SECRET_BYTES = 32  # the convention allows 24 to 64


def new_secret() -> str:
    """A signing secret as receivers' libraries take it: ``whsec_`` + base64."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(_SECRET_BYTES)).decode()


def aad(webhook_id: str) -> str:
    """The associated data the secret is encrypted with: a token copied to another
    endpoint's row does not decrypt."""
    return f"webhook:{webhook_id}:secret"


def headers(secret: str, message_id: str, body: str, at: datetime | None = None) -> dict[str, str]:
    """The three headers for `body`, signed as of `at` (now): each attempt is signed anew,
    so a retry a day later is still inside the receivers' five-minute tolerance."""
    # Imported at the first signature: a process that never sends one never loads it.
    from standardwebhooks.webhooks import Webhook

    when = at or datetime.now(UTC)
    signature = Webhook(secret).sign(message_id, when, body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
    }
