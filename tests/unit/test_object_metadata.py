"""The nine x-amz-meta-* headers every object carries, by name.

Catches the planted bug "a metadata header renamed" (issue 17): with `objectname` written
as `object-name` in `s3.metadata.object_metadata_unchecked`, every other unit test passed;
this one fails.
"""

from __future__ import annotations

from s3dest.messages import EventMetadata
from s3dest.s3.metadata import object_metadata, object_metadata_unchecked

# Copied literally from the product page (reference/s3-destination-doc.txt, "each S3 object
# carries event metadata as S3 object metadata (x-amz-meta-* headers), including ..."). S3
# stores user metadata keys in lower case, so that is how s3dest sends them (SPEC §3).
PAGE_METADATA_FIELDS = (
    "projectId, installationId, connectionId, destinationId, operationId, objectName, "
    "event-id, timestamp, and topic"
)


def page_names() -> list[str]:
    return [name.strip().removeprefix("and ") for name in PAGE_METADATA_FIELDS.split(",")]


def sample() -> EventMetadata:
    # Every value different, so a header carrying another field's value is caught too.
    return EventMetadata(
        projectId="v-project",
        installationId="v-installation",
        connectionId="v-connection",
        destinationId="v-destination",
        operationId="v-operation",
        objectName="v-object",
        event_id="v-event",
        timestamp="1760410739",
        topic="v-topic",
    )


def test_the_page_names_nine_fields() -> None:
    assert len(page_names()) == 9 and len(set(page_names())) == 9


def test_objects_carry_exactly_the_nine_page_headers_in_lower_case() -> None:
    headers = object_metadata(sample())
    assert list(headers) == [name.lower() for name in page_names()]
    assert [f"x-amz-meta-{name}" for name in headers] == [
        "x-amz-meta-projectid",
        "x-amz-meta-installationid",
        "x-amz-meta-connectionid",
        "x-amz-meta-destinationid",
        "x-amz-meta-operationid",
        "x-amz-meta-objectname",
        "x-amz-meta-event-id",
        "x-amz-meta-timestamp",
        "x-amz-meta-topic",
    ]


def test_each_header_carries_its_own_field() -> None:
    assert object_metadata(sample()) == {
        "projectid": "v-project",
        "installationid": "v-installation",
        "connectionid": "v-connection",
        "destinationid": "v-destination",
        "operationid": "v-operation",
        "objectname": "v-object",
        "event-id": "v-event",
        "timestamp": "1760410739",
        "topic": "v-topic",
    }
    # The unchecked builder (what the worker's request builder uses) gives the same headers.
    assert object_metadata_unchecked(sample()) == object_metadata(sample())


def test_the_headers_are_the_template_metadata_names_lower_cased() -> None:
    """Key templates see metadata.<name> with the page's spelling; the headers are the same
    names, lower-cased, so a key and its object's metadata can always be matched."""
    meta = sample()
    assert {k.lower(): v for k, v in meta.namespace().items()} == object_metadata(meta)


def test_check_metadata_refuses_what_s3_would_refuse_and_names_it() -> None:
    """Mutation testing found `check_metadata` unexercised by the unit tests: every mutant
    survived. Each refusal is a message error (park it), with the reason, never a pass."""
    from s3dest.errors import MessageDeliveryError
    from s3dest.s3.metadata import METADATA_BUDGET_BYTES, check_metadata

    check_metadata({"objectname": "contacts", "installationid": "inst-1"})  # fine: no raise
    cases = {
        "non-ASCII": ({"objectname": "contacts-é"}, "x-amz-meta-objectname must be US-ASCII"),
        "control": ({"topic": "a\x01b"}, "x-amz-meta-topic contains control characters"),
        "too large": (
            {"operationid": "x" * METADATA_BUDGET_BYTES},
            f"S3 allows {METADATA_BUDGET_BYTES} bytes of user-defined metadata",
        ),
    }
    for name, (headers, reason) in cases.items():
        try:
            check_metadata(headers)
        except MessageDeliveryError as exc:
            assert exc.kind == "message", name
            assert exc.message.startswith("metadata rejected: "), exc.message
            assert reason in exc.message and reason in (exc.diagnosis or ""), (name, exc.message)
            # The diagnosis is the problem alone (check_metadata 7, 10 of session 10: the
            # diagnosis left to default to the message, "metadata rejected: …").
            assert exc.diagnosis == exc.message.removeprefix("metadata rejected: "), name
        else:
            raise AssertionError(f"{name}: check_metadata accepted {headers!r}")
    # Exactly at the budget is still accepted.
    key = "operationid"
    check_metadata({key: "x" * (METADATA_BUDGET_BYTES - len(key))})


def test_metadata_problems_name_the_field_and_say_what_to_do() -> None:
    """The refusals word for word, with the field each is under (mutants of the advice and
    of the "metadata" key had survived `make mutate`)."""
    from s3dest.s3.metadata import METADATA_BUDGET_BYTES, metadata_problems

    assert metadata_problems({"objectname": "é"}) == {
        "objectname": "x-amz-meta-objectname must be US-ASCII; 'é' has other characters. "
        "Send an ASCII value for this field"
    }
    size = len("operationid") + METADATA_BUDGET_BYTES
    assert metadata_problems({"operationid": "x" * METADATA_BUDGET_BYTES}) == {
        "metadata": f"the object metadata is {size} bytes; S3 allows {METADATA_BUDGET_BYTES} "
        "bytes of user-defined metadata. Shorten the longest of projectId, installationId, "
        "connectionId, operationId, objectName and topic"
    }
    # Exactly at the budget: no problem, on the one-pass path and, beside another field's
    # problem, on the slow one.
    at_budget = {"operationid": "x" * (METADATA_BUDGET_BYTES - len("operationid"))}
    assert metadata_problems(at_budget) == {}
    filler = METADATA_BUDGET_BYTES - len("operationid") - len("topic") - len("a\x01b")
    mixed = {"operationid": "x" * filler, "topic": "a\x01b"}
    assert metadata_problems(mixed) == {
        "topic": "x-amz-meta-topic contains control characters; remove them"
    }
