"""The one mask of an access key ID: enough to recognise a key, never enough to use it.

The API, the CLI, the dashboard and S3 diagnoses all show a key ID through
`mask_access_key_id`, so a key looks the same wherever it appears.
"""

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
