"""Validate a key template against the product page's samples and real messages (SPEC §2).

Errors are what no message can fix: the template does not compile, gives no key for
either sample even with every data field it reads assumed present, or evaluates to a
number whatever the message. A data field the samples lack (a customer's own CRM field,
``data.result[0].fields.region``) is a warning with the fix, the same for the read and
the subscribe sample: the samples cannot know a customer's records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from s3dest.errors import KeyRenderError, KeyTemplateInvalid
from s3dest.keys.assumed import AssumingInterpreter
from s3dest.keys.context import METADATA_FIELDS
from s3dest.keys.samples import sample_contexts
from s3dest.keys.template import OPTIONS, KeyTemplate, describe, scalar_text

# AWS: "characters to avoid" in object keys (plus non-printable ones, checked separately).
_AVOID_CHARS = frozenset('\\{}^%`[]"<>~#|')
SAMPLES = ("read", "subscribe")


@dataclass(frozen=True)
class RecentMessage:
    """A real message of the destination (or project), as its key context."""

    event_id: str
    context: dict[str, Any]


@dataclass(frozen=True)
class Rendered:
    """One message's key, or why it has none. For a sample, the data fields it lacked
    (path → "missing" | "null") and the placeholders that stand for them in `key`."""

    key: str | None
    error: str | None = None
    value: Any = None
    assumed: dict[str, str] = field(default_factory=dict)
    placeholders: frozenset[str] = frozenset()
    lists: frozenset[str] = frozenset()  # the assumed paths read as lists


@dataclass(frozen=True)
class Report:
    warnings: list[str]
    samples: dict[str, Rendered]
    recent: list[tuple[str, Rendered]]


def _render(template: KeyTemplate, context: dict[str, Any]) -> Rendered:
    try:
        value = template.evaluate(context)
        return Rendered(key=template.as_key(value, context), value=value)
    except KeyRenderError as exc:
        return Rendered(key=None, error=exc.message)


def _render_sample(template: KeyTemplate, context: dict[str, Any]) -> Rendered:
    """The sample's key; failing that, its key with the data fields it lacks assumed."""
    plain = _render(template, context)
    if plain.key is not None:
        return plain
    interpreter = AssumingInterpreter(OPTIONS, context["data"])
    try:
        value = template.evaluate(context, interpreter)
        key = template.as_key(value, context)
    except KeyRenderError:
        return plain
    if not interpreter.assumed:
        return plain
    return Rendered(
        key=key,
        value=value,
        assumed=dict(interpreter.assumed),
        placeholders=interpreter.placeholders,
        lists=frozenset(interpreter.lists),
    )


def _refuse(reason: str) -> KeyTemplateInvalid:
    return KeyTemplateInvalid(f"key template {reason}", {"keyTemplate": reason})


def check_key_template(source: str | None, recent: Sequence[RecentMessage] = ()) -> Report:
    """Validate a template (SPEC §2). Raises KeyTemplateInvalid; reports warnings, the
    samples' keys and the recent messages' keys."""
    template = KeyTemplate(source)
    contexts = dict(zip(SAMPLES, sample_contexts(), strict=True))
    samples = {name: _render_sample(template, ctx) for name, ctx in contexts.items()}
    read, subscribe = samples["read"], samples["subscribe"]
    if read.key is None and subscribe.key is None:
        raise _refuse(f"does not render for a sample read message: {read.error}")
    if not template.reads_data() and scalar_text(read.value) is not None:
        raise _refuse(
            f"does not render for a sample read message: it evaluates to {describe(read.value)}"
            " whatever the message (it reads no data field); a key is text: wrap values with "
            'to_string() or join() them with metadata."event-id"'
        )
    warnings: list[str] = []
    for name, rendered in samples.items():
        if rendered.key is None:
            warnings.append(
                f"fails for the sample {name} message ({rendered.error}); "
                f"such messages would be parked"
            )
    warnings += _missing_field_warnings(samples)
    if not any(
        p in (("metadata", "event-id"), ("metadata", "operationId"), ("data", "operationId"))
        for p in template.paths
    ):
        warnings.append(
            'the key includes neither metadata."event-id" nor metadata.operationId: two '
            "messages can get the same key and the later object overwrites the earlier"
        )
    warnings += key_warnings([_shown(r) for r in samples.values() if r.key is not None])
    first = read if read.key is not None else subscribe
    problem = segment_problem(_shown(first))
    if problem is not None:
        # The writer refuses such a key (S3 clients resolve '.' and '..' and drop empty
        # segments), so every such message would be parked: refuse the template instead.
        which = "read" if first is read else "subscribe"
        raise _refuse(
            f"gives the key {first.key!r} for a sample {which} message; that key {problem}, "
            "so every message would be parked. Change the template"
        )
    if first is read and subscribe.key is not None:
        problem = segment_problem(_shown(subscribe))
        if problem is not None:
            warnings.append(
                f"the key {subscribe.key!r} of a sample subscribe message {problem}; "
                "such messages would be parked"
            )
    rendered_recent = [(m.event_id, _render(template, m.context)) for m in recent]
    failed = [(event_id, r) for event_id, r in rendered_recent if r.key is None]
    if failed:
        event_id, example = failed[0]
        warnings.append(
            f"fails for {len(failed)} of the {len(rendered_recent)} most recent real messages "
            f"(message {event_id}: {example.error}); such messages would be parked"
        )
    return Report(warnings=warnings, samples=samples, recent=rendered_recent)


def lint_key_template(source: str | None, recent: Sequence[RecentMessage] = ()) -> list[str]:
    """Validate a template (SPEC §2). Raises KeyTemplateInvalid; returns warnings."""
    return check_key_template(source, recent).warnings


def _shown(rendered: Rendered) -> str:
    """The key without its placeholders, for the character and segment checks."""
    key = rendered.key or ""
    for placeholder in rendered.placeholders:
        key = key.replace(placeholder, "x")
    return key


def key_warnings(keys: Sequence[str]) -> list[str]:
    """What AWS advises against in these keys (the first offending one)."""
    for key in keys:
        bad = sorted({ch for ch in key if ch in _AVOID_CHARS or ord(ch) >= 0x80})
        if bad:
            return [
                f"the key {key!r} contains characters AWS advises to avoid in object keys: "
                + " ".join(bad)
            ]
    return []


#: data.<name> that is really a metadata field: the metadata namespace always has it.
_METADATA_FIX = {name.lower(): name for name in METADATA_FIELDS} | {
    "eventid": "event-id",
    "event_id": "event-id",
    "operationid": "event-id",  # subscribe messages have no operationId: event-id is unique
}


def _fix(path: str, *, as_list: bool = False) -> str:
    name = path.rsplit(".", 1)[-1].strip('"')
    meta = _METADATA_FIX.get(name.lower()) if path.count(".") == 1 and not as_list else None
    if meta is not None:
        quoted = f'"{meta}"' if "-" in meta else meta
        return f"use metadata.{quoted} instead (every message has it)"
    if as_list:
        return f"if some messages may lack it, add a fallback: ({path} || ['unknown'])"
    return f"if some messages may lack it, add a fallback: {path} || 'unknown'"


def _missing_field_warnings(samples: dict[str, Rendered]) -> list[str]:
    lacking: dict[str, list[str]] = {}
    lists = {path for rendered in samples.values() for path in rendered.lists}
    for name, rendered in samples.items():
        for path in rendered.assumed:
            lacking.setdefault(path, []).append(name)
    warnings = []
    for path, names in lacking.items():
        if names == ["subscribe"] and samples["read"].key is not None:
            warnings.append(
                f"uses {path}, a field absent in subscribe messages (the page's sample subscribe "
                f"message has none): such messages would be parked; "
                f"{_fix(path, as_list=path in lists)}"
            )
            continue
        which = " and ".join(names)
        warnings.append(
            f"uses {path}, which the sample {which} message{'s' if len(names) > 1 else ''} "
            f"{'do' if len(names) > 1 else 'does'} not have (the built-in samples cannot know "
            f"your records' own fields): a message without it would be parked; "
            f"{_fix(path, as_list=path in lists)}"
        )
    return warnings


def segment_problem(key: str) -> str | None:
    """What is wrong with the '/'-separated segments of `key`, if anything."""
    if key.startswith("/"):
        return "starts with '/' (an empty first segment)"
    if "//" in key or key.endswith("/"):
        return (
            "has an empty path segment ('//' or a trailing '/'); a field in the template "
            "is probably empty"
        )
    if any(part in (".", "..") for part in key.split("/")):
        return "has a '.' or '..' segment, which S3 clients resolve as a relative path"
    return None
