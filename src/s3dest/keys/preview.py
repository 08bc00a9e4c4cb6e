"""Render a key template for a live preview (dashboard, API, CLI)."""

from __future__ import annotations

import contextlib
from typing import Any

from s3dest.errors import KeyRenderError, KeyTemplateInvalid
from s3dest.keys.lint import lint_key_template
from s3dest.keys.samples import SAMPLE_DESTINATION_ID, sample_contexts
from s3dest.keys.template import KeyTemplate
from s3dest.messages import EventMetadata, metadata_text, new_stamp, parse_rfc3339_ns


def preview_key(
    source: str | None, message: dict[str, Any] | None, *, project_id: str
) -> dict[str, Any]:
    """Render a template against a given message (or the samples) for a live preview.

    Raises KeyTemplateInvalid when the template is broken; returns the key for the given
    message (or the read sample), the lint warnings, and both sample keys.
    """
    warnings = lint_key_template(source)
    template = KeyTemplate(source)
    read_ctx, subscribe_ctx = sample_contexts()
    sample_keys: dict[str, str] = {"read": template.render(read_ctx)}
    try:
        sample_keys["subscribe"] = template.render(subscribe_ctx)
    except KeyRenderError as exc:
        sample_keys["subscribe"] = f"(fails: {exc.message})"
    key = sample_keys["read"]
    if message is not None:
        data = message.get("data", message) if isinstance(message, dict) else message
        if not isinstance(data, dict):
            raise KeyTemplateInvalid(
                "message must be an object", {"message": 'send {"data": {...}} or the data object'}
            )
        stamp = new_stamp()
        event_time_ns = stamp.event_time_ns
        operation_time = data.get("operationTime")
        if isinstance(operation_time, str):
            with contextlib.suppress(ValueError):
                event_time_ns = parse_rfc3339_ns(operation_time)

        metadata = EventMetadata.of(
            data,
            project_id=project_id,
            destination_id=SAMPLE_DESTINATION_ID,
            event_id=metadata_text(data.get("eventId")) or stamp.event_id,
            event_time_ns=event_time_ns,
        )
        try:
            key = template.render_message(metadata, event_time_ns, data)
        except KeyRenderError as exc:
            raise KeyTemplateInvalid(
                f"key template fails for this message: {exc.message}",
                {"keyTemplate": f"fails for the given message: {exc.message}"},
            ) from None
    return {"key": key, "warnings": warnings, "sampleKeys": sample_keys}
