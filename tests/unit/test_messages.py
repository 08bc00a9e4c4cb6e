"""Messages as the product page shows them: body, event-id (UUIDv7), event time, bad input."""

from __future__ import annotations

import copy
import re
import time
import uuid
from typing import Any

import orjson
import pytest

from s3dest.errors import MessageInvalid
from s3dest.keys.samples import READ_EXAMPLE, SUBSCRIBE_EXAMPLE
from s3dest.messages import (
    data_dict,
    encode_body,
    new_stamp,
    parse_data,
    parse_incoming,
    parse_rfc3339_ns,
    uuid7,
)

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def _read(**changes: Any) -> dict[str, Any]:
    message = copy.deepcopy(READ_EXAMPLE)
    message["data"].update(changes)
    return message


def _invalid(message: Any) -> MessageInvalid:
    with pytest.raises(MessageInvalid) as info:
        parse_data(message)
    return info.value


# -- the body ---------------------------------------------------------------------------------


@pytest.mark.parametrize("example", [READ_EXAMPLE, SUBSCRIBE_EXAMPLE], ids=["read", "subscribe"])
def test_page_examples_encode_to_their_compact_json_in_page_order(example: dict[str, Any]) -> None:
    body = encode_body(data_dict(parse_data(copy.deepcopy(example))))
    assert body == orjson.dumps(example)
    assert list(orjson.loads(body)["data"]) == list(example["data"])  # page key order
    assert b'":' in body and b'": ' not in body  # compact: no whitespace after separators


def test_subscribe_example_keeps_nulls_and_event_fields() -> None:
    data = orjson.loads(encode_body(data_dict(parse_data(copy.deepcopy(SUBSCRIBE_EXAMPLE)))))
    item = data["data"]["result"][0]
    assert list(item) == ["fields", "subscribeEventType", "providerEventType", "raw", "rawEvent"]
    assert item["fields"]["annualrevenue"] is None
    assert item["subscribeEventType"] == "update"
    assert item["rawEvent"]["ChangeEventHeader"]["commitNumber"] == 12041091891110


def test_optional_fields_left_out_stay_out_of_the_body() -> None:
    message = _read()
    for name in ("groupRef", "groupName", "consumerRef", "consumerName", "operationId"):
        del message["data"][name]
    body = orjson.loads(encode_body(data_dict(parse_data(message))))
    assert "groupRef" not in body["data"] and "operationId" not in body["data"]
    assert body == message


def test_non_ascii_payload_is_utf8_not_escaped() -> None:
    message = _read()
    message["data"]["result"][0]["fields"]["city"] = "Zürich 東京"
    body = encode_body(data_dict(parse_data(message)))
    assert "Zürich 東京".encode() in body


# -- bad messages name the field ----------------------------------------------------------------


def test_unknown_field_is_named() -> None:
    err = _invalid(_read(installationID="x"))
    assert "data.installationID" in err.fields
    assert "unknown field" in err.fields["data.installationID"]
    assert "data.installationID" in err.message


def test_unknown_field_in_a_result_item_is_named() -> None:
    message = _read()
    message["data"]["result"][0]["Fields"] = {}
    err = _invalid(message)
    assert "data.result[0].Fields" in err.fields


def test_missing_installation_id_is_named() -> None:
    message = _read()
    del message["data"]["installationId"]
    err = _invalid(message)
    assert err.fields == {"data.installationId": "required; add it"}
    assert "installationId" in err.message


@pytest.mark.parametrize("action", ["write", "READ", "", None])
def test_bad_action_is_named_with_the_allowed_values(action: Any) -> None:
    err = _invalid(_read(action=action))
    assert "data.action" in err.fields
    text = err.fields["data.action"]
    assert "'read'" in text and "'subscribe'" in text
    assert repr(action) in text


def test_subscribe_without_subscribe_event_type_is_named() -> None:
    message = copy.deepcopy(SUBSCRIBE_EXAMPLE)
    del message["data"]["result"][0]["subscribeEventType"]
    err = _invalid(message)
    text = err.fields["data.result[0].subscribeEventType"]
    assert "subscribe" in text
    for value in ("create", "update", "delete", "associationUpdate"):
        assert value in text


def test_bad_subscribe_event_type_is_named() -> None:
    message = copy.deepcopy(SUBSCRIBE_EXAMPLE)
    message["data"]["result"][0]["subscribeEventType"] = "updated"
    err = _invalid(message)
    assert "'updated'" in err.fields["data.result[0].subscribeEventType"]


def test_read_items_do_not_need_an_event_type() -> None:
    assert parse_data(copy.deepcopy(READ_EXAMPLE)).action == "read"


@pytest.mark.parametrize(
    "message",
    [READ_EXAMPLE["data"], {"data": READ_EXAMPLE["data"], "extra": 1}, [READ_EXAMPLE], "x"],
    ids=["unwrapped", "extra-top-level", "list", "string"],
)
def test_a_message_file_must_be_wrapped_in_data(message: Any) -> None:
    err = _invalid(copy.deepcopy(message))
    assert '"data"' in err.message


def test_every_bad_field_is_reported_at_once() -> None:
    message = _read(action="write", provider="")
    del message["data"]["objectName"]
    err = _invalid(message)
    assert {"data.action", "data.provider", "data.objectName"} <= set(err.fields)
    assert "(and 2 more)" in err.message


def test_ingest_envelope_names_fields_without_the_data_prefix() -> None:
    envelope = dict(copy.deepcopy(READ_EXAMPLE["data"]), destination="d", topic="t")
    assert parse_incoming(envelope).topic == "t"
    del envelope["installationId"]
    with pytest.raises(MessageInvalid) as info:
        parse_incoming(envelope, prefix="messages[3]")
    assert "messages[3].installationId" in info.value.fields


# -- event-id: UUIDv7 ---------------------------------------------------------------------------


def test_event_id_is_a_uuid7_with_rfc_variant_and_the_stamp_time() -> None:
    before = time.time_ns() // 1_000_000
    stamp = new_stamp()
    after = time.time_ns() // 1_000_000
    assert UUID7.match(stamp.event_id), stamp.event_id
    parsed = uuid.UUID(stamp.event_id)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    unix_ms = parsed.int >> 80
    assert before <= unix_ms <= after
    assert unix_ms == stamp.event_time_ns // 1_000_000


def test_event_ids_are_unique_and_monotonic_within_a_process() -> None:
    ids = [uuid7() for _ in range(20_000)]
    assert all(UUID7.match(i) for i in ids[:100])
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)  # string order == time order


def test_event_ids_stay_monotonic_when_the_clock_stands_still_or_goes_back() -> None:
    now = time.time_ns()
    stamps = [new_stamp(now) for _ in range(5_000)]  # > 4096: the 12-bit counter overflows
    stamps += [new_stamp(now - 10_000_000_000) for _ in range(100)]  # clock stepped back 10 s
    ids = [s.event_id for s in stamps]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 7 for i in ids)


# -- event time: nanoseconds ------------------------------------------------------------------


def test_event_time_has_nanosecond_precision() -> None:
    stamp = new_stamp(1_760_410_739_323_405_308)
    assert stamp.event_time_ns == 1_760_410_739_323_405_308
    assert stamp.event_time.isoformat() == "2025-10-14T02:58:59+00:00"
    live = new_stamp()
    assert isinstance(live.event_time_ns, int)
    assert abs(live.event_time_ns - time.time_ns()) < 60 * 1_000_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-10-14T02:58:59.323405308Z", 1_760_410_739_323_405_308),
        ("2025-10-14T02:58:59.323Z", 1_760_410_739_323_000_000),
        ("2025-10-14T02:58:59Z", 1_760_410_739_000_000_000),
        ("2025-10-14T04:58:59.000000001+02:00", 1_760_410_739_000_000_001),
        ("2025-10-14T02:58:59.1234567891234Z", 1_760_410_739_123_456_789),  # truncated to ns
    ],
)
def test_rfc3339_times_parse_to_exact_nanoseconds(text: str, expected: int) -> None:
    assert parse_rfc3339_ns(text) == expected
