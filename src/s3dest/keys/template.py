"""Object key templates: compile once per destination, render per message.

A template is a JMESPath expression evaluated against the namespaces of
`s3dest.keys.context`; `check_key` holds the hard rules of a key s3dest writes.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from typing import TYPE_CHECKING, Any

import jmespath
import jmespath.exceptions
import jmespath.functions
from jmespath.parser import ParsedResult
from jmespath.visitor import TreeInterpreter

from s3dest.errors import KeyRenderError, KeyTemplateInvalid
from s3dest.keys.assumed import AssumingInterpreter
from s3dest.keys.context import key_context, rfc3339_nano

if TYPE_CHECKING:  # for annotations only: importing s3dest.keys stays free of pydantic
    from s3dest.messages import EventMetadata

DEFAULT_KEY_TEMPLATE = "join('', [time.rfc3339_nano, '_', metadata.\"event-id\", '.json'])"
MAX_KEY_BYTES = 1024


def describe(value: Any) -> str:
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


def scalar_text(value: Any) -> str | None:
    """A number or boolean as the text a key shows (JSON's spelling); None otherwise.

    Keys render scalars as text, as Hookdeck Outpost does: `data.result[0].fields.year`
    may hold 2025 or "2025" depending on the CRM, and both give the key 2025."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value) if isinstance(value, int) else repr(value)
    return None


class _TextFunctions(jmespath.functions.Functions):
    """JMESPath's functions, but `join` takes numbers and booleans as text (null stays a
    type error: a missing field must not vanish from a key)."""

    @jmespath.functions.signature({"types": ["string"]}, {"types": ["array"]})
    def _func_join(self, separator: str, array: list[Any]) -> str:
        parts: list[str] = []
        for item in array:
            text = item if isinstance(item, str) else scalar_text(item)
            if text is None:
                raise jmespath.exceptions.JMESPathTypeError(
                    "join", item, _json_type(item), ["string", "number", "boolean"]
                )
            parts.append(text)
        return separator.join(parts)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return "array" if isinstance(value, list) else "object"


OPTIONS = jmespath.Options(custom_functions=_TextFunctions())


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

    @property
    def ast(self) -> Any:
        """The parsed expression, for `s3dest.keys.assumed`'s interpreter."""
        return self._parsed.parsed

    def reads_data(self) -> bool:
        """Whether any path of the template starts in the data namespace."""
        return any(path[0] == "data" for path in self._paths)

    def evaluate(self, context: dict[str, Any], interpreter: TreeInterpreter | None = None) -> Any:
        """The expression's value for a context (any JSON type); KeyRenderError on a
        JMESPath error."""
        try:
            if interpreter is None:
                return self._parsed.search(context, options=OPTIONS)
            return interpreter.visit(self._parsed.parsed, context)
        except jmespath.exceptions.JMESPathTypeError as exc:
            raise KeyRenderError(
                f"key template failed for this message: {_type_problem(exc)}"
                f"{self._null_hint(context)}"
            ) from None
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

    def render(self, context: dict[str, Any]) -> str:
        """Render against a context; KeyRenderError says why a message has no valid key."""
        return self.as_key(self.evaluate(context), context)

    def as_key(self, value: Any, context: dict[str, Any]) -> str:
        """An evaluated value as a key: text, a number or a boolean (as text)."""
        if not isinstance(value, str):
            text = scalar_text(value)
            if text is None:
                raise KeyRenderError(
                    f"key template evaluated to {describe(value)}, not a string"
                    f"{self._null_hint(context)}; wrap values with to_string() or join()"
                )
            value = text
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
        return self._assumed_hint(context)

    def _assumed_hint(self, context: dict[str, Any]) -> str:
        """The first data field the template reads and the message lacks, found by
        evaluating once more with it assumed (paths through [0], projections, pipes)."""
        interpreter = AssumingInterpreter(OPTIONS, context.get("data"))
        with contextlib.suppress(
            jmespath.exceptions.JMESPathError, ValueError, TypeError, ArithmeticError
        ):
            interpreter.visit(self._parsed.parsed, context)
        for path, how in interpreter.assumed.items():
            return f" ({path} is {how}{' in this message' if how == 'null' else ''})"
        return ""


def _type_problem(exc: jmespath.exceptions.JMESPathTypeError) -> str:
    """A function's type error in a person's words: "join() was given null, where it takes
    string, number or boolean" rather than the Python repr of the value."""
    expected = [str(t) for t in (exc.expected_types or [])]
    takes = (
        ", ".join(expected[:-1]) + f" or {expected[-1]}" if len(expected) > 1 else "".join(expected)
    )
    actual = str(exc.actual_type)
    given = actual if actual == "null" else f"{'an' if actual[:1] in 'aeiou' else 'a'} {actual}"
    return f"{exc.function_name}() was given {given}, where it takes {takes}"


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
