"""`prepare` builds the stored body directly from the items as received; it must give
byte for byte what the model round trip gives (validate, dump each item, normalise,
re-validate the normalised message, dump it), or the same error."""

from __future__ import annotations

import string
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from s3dest.errors import MessageInvalid
from s3dest.ingest.envelope import ProjectView
from s3dest.ingest.normalise import ordered_data as _ordered_data
from s3dest.ingest.normalise import prepare
from s3dest.messages import (
    IncomingMessage,
    check_complete,
    data_dict,
    encode_body,
    parse_incoming,
)
from s3dest.providers import normalize_result
from s3dest.store.ingest import RoutingTarget as _Destination

PROJECT = "p" * 36
_DESTINATION = _Destination(id="d1", name="bench", hold=False)

JSON_LEAVES = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=4)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
RAW_EVENTS = st.fixed_dictionaries(
    {},
    optional={
        "subscriptionType": st.sampled_from(["contact.creation", "x.merge", "bad"]) | JSON_VALUES,
        "ChangeEventHeader": st.fixed_dictionaries(
            {}, optional={"changeType": st.sampled_from(["CREATE", "GAP_DELETE"]) | JSON_VALUES}
        ),
        "objectId": st.integers(0, 99) | st.text(max_size=3),
        "propertyName": st.sampled_from(["Foo", ""]),
        "propertyValue": JSON_VALUES,
    },
)
ITEMS = st.fixed_dictionaries(
    {},
    optional={
        "fields": st.dictionaries(st.text(max_size=3), JSON_VALUES, max_size=3) | JSON_VALUES,
        "raw": st.fixed_dictionaries(
            {},
            optional={
                "id": st.text(max_size=3) | st.integers(0, 9),
                "properties": st.dictionaries(
                    st.sampled_from(["A", "a", "Id", "x"]), JSON_VALUES, max_size=3
                ),
                "attributes": JSON_VALUES,
            },
        )
        | JSON_VALUES,
        "rawEvent": RAW_EVENTS | JSON_VALUES,
        "subscribeEventType": st.sampled_from(["create", "update", None]) | JSON_VALUES,
        "providerEventType": st.sampled_from(["x", None]) | JSON_VALUES,
    },
)
MESSAGES = st.fixed_dictionaries(
    {
        "action": st.sampled_from(["read", "subscribe"]),
        "provider": st.sampled_from(["hubspot", "salesforce", "HubSpot", "other"]),
        "installationId": st.just("i"),
        "objectName": st.just("o"),
        "destination": st.sampled_from(["bench", "d1"]),
        "result": st.lists(ITEMS, max_size=3),
    },
    optional={
        name: st.text(string.ascii_letters, max_size=4) | st.none()  # valid as S3 metadata
        for name in (
            "groupRef",
            "groupName",
            "consumerRef",
            "consumerName",
            "installationUpdateTime",
            "operationId",
            "operationTime",
            "connectionId",
            "topic",
        )
    },
)


def _view() -> ProjectView:
    return ProjectView(by_ref={"bench": _DESTINATION, "d1": _DESTINATION}, manifest=None)


def _round_trip_body(obj: dict[str, Any]) -> bytes:
    """The body as the model round trip makes it (routing and metadata checks aside)."""
    message = parse_incoming(obj)
    result = [
        normalize_result(
            message.provider,
            message.action,
            item.model_dump(exclude_unset=True),
            selected_fields=None,
            index=i,
        )
        for i, item in enumerate(message.result)
    ]
    normalized = IncomingMessage.model_validate(
        {**message.model_dump(exclude_unset=True), "result": result}
    )
    check_complete(normalized)
    return encode_body(_ordered_data(PROJECT, data_dict(normalized)))


def _outcome(fn: Any, obj: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "ok", fn(obj)
    except MessageInvalid:
        return "invalid", None
    except ValidationError:
        return "validation error", None


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(obj=MESSAGES)
def test_prepare_stores_what_the_model_round_trip_gives(obj: dict[str, Any]) -> None:
    obj = orjson.loads(orjson.dumps(obj))
    expected = _outcome(_round_trip_body, obj)
    got = _outcome(lambda o: prepare(PROJECT, o, _view()).row["body"], obj)
    assert got == expected


@pytest.mark.parametrize("provider_type", [5, [1], {"a": 1}])
def test_an_event_type_of_another_json_type_still_fails_validation(provider_type: Any) -> None:
    obj = {
        "action": "subscribe",
        "provider": "hubspot",
        "installationId": "i",
        "objectName": "o",
        "destination": "bench",
        "result": [
            {
                "fields": {"a": 1},
                "subscribeEventType": "create",
                "rawEvent": {"subscriptionType": provider_type},
            }
        ],
    }
    with pytest.raises(ValidationError):
        prepare(PROJECT, obj, _view())


def test_compact_chunks_keeps_every_byte_of_a_file_body() -> None:
    """`s3dest put` of a 40 MiB file failed with "not valid JSON": ijson asks its source for
    read(0) first, and the adaptive `ParseSource` answered with the body's first 64 KiB,
    which were lost. Fails on that planted bug (read(0) not answered with b"")."""
    import io

    import orjson

    from s3dest.ingest.bodies import CompactResult, compact_chunks

    message = {
        "data": {
            "objectName": "contacts",
            "result": [
                {"fields": {"id": str(i), "city": "Zürich", "s": i * 0.5}} for i in range(5000)
            ],
        }
    }
    pretty = orjson.dumps(message, option=orjson.OPT_INDENT_2)
    assert len(pretty) > 4 * 64 * 1024
    result = CompactResult()
    compact = b"".join(compact_chunks(io.BytesIO(pretty), result))
    assert orjson.loads(compact) == message
    assert result.result_items == 5000 and result.envelope["objectName"] == "contacts"
