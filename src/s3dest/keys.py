"""Object key templates: compile once, build the context, render, lint.

A template is a JMESPath expression evaluated against three namespaces (SPEC §2):
``metadata`` (the nine event metadata fields, all strings), ``time`` (the message's
event time, UTC, zero-padded strings) and ``data`` (the message payload). Keys come from
the event time stamped at ingest, never the attempt time, so every retry writes the same
key.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jmespath
import jmespath.exceptions
from jmespath.parser import ParsedResult

from s3dest.errors import KeyRenderError, KeyTemplateInvalid

DEFAULT_KEY_TEMPLATE = "join('', [time.rfc3339_nano, '_', metadata.\"event-id\", '.json'])"
MAX_KEY_BYTES = 1024

METADATA_FIELDS: tuple[str, ...] = (
    "projectId",
    "installationId",
    "connectionId",
    "destinationId",
    "operationId",
    "objectName",
    "event-id",
    "timestamp",
    "topic",
)
TIME_FIELDS: tuple[str, ...] = (
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "date",
    "datetime",
    "unix",
    "rfc3339",
    "rfc3339_nano",
)
NAMESPACES = ("metadata", "time", "data")

# AWS: "characters to avoid" in object keys (plus non-printable ones, checked separately).
_AVOID_CHARS = frozenset('\\{}^%`[]"<>~#|')


@dataclass(frozen=True, slots=True)
class EventMetadata:
    """The nine metadata fields of a message, as strings ("" when unknown)."""

    projectId: str
    installationId: str
    connectionId: str
    destinationId: str
    operationId: str
    objectName: str
    event_id: str
    timestamp: str
    topic: str

    def namespace(self) -> dict[str, str]:
        return {
            "projectId": self.projectId,
            "installationId": self.installationId,
            "connectionId": self.connectionId,
            "destinationId": self.destinationId,
            "operationId": self.operationId,
            "objectName": self.objectName,
            "event-id": self.event_id,
            "timestamp": self.timestamp,
            "topic": self.topic,
        }


def time_namespace(event_time_ns: int) -> dict[str, str]:
    seconds, nanos = divmod(event_time_ns, 1_000_000_000)
    dt = datetime.fromtimestamp(seconds, UTC)
    date = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}"
    clock = f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
    return {
        "year": f"{dt.year:04d}",
        "month": f"{dt.month:02d}",
        "day": f"{dt.day:02d}",
        "hour": f"{dt.hour:02d}",
        "minute": f"{dt.minute:02d}",
        "second": f"{dt.second:02d}",
        "date": date,
        "datetime": f"{date}T{clock}",
        "unix": str(seconds),
        "rfc3339": f"{date}T{clock}Z",
        "rfc3339_nano": f"{date}T{clock}.{nanos:09d}Z",
    }


def rfc3339_nano(event_time_ns: int) -> str:
    """``time.rfc3339_nano`` of `time_namespace`, alone."""
    seconds, nanos = divmod(event_time_ns, 1_000_000_000)
    dt = datetime.fromtimestamp(seconds, UTC)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T"
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}.{nanos:09d}Z"
    )


def key_context(metadata: EventMetadata, event_time_ns: int, data: Any) -> dict[str, Any]:
    return {
        "metadata": metadata.namespace(),
        "time": time_namespace(event_time_ns),
        "data": data,
    }


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class KeyTemplate:
    """A compiled key template. Compile once per destination; render per message."""

    __slots__ = ("_is_default", "_parsed", "_paths", "source")

    def __init__(self, source: str | None = None) -> None:
        text = DEFAULT_KEY_TEMPLATE if source is None or not source.strip() else source
        self.source = text
        _check_source(text)
        try:
            self._parsed: ParsedResult = jmespath.compile(text)
        except RecursionError:
            raise KeyTemplateInvalid(
                "key template is nested too deeply",
                {"keyTemplate": "nested too deeply to evaluate; simplify the expression"},
            ) from None
        except jmespath.exceptions.ParseError as exc:
            pos = getattr(exc, "lex_position", None)
            where = f" at position {pos}" if isinstance(pos, int) else ""
            hint = f"{_parse_problem(exc)}{where}"
            raise KeyTemplateInvalid(
                f"key template does not compile: {hint}",
                {
                    "keyTemplate": f"not a valid JMESPath expression: {hint}. See jmespath.org; "
                    'quote names with hyphens, e.g. metadata."event-id"'
                },
            ) from None
        except jmespath.exceptions.JMESPathError as exc:
            raise KeyTemplateInvalid(
                f"key template does not compile: {exc}",
                {"keyTemplate": f"not a valid JMESPath expression: {exc}"},
            ) from None
        _check_exprefs(self._parsed.parsed)
        self._paths = _field_paths(self._parsed.parsed)
        # The default template is rendered without JMESPath (same key, a fraction of the CPU).
        self._is_default = text == DEFAULT_KEY_TEMPLATE

    @property
    def paths(self) -> list[tuple[str, ...]]:
        """The dotted field paths the template reads, e.g. ("metadata", "event-id")."""
        return list(self._paths)

    def render(self, context: dict[str, Any]) -> str:
        """Render against a context; KeyRenderError says why a message has no valid key."""
        try:
            value = self._parsed.search(context)
        except jmespath.exceptions.JMESPathError as exc:
            raise KeyRenderError(
                f"key template failed for this message: {exc}{self._null_hint(context)}"
            ) from None
        except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
            # jmespath lets some Python errors through (a zero slice step, `contains`
            # on an object...): they are this message's problem, not a crash.
            raise KeyRenderError(
                f"key template failed for this message: {type(exc).__name__}: {exc}"
            ) from None
        if not isinstance(value, str):
            raise KeyRenderError(
                f"key template evaluated to {_describe(value)}, not a string"
                f"{self._null_hint(context)}; wrap values with to_string() or join()"
            )
        return check_key(value)

    def render_message(self, metadata: EventMetadata, event_time_ns: int, data: Any) -> str:
        if self._is_default:
            # join('', [time.rfc3339_nano, '_', metadata."event-id", '.json'])
            return check_key(f"{rfc3339_nano(event_time_ns)}_{metadata.event_id}.json")
        return self.render(key_context(metadata, event_time_ns, data))

    def _null_hint(self, context: dict[str, Any]) -> str:
        """Name the first path that resolves to nothing: the usual cause of a failure."""
        for path in self._paths:
            node: Any = context
            for i, part in enumerate(path):
                if not isinstance(node, dict) or part not in node:
                    return f" ({'.'.join(path[: i + 1])} is missing{_suggest(node, part, path, i)})"
                node = node[part]
            if node is None:
                return f" ({'.'.join(path)} is null in this message)"
        return ""


def _parse_problem(exc: jmespath.exceptions.ParseError) -> str:
    """What is wrong, in jmespath's words (its `msg` alone is often just "Invalid ...")."""
    if isinstance(exc, jmespath.exceptions.IncompleteExpressionError):
        return "the expression ends early (an unclosed bracket, parenthesis or quote?)"
    if isinstance(exc, jmespath.exceptions.LexerError):
        # "Bad jmespath expression: Unknown token '-':\n..." -> "Unknown token '-'"
        first = str(exc).split("\n", 1)[0].rstrip(":")
        return first.split(": ", 1)[-1]
    token = getattr(exc, "token_value", None)
    msg = getattr(exc, "msg", "") or ""
    text = f"unexpected {token!r}" if token not in (None, "") else "invalid expression"
    if msg and msg not in ("invalid token", "Invalid jmespath expression"):
        text += f" ({msg})"
    return text


def _suggest(node: Any, part: str, path: tuple[str, ...], index: int) -> str:
    if index == 0:
        return "; a template starts from metadata, time or data"
    if path[0] == "data":  # payloads differ by message; a guess would mislead
        return ""
    if isinstance(node, dict):
        names = [str(k) for k in node]
        close = difflib.get_close_matches(part, names, n=1, cutoff=0.6)
        if not close:
            lowered = {n.lower(): n for n in names}
            if part.lower() in lowered:
                close = [lowered[part.lower()]]
        if close:
            return f"; names are case-sensitive: did you mean {'.'.join(path[:index])}.{close[0]}?"
    return ""


def check_key(key: str) -> str:
    """The hard rules of an S3 key that s3dest writes."""
    if not key:
        raise KeyRenderError("key template rendered an empty key")
    size = len(key.encode("utf-8", "surrogatepass"))
    if size > MAX_KEY_BYTES:
        raise KeyRenderError(
            f"rendered key is {size} bytes; S3 allows at most {MAX_KEY_BYTES} bytes of UTF-8"
        )
    bad = _BAD_KEY_CHAR.search(key)  # one C scan; the first offending character decides
    if bad is not None:
        ch = bad.group()
        if ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F:
            raise KeyRenderError(
                f"rendered key contains the control character U+{ord(ch):04X}; "
                "S3 cannot list such keys reliably"
            )
        raise KeyRenderError("rendered key contains an unpaired surrogate (not valid UTF-8)")
    return key


_BAD_KEY_CHAR = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
MAX_TEMPLATE_BYTES = 4096
# Functions that take an expression reference (&expr); anywhere else `&expr` would render
# a Python object's repr, which differs on every run.
_EXPREF_FUNCTIONS = frozenset({"sort_by", "min_by", "max_by", "map"})


def _check_source(text: str) -> None:
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        raise KeyTemplateInvalid(
            "key template is not valid UTF-8",
            {"keyTemplate": "contains an unpaired surrogate; send valid UTF-8 text"},
        )
    if len(text.encode()) > MAX_TEMPLATE_BYTES:
        raise KeyTemplateInvalid(
            "key template is too long",
            {"keyTemplate": f"templates are limited to {MAX_TEMPLATE_BYTES:,} bytes; shorten it"},
        )


def _check_exprefs(node: Any) -> None:
    stack = [(node, "")]
    while stack:
        current, function = stack.pop()
        if not isinstance(current, dict):
            continue
        kind = current.get("type")
        if kind == "expref" and function not in _EXPREF_FUNCTIONS:
            raise KeyTemplateInvalid(
                "key template uses '&' outside sort_by, min_by, max_by or map",
                {
                    "keyTemplate": "'&expression' is only meaningful as an argument of sort_by, "
                    "min_by, max_by or map; remove the '&'"
                },
            )
        name = str(current.get("value")) if kind == "function_expression" else ""
        for child in current.get("children", []):
            stack.append((child, name))


def _field_paths(node: Any) -> list[tuple[str, ...]]:
    """Collect dotted field paths (metadata.x, data.a.b) from a JMESPath AST."""
    paths: list[tuple[str, ...]] = []

    def chain(n: Any) -> tuple[str, ...] | None:
        if not isinstance(n, dict):
            return None
        if n.get("type") == "field":
            return (str(n["value"]),)
        if n.get("type") == "subexpression":
            parts: list[str] = []
            for child in n["children"]:
                sub = chain(child)
                if sub is None:
                    return tuple(parts) if parts else None
                parts.extend(sub)
            return tuple(parts)
        return None

    def walk(n: Any) -> None:
        if not isinstance(n, dict):
            return
        found = chain(n)
        if found is not None:
            paths.append(found)
            return
        for child in n.get("children", []):
            walk(child)

    walk(node)
    return paths


# ---------------------------------------------------------------------------
# Validation against the page's sample messages.


def _sample_contexts() -> tuple[dict[str, Any], dict[str, Any]]:
    from s3dest.samples import sample_read, sample_subscribe

    contexts = []
    for sample in (sample_read(), sample_subscribe()):
        contexts.append(key_context(sample.metadata, sample.event_time_ns, sample.data))
    return contexts[0], contexts[1]


def lint_key_template(source: str | None) -> list[str]:
    """Validate a template (SPEC §2). Raises KeyTemplateInvalid; returns warnings."""
    template = KeyTemplate(source)
    read_ctx, subscribe_ctx = _sample_contexts()
    warnings: list[str] = []
    try:
        read_key = template.render(read_ctx)
    except KeyRenderError as exc:
        raise KeyTemplateInvalid(
            f"key template does not render for a sample read message: {exc.message}",
            {"keyTemplate": f"does not render for a sample read message: {exc.message}"},
        ) from None
    keys = [read_key]
    try:
        keys.append(template.render(subscribe_ctx))
    except KeyRenderError as exc:
        warnings.append(
            "uses a field absent in subscribe messages: rendering a sample subscribe message "
            f"fails ({exc.message}); such messages would be parked"
        )
    for path in template.paths:
        if (
            path[0] == "data"
            and _lookup(read_ctx, path) is not None
            and _lookup(subscribe_ctx, path) is None
            and not any("absent" in w for w in warnings)
        ):
            warnings.append(
                f"uses {'.'.join(path)}, which subscribe messages do not have; "
                "their keys would differ in shape"
            )
    if not any(
        p in (("metadata", "event-id"), ("metadata", "operationId"), ("data", "operationId"))
        for p in template.paths
    ):
        warnings.append(
            'the key includes neither metadata."event-id" nor metadata.operationId: two '
            "messages can get the same key and the later object overwrites the earlier"
        )
    for key in keys:
        bad = sorted({ch for ch in key if ch in _AVOID_CHARS or ord(ch) >= 0x80})
        if bad:
            warnings.append(
                f"the key {key!r} contains characters AWS advises to avoid in object keys: "
                + " ".join(bad)
            )
            break
    for key in keys:
        if key.startswith("/"):
            warnings.append(f"the key {key!r} starts with '/', which makes an empty first segment")
            break
        if "//" in key or key.endswith("/"):
            warnings.append(
                f"the key {key!r} has an empty path segment ('//' or a trailing '/'); "
                "a field in the template is probably empty"
            )
            break
    return warnings


def _lookup(context: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = context
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def preview_key(
    source: str | None, message: dict[str, Any] | None, *, project_id: str
) -> dict[str, Any]:
    """Render a template against a given message (or the samples) for a live preview.

    Raises KeyTemplateInvalid when the template is broken; returns the key for the given
    message (or the read sample), the lint warnings, and both sample keys.
    """
    from s3dest.messages import new_stamp, parse_rfc3339_ns
    from s3dest.samples import SAMPLE_DESTINATION_ID

    warnings = lint_key_template(source)
    template = KeyTemplate(source)
    read_ctx, subscribe_ctx = _sample_contexts()
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

        def text(name: str) -> str:
            value = data.get(name)
            return "" if value is None else str(value)

        metadata = EventMetadata(
            projectId=project_id,
            installationId=text("installationId"),
            connectionId=text("connectionId"),
            destinationId=SAMPLE_DESTINATION_ID,
            operationId=text("operationId"),
            objectName=text("objectName"),
            event_id=text("eventId") or stamp.event_id,
            timestamp=str(event_time_ns // 1_000_000_000),
            topic=text("topic"),
        )
        try:
            key = template.render_message(metadata, event_time_ns, data)
        except KeyRenderError as exc:
            raise KeyTemplateInvalid(
                f"key template fails for this message: {exc.message}",
                {"keyTemplate": f"fails for the given message: {exc.message}"},
            ) from None
    return {"key": key, "warnings": warnings, "sampleKeys": sample_keys}
