"""A batch body read as a stream: its messages one at a time, in bounded memory.

``[...]`` or ``{"messages": [...]}`` is tokenised by ijson's C backend (`basic_parse`,
which builds no prefix strings: ``items()`` builds one per event and its memory grows
with the square of the nesting depth, ~250 MB for 10,000 levels) and each message is
assembled from the events here, so at most one message is held as Python objects at a
time, and nesting deeper than `MAX_DEPTH` is refused as soon as it is reached.

The values are those orjson gives for the same JSON: non-integers are floats (ijson
yields exact `Decimal`s; a number beyond a float's range is refused, as orjson refuses
it), integers are exact (`parse_incoming` refuses any beyond 64 bits, as it always did).
One difference of yajl is made up for by `ParseSource`: yajl turns a lone high
surrogate escape (``"\\ud800"``) into ``?`` without a word; orjson refuses it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Any

import ijson

from s3dest.errors import InvalidInput, MessageInvalid

#: How much of the body the parser is given at a time. ijson's C backend (yajl) is
#: quadratic on one long token when fed small pieces (measured with its default 64 KiB
#: reads: a 40 MiB string ~10 s, 300 MiB ~450 s), and it turns every piece into a list of
#: events before any is used (16 MiB of tiny messages: 2 million tuples, ~230 MB). So a
#: piece is small while events come, and doubles (up to the maximum) each time one gave
#: none — inside a long string — which makes a token of any length linear.
MIN_READ = 64 * 1024
MAX_READ = 16 * 1024 * 1024

#: Deepest nesting read inside one message (orjson reads 1,024 levels; what is stored is
#: refused beyond 254 by `parse_incoming`, with a message naming the message).
MAX_DEPTH = 1024

_NOT_A_BATCH = MessageInvalid(
    'a batch is {"messages": [...]}',
    {"messages": "must be a list of messages, and the only key of the body"},
)

# A high surrogate escape not followed by a low one. (A literal backslash before "ud8xx"
# matches too: such a body is refused, which is a 422 and never a changed value.)
_LONE_HIGH = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})")
_MATCH_LEN = 12


def not_json(exc: Exception) -> InvalidInput:
    # yajl's text is several lines (an excerpt and a caret); the first says what is wrong.
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, UnicodeDecodeError):
        first = "a string is not valid UTF-8 (or has a lone surrogate escape)"
    return InvalidInput(
        f"the body is not valid JSON: {first}", {"body": f"not valid JSON (UTF-8): {first}"}
    )


class ParseSource:
    """A body as the parser reads it: in pieces of adaptive size (see `MIN_READ`), with
    lone high surrogate escapes refused. The consumer sets `progress` whenever the parser
    gave it something since the last read; a read without progress is twice as large."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self._tail = b""
        self._size = MIN_READ
        self.progress = True

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            # ijson's file parsers first call read(0) to learn whether the source gives
            # bytes or text; consuming a piece there silently dropped the body's start.
            return b""
        # The size ijson asks for otherwise is ignored: see MIN_READ.
        self._size = MIN_READ if self.progress else min(2 * self._size, MAX_READ)
        self.progress = False
        data = self._source.read(self._size)
        window = self._tail + data
        if b"\\u" in window:
            # A match whose look-ahead runs past the end waits for the next read.
            limit = len(window) if not data else len(window) - _MATCH_LEN
            for match in _LONE_HIGH.finditer(window):
                if match.start() <= limit:
                    raise InvalidInput(
                        "the body has a lone UTF-16 surrogate escape",
                        {
                            "body": f"{match.group().decode()!s} is half of a UTF-16 "
                            "surrogate pair: not valid text; send the character itself "
                            "(UTF-8) or both halves"
                        },
                    )
        self._tail = window[-(_MATCH_LEN - 1) :]
        return data


def number(value: Decimal) -> float:
    number = float(value)
    if math.isinf(number):
        raise InvalidInput(
            "the body has a number out of range",
            {
                "body": f"the number {str(value)[:40]} is beyond the range of a double; send "
                "it as a string"
            },
        )
    return number


def basic_events(source: IO[bytes]) -> Iterator[tuple[str, Any]]:
    """ijson's `basic_parse` events of `source` (non-integers as Decimal), read through a
    `ParseSource`; ijson's errors are raised as they come (callers translate them)."""
    guarded = ParseSource(source)
    events: list[tuple[str, Any]] = ijson.utils.sendable_list()
    parser = ijson.basic_parse_coro(events)
    while data := guarded.read():
        parser.send(data)
        if events:
            guarded.progress = True
            yield from events
            del events[:]
    parser.close()
    yield from events


def batch_messages(source: IO[bytes]) -> Iterator[Any]:
    """The messages of a batch body, one at a time (any JSON value each: the caller checks
    them). Raises InvalidInput for JSON errors, MessageInvalid for a misshapen batch."""
    events = basic_events(source)
    try:
        event, _ = next(events)
        wrapped = event == "start_map"
        if wrapped:
            if next(events) != ("map_key", "messages") or next(events)[0] != "start_array":
                raise _NOT_A_BATCH
        elif event != "start_array":
            raise _NOT_A_BATCH
        yield from elements(events)
        if wrapped and next(events)[0] != "end_map":
            raise _NOT_A_BATCH
        for _ in events:  # nothing may follow (yajl reports trailing garbage)
            raise _NOT_A_BATCH
    except StopIteration:
        raise not_json(ValueError("premature end of the body")) from None
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise not_json(exc) from None


def elements(events: Iterator[tuple[str, Any]]) -> Iterator[Any]:
    """Each element of the array whose start_array was just read, built from `events`;
    returns after its end_array."""
    stack: list[Any] = []
    key: Any = None
    for event, value in events:
        if event == "map_key":
            key = value
            continue
        if event == "start_map" or event == "start_array":
            new: Any = {} if event == "start_map" else []
            if stack:
                top = stack[-1]
                if type(top) is dict:
                    top[key] = new
                else:
                    top.append(new)
            stack.append(new)
            if len(stack) > MAX_DEPTH:
                raise InvalidInput(
                    "the body is nested too deeply",
                    {"body": f"JSON nested more than {MAX_DEPTH} levels deep; flatten it"},
                )
            continue
        if event == "end_map" or event == "end_array":
            if not stack:
                return  # the batch's own array ended
            done = stack.pop()
            if not stack:
                yield done
            continue
        if type(value) is Decimal:
            value = number(value)
        if not stack:
            yield value
            continue
        top = stack[-1]
        if type(top) is dict:
            top[key] = value
        else:
            top.append(value)
    raise not_json(ValueError("premature end of the body"))
