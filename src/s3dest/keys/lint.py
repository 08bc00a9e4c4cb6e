"""Validate a key template against the product page's sample messages (SPEC §2)."""

from __future__ import annotations

from typing import Any

from s3dest.errors import KeyRenderError, KeyTemplateInvalid
from s3dest.keys.samples import sample_contexts
from s3dest.keys.template import KeyTemplate

# AWS: "characters to avoid" in object keys (plus non-printable ones, checked separately).
_AVOID_CHARS = frozenset('\\{}^%`[]"<>~#|')


def lint_key_template(source: str | None) -> list[str]:
    """Validate a template (SPEC §2). Raises KeyTemplateInvalid; returns warnings."""
    template = KeyTemplate(source)
    read_ctx, subscribe_ctx = sample_contexts()
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
    problem = _segment_problem(read_key)
    if problem is not None:
        # The writer refuses such a key (S3 clients resolve '.' and '..' and drop empty
        # segments), so every read message would be parked: refuse the template instead.
        reason = (
            f"gives the key {read_key!r} for a sample read message; that key {problem}, "
            "so every message would be parked. Change the template"
        )
        raise KeyTemplateInvalid(f"key template {reason}", {"keyTemplate": reason})
    for key in keys[1:]:
        problem = _segment_problem(key)
        if problem is not None:
            warnings.append(
                f"the key {key!r} of a sample subscribe message {problem}; "
                "such messages would be parked"
            )
    return warnings


def _segment_problem(key: str) -> str | None:
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


def _lookup(context: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = context
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node
