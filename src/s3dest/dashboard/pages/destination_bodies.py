"""What the destination form posts, as the REST API's create and update bodies.

Shared by saving and by testing before saving (the same values either way). Editing, a
blank secret field keeps the saved secret: it is write-only and never sent back.
"""

from __future__ import annotations

from typing import Any

from s3dest.dashboard.web import form_text
from s3dest.destinations.batch_fields import batch_shape_message
from s3dest.destinations.schemas import invalid_destination
from s3dest.errors import InvalidInput


def create_body(form: Any) -> dict[str, Any]:
    """POST /v1/destinations' body from the new-destination form."""
    body: dict[str, Any] = {
        "name": form_text(form, "name"),
        "bucket": form_text(form, "bucket"),
        "region": form_text(form, "region"),
        "storageClass": form_text(form, "storageClass") or None,
        "writeMode": form_text(form, "writeMode") or "overwrite",
        "enabled": form.get("enabled") is not None,
    }
    # Keys or a role: whichever was typed (the rules say what is missing).
    for optional in (
        "accessKeyId",
        "secretAccessKey",
        "sessionToken",
        "keyTemplate",
        "endpointUrl",
        "roleArn",
    ):
        text = form_text(form, optional)
        if text.strip():
            body[optional] = text
    body.update(_options(form))
    if form.get("batch") is not None:
        body["batch"] = _batch(form)
    return body


def update_body(form: Any) -> dict[str, Any]:
    """PATCH /v1/destinations/{id}'s body from the edit form."""
    body: dict[str, Any] = {
        "name": form_text(form, "name"),
        "bucket": form_text(form, "bucket"),
        "region": form_text(form, "region"),
        "keyTemplate": form_text(form, "keyTemplate")
        if form_text(form, "keyTemplate").strip()
        else None,
        "endpointUrl": form_text(form, "endpointUrl")
        if form_text(form, "endpointUrl").strip()
        else None,
        "storageClass": form_text(form, "storageClass") or None,
        "writeMode": form_text(form, "writeMode") or None,
        "enabled": form.get("enabled") is not None,
    }
    # Write-only fields: blank keeps what is stored.
    for secret in ("accessKeyId", "secretAccessKey"):
        if form_text(form, secret).strip():
            body[secret] = form_text(form, secret)
    if form.get("clearSessionToken") is not None:
        body["sessionToken"] = None
    elif form_text(form, "sessionToken").strip():
        body["sessionToken"] = form_text(form, "sessionToken")
    role = form_text(form, "roleArn").strip()
    body["roleArn"] = role or None
    if role and not any(name in body for name in ("accessKeyId", "secretAccessKey")):
        # Choosing a role replaces the saved keys (exactly one of the two).
        body.update(accessKeyId=None, secretAccessKey=None, sessionToken=None)
    body.update(_options(form))
    # Unticked: batching off. Ticked: every value the form shows (a blank one: its default).
    body["batch"] = _batch(form) if form.get("batch") is not None else None
    return body


def _tags(text: str) -> dict[str, str] | None:
    """The tags textarea: one key=value per line (blank lines ignored)."""
    tags: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise InvalidInput(
                "invalid destination: tags",
                {"tags": f"tags: line {number} is not key=value; write one tag per line."},
            )
        tags[key.strip()] = value.strip()
    return tags or None


#: The Batching fieldset's number inputs (named as the API's fields, batch.<key>, so that an
#: error's field names its input) and how each is read.
_BATCH_NUMBERS = {"maxMessages": int, "maxBytes": int, "maxSeconds": float}


def _batch(form: Any) -> dict[str, Any]:
    """The Batching fieldset, ticked: its values (blank: null, the default)."""
    batch: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, kind in _BATCH_NUMBERS.items():
        name = f"batch.{key}"
        # "10,000" or "10 000" as people write numbers; the rules check the range.
        text = form_text(form, name).strip().replace(",", "").replace(" ", "")
        try:
            batch[key] = kind(text) if text else None
        except ValueError:
            errors[name] = batch_shape_message(name, "int_type" if kind is int else "float_type")
    batch["compression"] = form_text(form, "batch.compression").strip() or None
    if errors:
        raise invalid_destination(errors)
    return batch


def _options(form: Any) -> dict[str, Any]:
    """SPEC §8's options as the form gives them (blank: not set)."""
    return {
        "serverSideEncryption": form_text(form, "serverSideEncryption").strip() or None,
        "kmsKeyId": form_text(form, "kmsKeyId").strip() or None,
        "bucketKeyEnabled": True if form.get("bucketKeyEnabled") is not None else None,
        "acl": form_text(form, "acl").strip() or None,
        "tags": _tags(form_text(form, "tags")),
    }
