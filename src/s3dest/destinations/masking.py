"""Masking of credentials for display: enough to recognise a key, never enough to use it."""

from __future__ import annotations

ELLIPSIS = "…"


def mask_access_key_id(key_id: str) -> str:
    """Show an access key ID the way the AWS console does: ``AKIA…WXYZ``.

    Keys of 12 characters or more keep their first 4 and last 4 characters; shorter
    keys (S3-compatible stores) keep only their last 4; keys of 4 characters or fewer
    are masked entirely, so a mask never reveals a whole key.
    """
    key_id = key_id.strip()
    if len(key_id) >= 12:
        return f"{key_id[:4]}{ELLIPSIS}{key_id[-4:]}"
    if len(key_id) > 4:
        return f"{ELLIPSIS}{key_id[-4:]}"
    return ELLIPSIS


def mask_secret(secret: str | None) -> str | None:
    """A fixed placeholder for a secret that is set (None when it is not).

    Nothing of the secret is shown, not even its length.
    """
    if secret is None or secret == "":
        return None
    return "********"
