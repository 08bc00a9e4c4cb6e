"""Object key templates as the product page describes them (SPEC §2)."""

from __future__ import annotations

import copy
import re
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3dest.errors import KeyRenderError, KeyTemplateInvalid
from s3dest.keys import (
    DEFAULT_KEY_TEMPLATE,
    TIME_FIELDS,
    KeyTemplate,
    check_key,
    key_context,
    lint_key_template,
    preview_key,
    time_namespace,
)
from s3dest.keys.samples import READ_EXAMPLE, sample_read, sample_subscribe
from s3dest.messages import parse_rfc3339_ns

PAGE_DEFAULT_KEY = "2025-10-14T02:58:59.323405308Z_0199e0a8-149d-7ee9-9f50-0514403517f9.json"
EVENT_ID = "0199e0a8-149d-7ee9-9f50-0514403517f9"  # the read example's (see keys/samples.py)
OPERATION_ID = "0199e0a8-149d-7ee9-9f50-0514403517f9"
INSTALLATION_ID = "085353b1-07f1-4209-b471-7e028c0a68c8"

# The page's four "Custom object key examples", in its order, and the key each implies for
# the page's read example.
PAGE_EXAMPLES = [
    ("join('/', [metadata.objectName, metadata.operationId])", f"contacts/{OPERATION_ID}"),
    (
        "join('/', [metadata.objectName, time.date, metadata.\"event-id\"])",
        f"contacts/2025-10-14/{EVENT_ID}",
    ),
    ("join('', [time.rfc3339_nano, '_', metadata.\"event-id\", '.json'])", PAGE_DEFAULT_KEY),
    ("join('/', [data.installationId, metadata.operationId])", f"{INSTALLATION_ID}/{OPERATION_ID}"),
]

MAX_NS = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()) * 10**9 + 999_999_999
RFC3339_NANO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")


def render_read(template: str | None) -> str:
    sample = sample_read()
    return KeyTemplate(template).render_message(sample.metadata, sample.event_time_ns, sample.data)


def invalid(template: str | None) -> KeyTemplateInvalid:
    with pytest.raises(KeyTemplateInvalid) as info:
        lint_key_template(template)
    return info.value


# -- the page's keys ---------------------------------------------------------------------------


@pytest.mark.parametrize("template", [None, "", "   ", DEFAULT_KEY_TEMPLATE])
def test_default_template_renders_the_page_key_exactly(template: str | None) -> None:
    assert render_read(template) == PAGE_DEFAULT_KEY
    assert lint_key_template(template) == []


@pytest.mark.parametrize(("template", "expected"), PAGE_EXAMPLES)
def test_page_examples_render_the_keys_the_page_implies(template: str, expected: str) -> None:
    assert render_read(template) == expected


@pytest.mark.parametrize(("template", "expected"), PAGE_EXAMPLES)
def test_page_examples_pass_validation(template: str, expected: str) -> None:
    lint_key_template(template)  # compiles and renders: no KeyTemplateInvalid
    assert preview_key(template, None, project_id="p")["key"] == expected


def test_preview_renders_a_given_message_at_its_operation_time() -> None:
    result = preview_key(None, copy.deepcopy(READ_EXAMPLE), project_id="p")
    assert result["key"].startswith("2025-10-14T02:58:59.323405308Z_")
    assert result["sampleKeys"]["read"] == PAGE_DEFAULT_KEY


# -- the time namespace --------------------------------------------------------------------------


def test_time_namespace_of_the_read_example() -> None:
    assert time_namespace(parse_rfc3339_ns("2025-10-14T02:58:59.323405308Z")) == {
        "year": "2025",
        "month": "10",
        "day": "14",
        "hour": "02",
        "minute": "58",
        "second": "59",
        "date": "2025-10-14",
        "datetime": "2025-10-14T02:58:59",
        "unix": "1760410739",
        "rfc3339": "2025-10-14T02:58:59Z",
        "rfc3339_nano": "2025-10-14T02:58:59.323405308Z",
    }


def test_time_fields_are_zero_padded_strings() -> None:
    ns = int(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()) * 10**9 + 7
    t = time_namespace(ns)
    assert (t["month"], t["day"], t["hour"], t["minute"], t["second"]) == (
        "01",
        "02",
        "03",
        "04",
        "05",
    )
    assert t["rfc3339_nano"] == "2026-01-02T03:04:05.000000007Z"
    assert t["rfc3339"] == "2026-01-02T03:04:05Z"
    assert all(isinstance(t[name], str) for name in TIME_FIELDS)
    assert set(t) == set(TIME_FIELDS)


def test_time_is_utc_whatever_the_local_timezone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14
    time.tzset()
    try:
        assert time_namespace(0)["rfc3339_nano"] == "1970-01-01T00:00:00.000000000Z"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_the_default_key_is_utc_whatever_the_local_timezone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default template's fast path builds the timestamp without `time_namespace`
    (mutation testing: `keys.context.rfc3339_nano` 9, 11, local time, survived)."""
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14
    time.tzset()
    try:
        assert render_read(None) == PAGE_DEFAULT_KEY
    finally:
        monkeypatch.undo()
        time.tzset()


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=MAX_NS))
def test_time_fields_agree_with_the_event_time(ns: int) -> None:
    t = time_namespace(ns)
    dt = datetime.fromtimestamp(ns // 10**9, UTC)
    assert RFC3339_NANO.match(t["rfc3339_nano"]), t["rfc3339_nano"]
    assert len(t["rfc3339_nano"]) == 30  # always 9 fractional digits
    assert t["unix"] == str(ns // 10**9)
    assert (int(t["year"]), int(t["month"]), int(t["day"])) == (dt.year, dt.month, dt.day)
    assert (int(t["hour"]), int(t["minute"]), int(t["second"])) == (dt.hour, dt.minute, dt.second)
    assert len(t["year"]) == 4 and all(len(t[f]) == 2 for f in TIME_FIELDS[1:6])
    assert t["date"] == f"{t['year']}-{t['month']}-{t['day']}"
    assert t["datetime"] == f"{t['date']}T{t['hour']}:{t['minute']}:{t['second']}"
    assert t["rfc3339"] == t["datetime"] + "Z"
    assert t["rfc3339_nano"].startswith(t["datetime"] + ".")
    assert parse_rfc3339_ns(t["rfc3339_nano"]) == ns  # lossless


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=MAX_NS), st.integers(min_value=0, max_value=MAX_NS))
def test_time_keys_sort_lexicographically_in_time_order(a: int, b: int) -> None:
    for field in ("rfc3339_nano", "date", "datetime"):
        ka, kb = time_namespace(a)[field], time_namespace(b)[field]
        if a < b:
            assert ka <= kb, field
        if ka < kb:
            assert a < b, field
    # the default key too: time first, so objects list in event-time order
    ka = time_namespace(a)["rfc3339_nano"]
    kb = time_namespace(b)["rfc3339_nano"]
    assert (ka < kb) == (a < b)


# -- rendering failures are clear -----------------------------------------------------------------


def test_wrong_case_field_fails_with_a_did_you_mean() -> None:
    err = invalid("metadata.operationid")
    text = err.fields["keyTemplate"]
    assert "metadata.operationid" in text
    assert "did you mean metadata.operationId?" in text
    assert "case-sensitive" in text


def test_wrong_case_inside_join_also_names_the_field() -> None:
    err = invalid("join('/', [metadata.objectname, metadata.\"event-id\"])")
    assert "did you mean metadata.objectName?" in err.fields["keyTemplate"]


def test_unknown_namespace_says_where_templates_start() -> None:
    err = invalid("join('/', [meta.objectName, metadata.\"event-id\"])")
    assert "metadata, time or data" in err.fields["keyTemplate"]


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("data.result", "a list"),
        ('[metadata.objectName, metadata."event-id"]', "a list"),
        ("metadata.nothing", "null"),
        ("`null`", "null"),
        ("time", "an object"),
        ("''", "empty key"),
        ("join('', [metadata.connectionId, metadata.topic])", "empty key"),
    ],
)
def test_templates_that_do_not_give_a_string_fail_clearly(template: str, words: str) -> None:
    err = invalid(template)
    assert words in err.message
    assert words in err.fields["keyTemplate"]
    assert "sample read message" in err.message
    with pytest.raises(KeyRenderError) as info:
        render_read(template)
    assert words in info.value.message
    assert info.value.kind == "message"  # parks the message, never the destination


def test_non_string_results_suggest_the_fix() -> None:
    assert "to_string() or join()" in invalid("`5`").message


@pytest.mark.parametrize(
    ("template", "words", "text"),
    [
        ("`5`", "a number (5)", "5"),
        ("to_number(metadata.timestamp)", "a number (1760410739)", "1760410739"),
        ("`true`", "a boolean (true)", "true"),
    ],
)
def test_a_number_whatever_the_message_is_refused_but_scalars_render_as_text(
    template: str, words: str, text: str
) -> None:
    """SPEC §2: not a number when no data is read; numbers and booleans render as text."""
    err = invalid(template)
    assert words in err.fields["keyTemplate"]
    assert "reads no data field" in err.fields["keyTemplate"]
    assert render_read(template) == text


def test_numbers_and_booleans_from_the_data_render_as_text() -> None:
    """Issue 15 item 1: a numeric CRM field was refused ("evaluated to a number")."""
    data = copy.deepcopy(READ_EXAMPLE["data"])
    data["result"][0]["fields"].update(year=2025, score=1.5, vip=True)
    sample = sample_read()
    context = key_context(sample.metadata, sample.event_time_ns, data)
    assert KeyTemplate("data.result[0].fields.year").render(context) == "2025"
    template = KeyTemplate(
        "join('/', [data.result[0].fields.year, data.result[0].fields.score, "
        'data.result[0].fields.vip, metadata."event-id"])'
    )
    assert template.render(context) == f"2025/1.5/true/{EVENT_ID}"
    assert lint_key_template("join('/', [data.result[0].fields.year, metadata.\"event-id\"])")
    with pytest.raises(KeyRenderError, match=r"data.result\[0\].fields.year is missing"):
        KeyTemplate("join('/', [data.result[0].fields.year, 'x'])").render(
            key_context(sample.metadata, sample.event_time_ns, sample.data)
        )


def test_key_over_1024_bytes_fails() -> None:
    long_literal = "x" * 1000
    err = invalid(f"join('/', ['{long_literal}', metadata.\"event-id\"])")
    assert "1024" in err.message and "bytes" in err.message


def test_key_limit_counts_utf8_bytes_not_characters() -> None:
    assert check_key("é" * 512) == "é" * 512  # 1,024 bytes: allowed
    with pytest.raises(KeyRenderError, match="1026 bytes"):
        check_key("é" * 513)  # 513 characters, 1,026 bytes
    with pytest.raises(KeyRenderError, match="empty key"):
        check_key("")
    with pytest.raises(KeyRenderError, match="control character U\\+000A"):
        check_key("a\nb")


def test_render_failure_at_delivery_names_the_missing_field() -> None:
    sample = sample_subscribe()
    template = KeyTemplate("join('/', [data.operationId, metadata.\"event-id\"])")
    with pytest.raises(KeyRenderError) as info:
        template.render_message(sample.metadata, sample.event_time_ns, sample.data)
    assert "data.operationId is missing" in info.value.message


# -- compile errors name the problem --------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("metadata.event-id", "Unknown token '-'"),
        ("join('/', [metadata.objectName", "ends early"),
        ('metadata."event-id', 'Unclosed " delimiter'),
        ("join('/', [metadata.a,, metadata.b])", "unexpected ','"),
    ],
)
def test_compile_errors_name_the_problem(template: str, words: str) -> None:
    with pytest.raises(KeyTemplateInvalid) as info:
        KeyTemplate(template)
    err = info.value
    assert err.message.startswith("key template does not compile")
    assert words in err.message
    assert "at position" in err.message
    assert words in err.fields["keyTemplate"]
    assert 'metadata."event-id"' in err.fields["keyTemplate"]  # the hyphen hint


def test_unknown_function_is_reported() -> None:
    err = invalid("shout(metadata.objectName)")
    assert "shout" in err.message


# -- warnings -------------------------------------------------------------------------------------


def _has(warnings: list[str], words: str) -> bool:
    return any(words in w for w in warnings)


def test_warns_when_neither_event_id_nor_operation_id_is_in_the_key() -> None:
    warnings = lint_key_template("join('/', [metadata.objectName, time.rfc3339_nano])")
    assert _has(warnings, 'neither metadata."event-id" nor metadata.operationId')
    assert _has(warnings, "overwrites")


@pytest.mark.parametrize(
    "template",
    [
        "join('/', [metadata.objectName, metadata.\"event-id\"])",
        "join('/', [metadata.objectName, time.date, metadata.\"event-id\"])",
        DEFAULT_KEY_TEMPLATE,
    ],
)
def test_no_uniqueness_warning_with_event_id(template: str) -> None:
    assert not _has(lint_key_template(template), "neither")


@pytest.mark.parametrize("char", ["#", "%", "{", "^", "|", "~", "\\\\", "é"])
def test_warns_about_characters_aws_advises_to_avoid(char: str) -> None:
    warnings = lint_key_template(f"join('{char}', [metadata.objectName, metadata.\"event-id\"])")
    assert _has(warnings, "characters AWS advises to avoid")


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("join('', ['/', metadata.objectName, '/', metadata.\"event-id\"])", "starts with '/'"),
        ("join('/', [metadata.objectName, '', metadata.\"event-id\"])", "empty path segment"),
        ("join('/', [metadata.objectName, metadata.\"event-id\", ''])", "empty path segment"),
        ("join('/', ['..', metadata.objectName, metadata.\"event-id\"])", "'..' segment"),
        ("join('/', [metadata.objectName, '.', metadata.\"event-id\"])", "'..' segment"),
    ],
)
def test_a_segment_problem_in_every_read_key_is_an_error(template: str, problem: str) -> None:
    """Issue 13 item 9: a `..` segment was saved without a word, then the writer parked
    every message. Fails on the planted bug "segment problems are warnings again"."""
    with pytest.raises(KeyTemplateInvalid) as caught:
        lint_key_template(template)
    assert problem in caught.value.fields["keyTemplate"]
    assert "Change the template" in caught.value.fields["keyTemplate"]


def test_page_example_with_operation_id_warns_that_subscribe_keys_end_in_slash() -> None:
    # The page's subscribe example has no operationId: the key would be "company/".
    warnings = lint_key_template(PAGE_EXAMPLES[0][0])
    assert _has(warnings, "'company/'")
    assert _has(warnings, "empty path segment")


def test_warns_about_a_field_absent_in_subscribe_messages() -> None:
    warnings = lint_key_template("join('/', [data.operationId, metadata.\"event-id\"])")
    assert _has(warnings, "absent in subscribe messages")
    assert _has(warnings, "data.operationId")


def test_context_has_the_three_namespaces_with_string_metadata() -> None:
    sample = sample_read()
    context = key_context(sample.metadata, sample.event_time_ns, sample.data)
    assert set(context) == {"metadata", "time", "data"}
    assert set(context["metadata"]) == {
        "projectId",
        "installationId",
        "connectionId",
        "destinationId",
        "operationId",
        "objectName",
        "event-id",
        "timestamp",
        "topic",
    }
    assert all(isinstance(v, str) for v in context["metadata"].values())
    assert context["metadata"]["timestamp"] == "1760410739"
    assert context["data"]["installationId"] == INSTALLATION_ID


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        (
            "join('/', [metadata.objectName",
            "the expression ends early (an unclosed bracket, parenthesis or quote?) at position 30",
        ),
        ("metadata.a-b", "Unknown token '-' at position 10"),
        ("join('/', [metadata.objectName,, 'x'])", "unexpected ',' at position 31"),
        ("foo bar", "unexpected 'bar' (Unexpected token: bar) at position 4"),
        ("'unterminated", "Unclosed ' delimiter at position 0"),
    ],
)
def test_a_template_that_does_not_parse_says_what_and_where(template: str, problem: str) -> None:
    """The parse error in words a person can act on, exactly (mutation testing found the
    wording of `keys.template._parse_problem` unpinned: every mutant of it survived)."""
    with pytest.raises(KeyTemplateInvalid) as caught:
        KeyTemplate(template)
    assert caught.value.fields["keyTemplate"] == (
        f"not a valid JMESPath expression: {problem}. See jmespath.org; quote names with "
        'hyphens, e.g. metadata."event-id"'
    )


def test_a_missing_name_gets_the_close_one_suggested_but_not_in_data() -> None:
    """The hint after "... is missing": the close name (difflib), else the same name in
    another case, else nothing; never a guess inside `data` (payloads differ by message);
    a wrong root names the three. Every mutant of `_suggest` had survived `make mutate`."""
    sample = sample_subscribe()

    def hint(source: str) -> str:
        with pytest.raises(KeyRenderError) as info:
            KeyTemplate(source).render_message(sample.metadata, sample.event_time_ns, sample.data)
        return info.value.message

    suggestion = "; names are case-sensitive: did you mean metadata.objectName?)"
    assert "(metadata.objectname is missing" + suggestion in hint("metadata.objectname")
    assert "(metadata.objectNmae is missing" + suggestion in hint("metadata.objectNmae")
    assert "(metadata.OBJECTNAME is missing" + suggestion in hint("metadata.OBJECTNAME")
    assert "(metadata.zzzzqqq is missing)" in hint("metadata.zzzzqqq")
    assert "(data.operationid is missing)" in hint("data.operationid")
    assert "(meta is missing; a template starts from metadata, time or data)" in hint("meta.x")
