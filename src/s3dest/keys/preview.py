"""Render a key template for a live preview (dashboard, API, CLI)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from s3dest.errors import KeyRenderError, KeyTemplateInvalid
from s3dest.keys.lint import (
    RecentMessage,
    Rendered,
    check_key_template,
    key_warnings,
    segment_problem,
)
from s3dest.keys.samples import SAMPLE_DESTINATION_ID
from s3dest.keys.template import KeyTemplate
from s3dest.messages import EventMetadata, metadata_text, new_stamp, parse_rfc3339_ns

#: Fields of a message as `send` takes it that are not in the body's data object.
ENVELOPE_ONLY = ("integration", "destination", "connectionId", "topic")
_UNIQUE = "neither metadata"


def message_data(message: Any) -> tuple[dict[str, Any], str | None, str | None]:
    """(data, connectionId, topic) of a message given as the page shows it
    (``{"data": {...}}``) or as `send` takes it (the data fields at the top, with
    integration/destination/connectionId/topic beside them)."""
    if not isinstance(message, dict):
        raise KeyTemplateInvalid(
            "message must be an object", {"message": 'send {"data": {...}} or the message itself'}
        )
    if set(message) == {"data"}:
        data = message["data"]
        if not isinstance(data, dict):
            raise KeyTemplateInvalid(
                "message.data must be an object", {"message": '"data" must be a JSON object'}
            )
        return data, None, None
    data = {k: v for k, v in message.items() if k not in ENVELOPE_ONLY}
    return data, message.get("connectionId"), message.get("topic")


def _sample_key(rendered: Rendered) -> str:
    return rendered.key if rendered.key is not None else f"(fails: {rendered.error})"


def preview_key(
    source: str | None,
    message: dict[str, Any] | None,
    *,
    project_id: str,
    recent: Sequence[RecentMessage] = (),
) -> dict[str, Any]:
    """Render a template against a given message (or the samples) for a live preview.

    Raises KeyTemplateInvalid when the template is broken (as saving it would); returns
    the key for the given message (or the read sample), the warnings, both sample keys
    (a data field the sample lacks shows as ``{field}``) and the recent messages' keys.
    With a message, the warnings are about that message's key, not the samples'.
    """
    report = check_key_template(source, recent)
    sample_keys = {name: _sample_key(r) for name, r in report.samples.items()}
    read = report.samples["read"]
    key = read.key if read.key is not None else sample_keys["subscribe"]
    warnings = report.warnings
    if message is not None:
        key = _render_given(KeyTemplate(source), message, project_id=project_id)
        # The template's own warning stays; the samples' do not describe this key.
        warnings = [w for w in warnings if _UNIQUE in w] + key_warnings([key])
    return {
        "key": key,
        "warnings": warnings,
        "sampleKeys": sample_keys,
        "recentKeys": [
            {"eventId": event_id, "key": r.key, "error": r.error} for event_id, r in report.recent
        ],
    }


def _render_given(template: KeyTemplate, message: dict[str, Any], *, project_id: str) -> str:
    data, connection_id, topic = message_data(message)
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
        connection_id=connection_id,
        topic=topic,
    )
    try:
        key = template.render_message(metadata, event_time_ns, data)
    except KeyRenderError as exc:
        raise KeyTemplateInvalid(
            f"key template fails for this message: {exc.message}",
            {"keyTemplate": f"fails for the given message: {exc.message}"},
        ) from None
    problem = segment_problem(key)
    if problem is not None:  # the writer refuses such a key: this message would be parked
        reason = f"gives the key {key!r}, which {problem}; this message would be parked"
        raise KeyTemplateInvalid(
            f"key template fails for this message: {reason}",
            {"keyTemplate": f"fails for the given message: {reason}"},
        )
    return key
