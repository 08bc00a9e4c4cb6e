"""The amp.yaml source: bytes to text, text to a YAML tree that keeps line numbers, and
the 1-based line and column of any node, key, value or list item in that tree.

YAML and JSON documents both load (JSON is YAML); every failure is a `ManifestInvalid`
naming where it happened, never a parser's own exception.
"""

from __future__ import annotations

from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from s3dest.manifest.problems import Problem, manifest_error, one_problem

MAX_FLOW_DEPTH: Final = 64
# The YAML parser that keeps line numbers is pure Python: about 15 s of CPU per MB here
# (4,000 integrations, 490 KB: 7.5 s). An amp.yaml of a hundred integrations is ~12 KB,
# so 128 KiB leaves room for ten times that and bounds one upload to ~2 s of CPU.
MAX_SOURCE_BYTES: Final = 128 * 1024


def source_text(source: str | bytes) -> str:
    """The document as text. Bytes must be UTF-8 (a BOM is dropped); anything else is a
    ManifestInvalid naming the line and column, never silently replaced characters."""
    size = len(source) if isinstance(source, bytes) else len(source.encode("utf-8", "replace"))
    if size > MAX_SOURCE_BYTES:
        raise one_problem(
            "manifest",
            1,
            1,
            f"is {size:,} bytes; an amp.yaml may be at most {MAX_SOURCE_BYTES:,} bytes. "
            "Split the integrations over several projects, or remove unused ones",
        )
    if isinstance(source, str):
        return source
    try:
        return source.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = source.count(b"\n", 0, exc.start) + 1
        column = exc.start - (source.rfind(b"\n", 0, exc.start) + 1) + 1
        raise one_problem("manifest", line, column, "is not UTF-8 text") from None


def check_text(text: str) -> None:
    """Refuse cheaply what the YAML parser would take seconds (or crash) to refuse."""
    depth = 0
    line, column = 1, 0
    for ch in text:
        column += 1
        if ch == "\n":
            line, column = line + 1, 0
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            raise one_problem("manifest", line, column, "is not valid UTF-8 text")
        elif ch in "[{":
            depth += 1
            if depth > MAX_FLOW_DEPTH:
                raise one_problem(
                    "manifest",
                    line,
                    column,
                    f"nests more than {MAX_FLOW_DEPTH} levels deep; amp.yaml never needs that",
                )
        elif ch in "]}" and depth:
            depth -= 1


def load(text: str) -> Any:
    """The round-trip YAML tree of `text` (its nodes know their positions)."""
    yaml = YAML(typ="rt", pure=True)
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        what = ": ".join(str(part) for part in (exc.context, exc.problem) if part)
        problem = Problem("manifest", line, column, f"YAML syntax error: {what}")
    except YAMLError as exc:  # ReaderError: a character YAML does not allow
        position = int(getattr(exc, "position", 0) or 0)
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        reason = getattr(exc, "reason", None) or str(exc)
        problem = Problem("manifest", line, column, f"YAML syntax error: {reason}")
    except RecursionError:
        problem = Problem("manifest", 1, 1, "YAML nested too deeply")
    raise manifest_error([problem])


# -- positions (1-based line, column) ------------------------------------------------------


def pos(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return 1, 1
    return int(lc.line) + 1, int(lc.col) + 1


def key_pos(node: CommentedMap, key: str) -> tuple[int, int]:
    try:
        line, col = node.lc.key(key)
    except (KeyError, TypeError, AttributeError):  # a key merged in with `<<: *anchor`
        return pos(node)
    return int(line) + 1, int(col) + 1


def value_pos(node: CommentedMap, key: str) -> tuple[int, int]:
    value = node.get(key)
    if isinstance(value, CommentedMap | CommentedSeq):
        return pos(value)
    try:
        line, col = node.lc.value(key)
    except (KeyError, TypeError, AttributeError):
        return key_pos(node, key)
    return int(line) + 1, int(col) + 1


def item_pos(node: CommentedSeq, index: int) -> tuple[int, int]:
    try:
        line, col = node.lc.item(index)
    except (KeyError, TypeError, AttributeError, IndexError):
        return pos(node)
    return int(line) + 1, int(col) + 1
