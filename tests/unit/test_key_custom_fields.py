"""Key templates that read a customer's own fields (issue 15 item 1, SPEC §2).

The built-in samples cannot know a customer's CRM fields: a field they lack is a warning
with the fix, the same for the read and the subscribe sample; what no message can fix
(compile errors, structural problems) stays an error.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from s3dest.errors import KeyTemplateInvalid
from s3dest.keys import lint_key_template, preview_key
from s3dest.keys.lint import RecentMessage
from s3dest.keys.samples import READ_EXAMPLE, SUBSCRIBE_EXAMPLE, sample_read

REGION = "join('/', [data.result[0].fields.custom_region, metadata.\"event-id\"])"
PROJECT = "9482e676-4874-43a4-beea-fa8081d13a07"


def _with_region(example: dict[str, Any], region: object = "emea") -> dict[str, Any]:
    message = copy.deepcopy(example)
    message["data"]["result"][0]["fields"]["custom_region"] = region
    return message


def test_a_custom_field_is_a_warning_with_the_fix_not_an_error() -> None:
    """Failed before: 'does not render for a sample read message' (KeyTemplateInvalid)."""
    warnings = lint_key_template(REGION)
    (warning,) = [w for w in warnings if "custom_region" in w]
    assert "data.result[0].fields.custom_region" in warning
    assert "sample read and subscribe messages" in warning
    assert "data.result[0].fields.custom_region || 'unknown'" in warning


def test_read_and_subscribe_are_treated_alike() -> None:
    """Failed before: lacking in the read sample refused, lacking in subscribe a warning."""
    only_subscribe_has_it = (
        "join('/', [data.result[0].rawEvent.ChangeEventHeader.entityName, metadata.\"event-id\"])"
    )
    warnings = lint_key_template(only_subscribe_has_it)
    assert any("sample read message does not have" in w for w in warnings), warnings
    assert any(
        "a field absent in subscribe messages" in w
        for w in lint_key_template("join('/', [data.operationId, metadata.\"event-id\"])")
    )


def test_a_data_field_that_is_metadata_suggests_the_metadata_field() -> None:
    warnings = lint_key_template("join('/', [data.eventId, metadata.objectName])")
    assert any('use metadata."event-id" instead' in w for w in warnings), warnings


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("join('/', [metadata.operationid, metadata.\"event-id\"])", "did you mean"),
        ("data.result", "a list"),
        ("join('/', [data.result[0].fields.custom_region, ''])", "empty path segment"),
        ("join('/', [metadata.objectName", "not a valid JMESPath"),
    ],
)
def test_structural_problems_stay_errors(template: str, words: str) -> None:
    with pytest.raises(KeyTemplateInvalid) as info:
        lint_key_template(template)
    assert words in info.value.fields["keyTemplate"]


def test_preview_shows_the_samples_with_a_placeholder_and_the_real_messages() -> None:
    sample = sample_read()
    real = _with_region(READ_EXAMPLE)["data"]
    from s3dest.keys.context import key_context

    recent = [
        RecentMessage(
            "0199e0a8-0000-7000-8000-00000000aaaa",
            key_context(sample.metadata, sample.event_time_ns, real),
        ),
        RecentMessage(
            "0199e0a8-0000-7000-8000-00000000bbbb",
            key_context(sample.metadata, sample.event_time_ns, READ_EXAMPLE["data"]),
        ),
    ]
    result = preview_key(REGION, None, project_id=PROJECT, recent=recent)
    assert result["sampleKeys"]["read"].startswith("{custom_region}/")
    ok, bad = result["recentKeys"]
    assert ok == {
        "eventId": "0199e0a8-0000-7000-8000-00000000aaaa",
        "key": f"emea/{sample.metadata.event_id}",
        "error": None,
    }
    assert bad["key"] is None
    assert "data.result[0].fields.custom_region is missing" in bad["error"]
    assert any("fails for 1 of the 2 most recent real messages" in w for w in result["warnings"])


def test_preview_of_the_users_message_warns_about_that_key() -> None:
    """Failed before: render-key's warnings were the sample's (its key and fields)."""
    message = _with_region(SUBSCRIBE_EXAMPLE, "apac#1")
    result = preview_key(REGION, message, project_id=PROJECT)
    assert result["key"].startswith("apac#1/")
    assert any("apac#1" in w and "advises to avoid" in w for w in result["warnings"])
    assert not any("custom_region, which" in w for w in result["warnings"])


def test_preview_takes_the_message_as_send_does() -> None:
    """Failed before: only {"data": {...}} was read; a send-shaped message had no data."""
    data = _with_region(READ_EXAMPLE, 7)["data"]
    sent = {"destination": "ampersandS3Bucket", "connectionId": "conn-1", **data}
    template = "join('/', [metadata.objectName, data.result[0].fields.custom_region, "
    template += 'metadata."event-id"])'
    result = preview_key(template, sent, project_id=PROJECT)
    assert result["key"].startswith("contacts/7/")


# -- a missing list is a missing field -------------------------------------------------------

TAGS = "join('/', [join('-', data.result[0].fields.tags[*]), metadata.\"event-id\"])"


@pytest.mark.parametrize(
    "template",
    [
        TAGS,
        "join('/', [join('-', data.result[0].fields.tags), metadata.\"event-id\"])",
        "join('/', [join('-', data.result[0].fields.tags[].name), metadata.\"event-id\"])",
        "join('/', [join('-', data.result[0].fields.tags[?kind=='crm'].name), "
        'metadata."event-id"])',
    ],
    ids=["projection", "join-argument", "flatten", "filter"],
)
def test_a_list_the_samples_lack_is_a_warning_with_a_list_fallback(template: str) -> None:
    """Failed before: refused, 'does not render for a sample read message: join() was
    given null' (JMESPath projects a missing field to null). Now the warning of a missing
    scalar field, with a fallback that is a list."""
    (warning,) = [w for w in lint_key_template(template) if "fields.tags" in w]
    assert "sample read and subscribe messages" in warning
    assert "would be parked" in warning
    assert "(data.result[0].fields.tags || ['unknown'])" in warning


def test_the_list_fallback_gives_a_key_to_a_message_without_the_list() -> None:
    fixed = TAGS.replace(
        "data.result[0].fields.tags[*]", "(data.result[0].fields.tags || ['unknown'])[*]"
    )
    assert not [w for w in lint_key_template(fixed) if "tags" in w]
    sample = sample_read()
    from s3dest.keys.context import key_context
    from s3dest.keys.template import KeyTemplate

    context = key_context(sample.metadata, sample.event_time_ns, READ_EXAMPLE["data"])
    assert KeyTemplate(fixed).render(context) == f"unknown/{sample.metadata.event_id}"


def test_a_missing_list_in_a_real_message_fails_as_a_missing_field_does() -> None:
    """At delivery (and for the recent messages) the same words as a missing scalar."""
    from s3dest.errors import KeyRenderError
    from s3dest.keys.context import key_context
    from s3dest.keys.template import KeyTemplate

    sample = sample_read()
    tagged = copy.deepcopy(READ_EXAMPLE)
    tagged["data"]["result"][0]["fields"]["tags"] = ["vip", "emea"]
    template = KeyTemplate(TAGS)
    context = key_context(sample.metadata, sample.event_time_ns, tagged["data"])
    assert template.render(context) == f"vip-emea/{sample.metadata.event_id}"
    for data, words in (
        (READ_EXAMPLE["data"], "data.result[0].fields.tags is missing"),
        (_with_tags(None)["data"], "data.result[0].fields.tags is null in this message"),
    ):
        with pytest.raises(KeyRenderError) as info:
            template.render(key_context(sample.metadata, sample.event_time_ns, data))
        assert words in info.value.message


def _with_tags(tags: object) -> dict[str, Any]:
    message = copy.deepcopy(READ_EXAMPLE)
    message["data"]["result"][0]["fields"]["tags"] = tags
    return message
