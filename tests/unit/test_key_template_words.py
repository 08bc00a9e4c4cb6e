"""What a key template's refusals and failures say, word for word (SPEC §2, the product
page's "Object key configuration").

A destination's owner reads these sentences in the dashboard ("Templates are validated when
you create or update the destination") and on a parked message; a test that only checks a
fragment (`"a list" in message`) lets the rest of the sentence change unseen. Mutation
testing (`make mutate`, docs/mutation.md, session 10) found each case below unpinned: the
docstrings name the mutants of `s3dest.keys.template` that survived without it.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from s3dest.errors import KeyRenderError, KeyTemplateInvalid
from s3dest.keys import DEFAULT_KEY_TEMPLATE, KeyTemplate, check_key, key_context
from s3dest.keys import lint_key_template as lint
from s3dest.keys.samples import READ_EXAMPLE, sample_read, sample_subscribe

FAILED = "key template failed for this message: "
NOT_TEXT = "; wrap values with to_string() or join()"
EVENT_ID = "0199e0a8-149d-7ee9-9f50-0514403517f9"  # the read sample's


def read_context(data: Any = None) -> dict[str, Any]:
    sample = sample_read()
    return key_context(sample.metadata, sample.event_time_ns, sample.data if data is None else data)


def subscribe_context() -> dict[str, Any]:
    sample = sample_subscribe()
    return key_context(sample.metadata, sample.event_time_ns, sample.data)


def failure(source: str, context: dict[str, Any]) -> str:
    with pytest.raises(KeyRenderError) as info:
        KeyTemplate(source).render(context)
    return info.value.message


def refusal(source: str) -> KeyTemplateInvalid:
    with pytest.raises(KeyTemplateInvalid) as info:
        KeyTemplate(source)
    return info.value


# -- the rendered key: S3's rules ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "key template rendered an empty key"),
        ("x" * 1025, "rendered key is 1025 bytes; S3 allows at most 1024 bytes of UTF-8"),
        ("é" * 513, "rendered key is 1026 bytes; S3 allows at most 1024 bytes of UTF-8"),
        *(
            (
                f"a{chr(code)}b",
                f"rendered key contains the control character U+{code:04X}; "
                "S3 cannot list such keys reliably",
            )
            # C0's ends, DEL and C1's ends: the edges of the ranges
            for code in (0x00, 0x1F, 0x7F, 0x80, 0x9F)
        ),
        ("a\ud800b", "rendered key contains an unpaired surrogate (not valid UTF-8)"),
    ],
    ids=[
        "empty",
        "1025 bytes",
        "1026 UTF-8 bytes",
        "U+0000",
        "U+001F",
        "DEL",
        "U+0080",
        "U+009F",
        "surrogate",
    ],
)
def test_a_key_s3_would_refuse_or_mislist_is_refused_in_these_words(key: str, message: str) -> None:
    """check_key 3 (the empty key's words), 16, 17, 19 (DEL and U+009F called a surrogate)
    and 23–29 (the control character's and the surrogate's words)."""
    with pytest.raises(KeyRenderError) as info:
        check_key(key)
    assert info.value.message == message
    assert info.value.kind == "message"  # the message is parked, never the destination


@pytest.mark.parametrize("key", ["a b", "a\xa0b", "x" * 1024, "é" * 512, "a~b"])
def test_a_space_a_no_break_space_and_exactly_1024_bytes_are_keys(key: str) -> None:
    """AWS advises against some characters, but they are valid keys; only C0, DEL, C1 and
    lone surrogates are refused, and 1,024 bytes is allowed."""
    assert check_key(key) == key


# -- a value that is not text -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "what"),
    [("data.result", "a list"), ("time", "an object"), ("`null`", "null")],
)
def test_a_value_that_is_not_text_is_named(source: str, what: str) -> None:
    """describe 2, 6, 8: the name of what the template gave (the old test checked that
    "a list" appeared somewhere in the sentence, which "XXa listXX" also passes)."""
    assert failure(source, read_context()) == (
        f"key template evaluated to {what}, not a string{NOT_TEXT}"
    )


def test_a_boolean_read_from_the_data_renders_as_text_and_lints() -> None:
    """The read sample's `raw.archived` is false. SPEC §2: numbers and booleans render as
    text, and only a template that reads no data is refused for giving one (reads_data 4,
    5: the data namespace not recognised; scalar_text 2, 5, 6: false spelled otherwise)."""
    source = "data.result[0].raw.archived"
    assert KeyTemplate(source).render(read_context()) == "false"
    lint(source)  # no KeyTemplateInvalid: whether a key is a scalar depends on the message
    data = copy.deepcopy(READ_EXAMPLE["data"])
    data["result"][0]["raw"]["archived"] = True
    assert KeyTemplate(source).render(read_context(data)) == "true"


# -- a function given the wrong type ------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        (
            "join('/', [metadata.objectName, `null`])",
            "join() was given null, where it takes string, number or boolean",
        ),
        (
            "join('/', [metadata.objectName, data.result])",
            "join() was given an array, where it takes string, number or boolean",
        ),
        (
            "join('/', [metadata.objectName, time])",
            "join() was given an object, where it takes string, number or boolean",
        ),
        ("length(`5`)", "length() was given a number, where it takes string, array or object"),
        ("contains(`5`, 'a')", "contains() was given a number, where it takes array or string"),
        ("abs(metadata.objectName)", "abs() was given a string, where it takes number"),
    ],
)
def test_a_function_given_the_wrong_type_says_what_it_got_and_what_it_takes(
    source: str, problem: str
) -> None:
    """_type_problem 2–35 and _json_type 1–9 (every one survived): the type given, with
    its article, and the types taken, listed with commas and "or", for one, two and three."""
    assert failure(source, read_context()) == FAILED + problem


def test_a_null_field_is_named_by_its_whole_path() -> None:
    """_null_hint 20, 21: the dotted path of a field that is null in this message."""
    data = {"customer": {"region": None}}
    source = "join('/', [data.customer.region, metadata.\"event-id\"])"
    assert failure(source, read_context(data)) == (
        FAILED + "join() was given null, where it takes string, number or boolean "
        "(data.customer.region is null in this message)"
    )


@pytest.mark.parametrize(
    ("source", "hint"),
    [
        (
            "join('/', [data.result[0].fields.annualrevenue, metadata.\"event-id\"])",
            "data.result[0].fields.annualrevenue is null in this message",
        ),
        (
            "join('/', [data.result[0].fields.nothing, metadata.\"event-id\"])",
            "data.result[0].fields.nothing is missing",
        ),
    ],
)
def test_a_field_behind_an_index_is_named_null_or_missing(source: str, hint: str) -> None:
    """_assumed_hint 21–29: a path through `[0]` (which the template's own paths do not
    follow) is found by evaluating once more with it assumed; "in this message" only for
    null, and nothing at all when nothing was assumed (the wrong-type cases above)."""
    assert failure(source, subscribe_context()) == (
        FAILED + f"join() was given null, where it takes string, number or boolean ({hint})"
    )


@pytest.mark.parametrize(
    "then",
    [
        "floor(`1e400`)",  # OverflowError, an ArithmeticError
        "data.result[::0]",  # ValueError
        "contains('a', `{}`)",  # TypeError
        "abs('a')",  # a JMESPath type error
    ],
)
def test_a_template_failing_only_once_the_field_is_assumed_still_names_the_field(
    then: str,
) -> None:
    """`field && f(...)` is null without the field; with the field assumed, f(...) runs
    and raises. The hint is still given, and nothing escapes as a crash
    (_assumed_hint 10–16: one of the four kinds of error no longer suppressed)."""
    source = f"data.result[0].fields.nothing && {then}"
    assert failure(source, read_context()) == (
        "key template evaluated to null, not a string "
        f"(data.result[0].fields.nothing is missing){NOT_TEXT}"
    )


def test_the_assumed_evaluation_renders_numbers_as_text_like_delivery() -> None:
    """_assumed_hint 2: evaluated with JMESPath's own functions, `join` of a number fails
    before the field is reached, and the hint is lost."""
    source = "join('', [`1`]) && data.result[0].fields.nothing"
    assert failure(source, read_context()) == (
        "key template evaluated to null, not a string "
        f"(data.result[0].fields.nothing is missing){NOT_TEXT}"
    )


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("shout(metadata.objectName)", "Unknown function: shout()"),
        ("data.result[::0]", "ValueError: slice step cannot be zero"),
    ],
)
def test_other_failures_are_reported_without_a_wrong_hint(source: str, problem: str) -> None:
    """evaluate 14 (the hint looked up in no context: "metadata is missing; a template
    starts from …", which is false) and 16 (the Python error's name)."""
    assert failure(source, read_context()) == FAILED + problem


# -- refused when created -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "to_string(&metadata)",
        "&metadata",
        # the `&` listed before a slice: the walk goes past the slice's bare numbers
        "[to_string(&metadata), data.result[1:]]",
    ],
)
def test_an_expression_reference_outside_its_functions_is_refused(source: str) -> None:
    """_check_exprefs 5 (the walk stopped at the slice's numbers) and 19–27 (the words)."""
    err = refusal(source)
    assert err.message == "key template uses '&' outside sort_by, min_by, max_by or map"
    assert err.fields == {
        "keyTemplate": "'&expression' is only meaningful as an argument of sort_by, min_by, "
        "max_by or map; remove the '&'"
    }


@pytest.mark.parametrize(
    "source",
    [
        "sort_by(data.result, &fields.id)[0].fields.id",
        "min_by(data.result, &fields.id).fields.id",
        "max_by(data.result, &fields.id).fields.id",
        "map(&fields.id, data.result)[0]",
    ],
)
def test_an_expression_reference_inside_its_functions_renders(source: str) -> None:
    """_check_exprefs 28, 29, 31, 32: the function around the `&` no longer recognised."""
    assert KeyTemplate(source).render(read_context()) == "438"


def test_a_template_nested_too_deeply_is_refused_in_these_words() -> None:
    """__init__ 15, 16, 20, 21 (the words; the property tests check only that it raises)."""
    err = refusal("(" * 1000 + 'metadata."event-id"' + ")" * 1000)
    assert err.message == "key template is nested too deeply"
    assert err.fields == {"keyTemplate": "nested too deeply to evaluate; simplify the expression"}


def test_a_template_that_ends_after_a_dot_says_where() -> None:
    """_parse_problem 47, 49–51: jmespath reports `metadata.` as a ParseError whose token is
    the empty end of input (not its "incomplete expression" error), which is called an
    invalid expression, not "unexpected ''"."""
    err = refusal("metadata.")
    assert err.message.startswith("key template does not compile: invalid expression (")
    assert err.message.endswith("got: eof) at position 9")


@pytest.mark.parametrize("source", [None, "", "   "])
def test_no_template_means_the_page_default(source: str | None) -> None:
    """The page: "If you don't specify one, the default key is the message timestamp
    followed by the message ID" (__init__ 7: the template kept no source)."""
    assert KeyTemplate(source).source == DEFAULT_KEY_TEMPLATE
    assert KeyTemplate(source).render(read_context()) == (
        f"2025-10-14T02:58:59.323405308Z_{EVENT_ID}.json"
    )
    assert KeyTemplate("metadata.objectName").source == "metadata.objectName"


@pytest.mark.parametrize("source", ["'\ud800'", "'\udfff'"])
def test_a_template_with_a_lone_surrogate_is_refused_in_these_words(source: str) -> None:
    """_check_source 5 (U+DFFF, the last surrogate, let through) and 11–19 (the words)."""
    err = refusal(source)
    assert err.message == "key template is not valid UTF-8"
    assert err.fields == {"keyTemplate": "contains an unpaired surrogate; send valid UTF-8 text"}


def test_a_template_over_4096_bytes_is_refused_in_these_words() -> None:
    """_check_source 20 (4,096 bytes refused) and 25, 26 (the words); U+E000, just past
    the surrogates, is text like any other (_check_source 6)."""
    literal = "x" * (4096 - len("join('', ['', metadata.\"event-id\"])"))
    exactly = f"join('', ['{literal}', metadata.\"event-id\"])"
    assert len(exactly.encode()) == 4096
    KeyTemplate(exactly)
    err = refusal(exactly.replace("'x", "'xx"))
    assert err.message == "key template is too long"
    assert err.fields == {"keyTemplate": "templates are limited to 4,096 bytes; shorten it"}
    assert KeyTemplate("join('', ['\ue000', metadata.\"event-id\"])").render(read_context()) == (
        f"\ue000{EVENT_ID}"
    )


def test_a_template_may_start_from_the_current_node() -> None:
    """`@` is JMESPath's current node: `@.metadata.objectName` is metadata.objectName
    (_field_paths 25: an empty path recorded for it crashed the check of what it reads)."""
    source = "@.metadata.objectName"
    lint(source)
    assert KeyTemplate(source).render(read_context()) == "contacts"
