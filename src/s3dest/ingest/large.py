"""Check and compact one large message streamed from a spooled body, in bounded memory."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import IO, Any

import orjson
from pydantic import ValidationError

from s3dest.errors import MessageInvalid
from s3dest.ingest import bodies
from s3dest.ingest.envelope import ProjectView, check_envelope, queue_row, summary
from s3dest.ingest.normalise import ordered_data
from s3dest.messages import IncomingMessage, MessageData, ResultItem, check_complete, data_dict
from s3dest.messages import _field_errors as field_errors
from s3dest.messages import parse_incoming as parse_envelope
from s3dest.providers import normalize_result

# At most this many problems are reported for one large message (it may have millions of
# items, each with the same mistake).
_MAX_ITEM_ERRORS = 20


@dataclass
class PreparedLarge:
    """A large message, checked and compacted into `body` (a temporary file)."""

    row: dict[str, Any]
    destination_id: str
    body: IO[bytes]
    result_items: int


def prepare_large(
    project_id: str,
    source: IO[bytes],
    view: ProjectView,
    *,
    spool_dir: str | None = None,
    now_ns: int | None = None,
) -> PreparedLarge:
    """Check and compact one message streamed from `source`, in bounded memory.

    The stored body is byte for byte what `prepare` makes of the same message (routing
    fields dropped, projectId set, items normalised by their provider); it goes to a
    temporary file, which the caller copies into ``message_chunks``.
    """
    raw_items = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 (closed below)
    try:
        return _prepare(project_id, source, raw_items, view, spool_dir, now_ns)
    finally:
        raw_items.close()


def _prepare(
    project_id: str,
    source: IO[bytes],
    raw_items: IO[bytes],
    view: ProjectView,
    spool_dir: str | None,
    now_ns: int | None,
) -> PreparedLarge:
    members = bodies.scan_top_level(source, raw_items)
    message = parse_envelope(members)  # result is [] (or the wrong type: reported)
    fields: dict[str, str] = {}
    routed = check_envelope(project_id, message, view, "", fields)
    if fields:
        raise MessageInvalid(summary(fields), fields)
    assert routed.destination is not None
    head = ordered_data(project_id, data_dict(message))
    del head["result"]

    def item(i: int, raw: Any) -> bytes:
        try:
            if isinstance(raw, str):  # could not be written as JSON (see scan_top_level)
                raise MessageInvalid(
                    f"result[{i}] cannot be stored: {raw}",
                    {f"result[{i}]": f"cannot be encoded as JSON: {raw}"},
                )
            return _stream_item(message, raw, i, routed.selected)
        except MessageInvalid as exc:
            fields.update(exc.fields)
            if len(fields) >= _MAX_ITEM_ERRORS:
                raise MessageInvalid(summary(fields), fields) from None
            return b"null"

    out = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 (returned, closed by the caller)
    try:
        compacted = bodies.write_message_body(bodies.read_items(raw_items), head, item, out)
        if fields:
            raise MessageInvalid(summary(fields), fields)
        out.seek(0)
    except BaseException:
        out.close()
        raise
    row = queue_row(
        project_id,
        message,
        routed.destination,
        body=None,
        body_size=compacted.size,
        envelope=orjson.dumps(head),
        now_ns=now_ns,
    )
    return PreparedLarge(
        row=row,
        destination_id=routed.destination.id,
        body=out,
        result_items=compacted.result_items,
    )


def _stream_item(
    message: IncomingMessage, raw: Any, index: int, selected: frozenset[str] | None
) -> bytes:
    """One result item of a streamed message: validated and normalised as `prepare` does.

    The checks and the output are those of the small path (validate the item, normalise
    it, re-validate, check subscribe event types), without its per-item model dumps: a
    validated item's dump is the item itself, and the normalised dict is already in the
    model's field order.
    """
    base = f"result[{index}]"
    try:
        ResultItem.model_validate(raw)
    except ValidationError as exc:
        fields = field_errors(exc, base)
        raise MessageInvalid(summary(fields), fields) from None
    normalized = normalize_result(
        message.provider, message.action, raw, selected_fields=selected, index=index
    )
    try:
        final = ResultItem.model_validate(normalized)
    except ValidationError as exc:
        fields = field_errors(exc, base)
        raise MessageInvalid(summary(fields), fields) from None
    if message.action == "subscribe" and final.subscribeEventType is None:
        # The small path's own check and wording, on a one-item message; renumbered.
        one = MessageData.model_construct(
            action=message.action,
            provider=message.provider,
            installationId=message.installationId,
            objectName=message.objectName,
            result=[final],
        )
        try:
            check_complete(one)
        except MessageInvalid as exc:
            fields = {k.replace("result[0]", base, 1): v for k, v in exc.fields.items()}
            raise MessageInvalid(summary(fields), fields) from None
    try:
        return orjson.dumps(normalized)
    except TypeError as exc:  # e.g. an integer beyond 64 bits
        raise MessageInvalid(
            f"{base} cannot be stored: {exc}", {base: f"cannot be encoded as JSON: {exc}"}
        ) from None
