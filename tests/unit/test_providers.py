"""normalize_result: the product page's examples, provider rules, and error paths."""

from __future__ import annotations

import json
from typing import Any

import pytest

from s3dest.errors import MessageInvalid
from s3dest.providers import SUBSCRIBE_EVENT_TYPES, normalize_result, provider_event_types

# Copied literally from reference/s3-destination-doc.txt ("Read action messages").
PAGE_READ_MESSAGE = """
{
  "data": {
    "action": "read",
    "projectId": "9482e676-4874-43a4-beea-fa8081d13a07",
    "provider": "hubspot",
    "groupRef": "group-id-1",
    "groupName": "group-name-1",
    "consumerRef": "user-id",
    "consumerName": "user-name",
    "installationId": "085353b1-07f1-4209-b471-7e028c0a68c8",
    "installationUpdateTime": "2025-10-14T02:58:55.595861Z",
    "objectName": "contacts",
    "operationId": "0199e0a8-149d-7ee9-9f50-0514403517f9",
    "operationTime": "2025-10-14T02:58:59.323405308Z",
    "result": [
      {
        "fields": {
          "id": "438",
          "firstname": "Maria",
          "lastname": "Johnson",
          "email": "maria@example.com",
          "city": "Brisbane"
        },
        "raw": {
          "archived": false,
          "createdAt": "2023-10-26T17:55:48.301Z",
          "id": "438",
          "properties": {
            "firstname": "Maria",
            "lastname": "Johnson",
            "email": "maria@example.com",
            "city": "Brisbane",
            "createdate": "2023-10-26T17:55:48.301Z"
          }
        }
      }
    ]
  }
}
"""

# Copied literally from reference/s3-destination-doc.txt ("Subscribe action messages").
PAGE_SUBSCRIBE_MESSAGE = """
{
  "data": {
    "action": "subscribe",
    "projectId": "9482e676-4874-43a4-beea-fa8081d13a07",
    "provider": "salesforce",
    "groupRef": "webhook-demo-group-id",
    "groupName": "webhook-demo-group-name",
    "consumerRef": "user-id",
    "consumerName": "user-name",
    "installationId": "0c9230e1-8fbe-4b28-bf10-2beee8fbf4ce",
    "installationUpdateTime": "2025-04-10T23:00:52.618406Z",
    "objectName": "company",
    "operationTime": "2025-04-10T23:22:25.000Z",
    "result": [
      {
        "fields": {
          "id": "001Dp00000ZDgmxIAD",
          "annualrevenue": null,
          "website": null
        },
        "subscribeEventType": "update",
        "providerEventType": "UPDATE",
        "raw": {
          "Id": "001Dp00000ZDgmxIAD",
          "AnnualRevenue": null,
          "Description": "Notes about the account",
          "Name": "Acme Corp",
          "Website": null,
          "attributes": {
            "type": "Account",
            "url": "/services/data/v59.0/sobjects/Account/001Dp00000ZDgmxIAD"
          }
        },
        "rawEvent": {
          "ChangeEventHeader": {
            "changeOrigin": "com/salesforce/api/soap/63.0;client=SfdcInternalAPI/",
            "changeType": "UPDATE",
            "changedFields": ["Description", "LastModifiedDate"],
            "commitNumber": 12041091891110,
            "commitTimestamp": 1744327345000,
            "commitUser": "005Dp000003Cd1SIAS",
            "entityName": "Account",
            "recordId": "001Dp00000ZDgmxIAD",
            "sequenceNumber": 1,
            "transactionKey": "00051705-2e99-d1e5-7e7a-48e3af682d07"
          },
          "Description": "Notes about the account",
          "LastModifiedDate": "2025-04-10T23:22:25.000Z"
        }
      }
    ]
  }
}
"""


def page_item(message: str) -> dict[str, Any]:
    item: dict[str, Any] = json.loads(message)["data"]["result"][0]
    return item


def dumps(value: Any) -> str:
    """JSON text with key order preserved, so equality also checks order."""
    return json.dumps(value)


# -- acceptance: the page's examples ------------------------------------------------------


def test_page_read_example_is_reproduced_from_hubspot_raw_alone() -> None:
    expected = page_item(PAGE_READ_MESSAGE)
    item = {"raw": expected["raw"]}
    out = normalize_result(
        "hubspot", "read", item, selected_fields={"firstname", "lastname", "email", "city"}
    )
    assert out == expected
    assert dumps(out) == dumps(expected)  # same keys in the same order, fields included
    assert list(out["fields"]) == ["id", "firstname", "lastname", "email", "city"]


def test_page_read_example_without_selection_also_has_createdate() -> None:
    raw = page_item(PAGE_READ_MESSAGE)["raw"]
    out = normalize_result("hubspot", "read", {"raw": raw}, selected_fields=None)
    assert out["fields"] == {
        "id": "438",
        "firstname": "Maria",
        "lastname": "Johnson",
        "email": "maria@example.com",
        "city": "Brisbane",
        "createdate": "2023-10-26T17:55:48.301Z",
    }
    assert next(iter(out["fields"])) == "id"


def test_page_subscribe_example_is_reproduced_from_salesforce_raw_and_raw_event() -> None:
    expected = page_item(PAGE_SUBSCRIBE_MESSAGE)
    item = {"raw": expected["raw"], "rawEvent": expected["rawEvent"]}
    out = normalize_result(
        "salesforce", "subscribe", item, selected_fields={"annualrevenue", "website"}
    )
    assert out == expected
    assert dumps(out) == dumps(expected)
    assert out["fields"] == {"id": "001Dp00000ZDgmxIAD", "annualrevenue": None, "website": None}
    assert out["subscribeEventType"] == "update"
    assert out["providerEventType"] == "UPDATE"


def test_page_items_pass_through_unchanged_when_everything_is_given() -> None:
    for message, action, provider in (
        (PAGE_READ_MESSAGE, "read", "hubspot"),
        (PAGE_SUBSCRIBE_MESSAGE, "subscribe", "salesforce"),
    ):
        item = page_item(message)
        out = normalize_result(provider, action, item, selected_fields={"nothing"})  # type: ignore[arg-type]
        assert dumps(out) == dumps(item)


# -- fields ------------------------------------------------------------------------------


def test_given_fields_are_kept_exactly_and_not_selected() -> None:
    fields = {"Zeta": 1, "ID": "x", "alpha": None}
    out = normalize_result(
        "hubspot",
        "read",
        {"fields": fields, "raw": {"id": "1", "properties": {"a": 1}}},
        selected_fields={"alpha"},
    )
    assert out["fields"] is fields
    assert list(out["fields"]) == ["Zeta", "ID", "alpha"]


def test_salesforce_fields_drop_attributes_and_lower_case_names() -> None:
    raw = {
        "attributes": {"type": "Account"},
        "Id": "001",
        "Name": "Acme",
        "AnnualRevenue": 5,
        "Owner": {"Name": "Ann"},
    }
    out = normalize_result("salesforce", "read", {"raw": raw}, selected_fields=None)
    assert dumps(out["fields"]) == dumps(
        {"id": "001", "name": "Acme", "annualrevenue": 5, "owner": {"Name": "Ann"}}
    )
    assert out["raw"] is raw


def test_id_comes_first_even_when_raw_has_it_later() -> None:
    raw = {"Name": "Acme", "Id": "001"}
    out = normalize_result("salesforce", "read", {"raw": raw}, selected_fields=None)
    assert list(out["fields"]) == ["id", "name"]


def test_selection_keeps_raw_order_and_id_and_ignores_case() -> None:
    raw = {"Id": "1", "B": 2, "A": 1, "C": 3}
    out = normalize_result("salesforce", "read", {"raw": raw}, selected_fields=["c", "A"])
    assert list(out["fields"]) == ["id", "a", "c"]


def test_selected_field_missing_from_raw_is_not_invented() -> None:
    out = normalize_result(
        "salesforce", "read", {"raw": {"Id": "1", "Name": "x"}}, selected_fields={"website"}
    )
    assert out["fields"] == {"id": "1"}


def test_empty_selection_keeps_everything() -> None:
    raw = {"Id": "1", "Name": "x"}
    out = normalize_result("salesforce", "read", {"raw": raw}, selected_fields=frozenset())
    assert out["fields"] == {"id": "1", "name": "x"}


def test_unknown_provider_uses_top_level_keys() -> None:
    raw = {"ID": 7, "Title": "t", "properties": {"x": 1}}
    out = normalize_result("Pipedrive", "read", {"raw": raw}, selected_fields=None)
    assert dumps(out["fields"]) == dumps({"id": 7, "title": "t", "properties": {"x": 1}})


def test_hubspot_raw_without_properties_falls_back_to_top_level_keys() -> None:
    out = normalize_result(
        "hubspot", "read", {"raw": {"id": "5", "Email": "e"}}, selected_fields=None
    )
    assert out["fields"] == {"id": "5", "email": "e"}


def test_provider_name_is_case_insensitive() -> None:
    raw = {"id": "1", "properties": {"FirstName": "A"}}
    out = normalize_result("HubSpot", "read", {"raw": raw}, selected_fields=None)
    assert out["fields"] == {"id": "1", "firstname": "A"}


def test_names_differing_only_in_case_keep_the_first() -> None:
    out = normalize_result(
        "generic", "read", {"raw": {"Name": "first", "name": "second"}}, selected_fields=None
    )
    assert out["fields"] == {"name": "first"}


def test_salesforce_subscribe_without_raw_builds_fields_from_raw_event() -> None:
    raw_event = page_item(PAGE_SUBSCRIBE_MESSAGE)["rawEvent"]
    out = normalize_result("salesforce", "subscribe", {"rawEvent": raw_event}, selected_fields=None)
    assert dumps(out["fields"]) == dumps(
        {
            "id": "001Dp00000ZDgmxIAD",
            "description": "Notes about the account",
            "lastmodifieddate": "2025-04-10T23:22:25.000Z",
        }
    )
    assert "raw" not in out
    assert list(out) == ["fields", "subscribeEventType", "providerEventType", "rawEvent"]


def test_salesforce_raw_event_prefers_record_ids() -> None:
    raw_event = {
        "ChangeEventHeader": {"changeType": "CREATE", "recordIds": ["a1", "a2"]},
        "Name": "N",
    }
    out = normalize_result(
        "salesforce", "subscribe", {"rawEvent": raw_event}, selected_fields={"name"}
    )
    assert out["fields"] == {"id": "a1", "name": "N"}
    assert out["subscribeEventType"] == "create"


def test_hubspot_subscribe_without_raw_builds_fields_from_webhook_event() -> None:
    event = {
        "objectId": 1246965,
        "propertyName": "lifecyclestage",
        "propertyValue": "subscriber",
        "subscriptionType": "contact.propertyChange",
    }
    out = normalize_result("hubspot", "subscribe", {"rawEvent": event}, selected_fields=None)
    assert out["fields"] == {"id": "1246965", "lifecyclestage": "subscriber"}
    assert out["subscribeEventType"] == "update"
    assert out["providerEventType"] == "contact.propertyChange"


def test_other_keys_are_passed_through_after_the_known_ones() -> None:
    item = {"mappedFields": {"x": 1}, "raw": {"Id": "1"}, "fields": {"id": "1"}}
    out = normalize_result("salesforce", "read", item, selected_fields=None)
    assert list(out) == ["fields", "raw", "mappedFields"]


# -- subscribe event types ---------------------------------------------------------------

SALESFORCE_CASES = [
    ("CREATE", "create"),
    ("UPDATE", "update"),
    ("DELETE", "delete"),
    ("UNDELETE", "create"),
    ("GAP_CREATE", "create"),
    ("GAP_UPDATE", "update"),
    ("GAP_DELETE", "delete"),
    ("GAP_UNDELETE", "create"),
    ("GAP_OVERFLOW", "update"),
]


@pytest.mark.parametrize(("change_type", "expected"), SALESFORCE_CASES)
def test_salesforce_change_types(change_type: str, expected: str) -> None:
    item = {
        "raw": {"Id": "1"},
        "rawEvent": {"ChangeEventHeader": {"changeType": change_type, "recordIds": ["1"]}},
    }
    out = normalize_result("salesforce", "subscribe", item, selected_fields=None)
    assert out["subscribeEventType"] == expected
    assert out["providerEventType"] == change_type


HUBSPOT_CASES = [
    ("contact.creation", "create"),
    ("contact.propertyChange", "update"),
    ("contact.deletion", "delete"),
    ("contact.privacyDeletion", "delete"),
    ("contact.associationChange", "associationUpdate"),
    ("contact.merge", "update"),
    ("contact.restore", "create"),
    ("company.creation", "create"),
    ("deal.propertyChange", "update"),
    ("ticket.deletion", "delete"),
    ("object.associationChange", "associationUpdate"),
    ("p_custom_thing.merge", "update"),
]


@pytest.mark.parametrize(("subscription_type", "expected"), HUBSPOT_CASES)
def test_hubspot_subscription_types(subscription_type: str, expected: str) -> None:
    item = {
        "raw": {"id": "1", "properties": {}},
        "rawEvent": {"objectId": 1, "subscriptionType": subscription_type},
    }
    out = normalize_result("hubspot", "subscribe", item, selected_fields=None)
    assert out["subscribeEventType"] == expected
    assert out["providerEventType"] == subscription_type


def test_given_event_types_win_over_raw_event() -> None:
    item = {
        "raw": {"Id": "1"},
        "subscribeEventType": "delete",
        "providerEventType": "custom",
        "rawEvent": {"ChangeEventHeader": {"changeType": "UPDATE"}},
    }
    out = normalize_result("salesforce", "subscribe", item, selected_fields=None)
    assert (out["subscribeEventType"], out["providerEventType"]) == ("delete", "custom")


def test_given_subscribe_type_alone_is_enough() -> None:
    out = normalize_result(
        "zendesk",
        "subscribe",
        {"raw": {"id": 1}, "subscribeEventType": "create"},
        selected_fields=None,
    )
    assert list(out) == ["fields", "subscribeEventType", "raw"]


def test_given_type_keeps_provider_type_from_raw_event() -> None:
    item = {
        "raw": {"Id": "1"},
        "subscribeEventType": "update",
        "rawEvent": {"ChangeEventHeader": {"changeType": "GAP_OVERFLOW"}},
    }
    out = normalize_result("salesforce", "subscribe", item, selected_fields=None)
    assert out["providerEventType"] == "GAP_OVERFLOW"


def test_provider_event_type_alone_is_mapped() -> None:
    out = normalize_result(
        "salesforce",
        "subscribe",
        {"raw": {"Id": "1"}, "providerEventType": "DELETE"},
        selected_fields=None,
    )
    assert out["subscribeEventType"] == "delete"
    assert out["providerEventType"] == "DELETE"


def test_unknown_provider_event_shapes_are_recognised() -> None:
    sf = normalize_result(
        "other",
        "subscribe",
        {"raw": {"id": 1}, "rawEvent": {"ChangeEventHeader": {"changeType": "CREATE"}}},
        selected_fields=None,
    )
    hs = normalize_result(
        "other",
        "subscribe",
        {"raw": {"id": 1}, "rawEvent": {"subscriptionType": "deal.deletion"}},
        selected_fields=None,
    )
    assert sf["subscribeEventType"] == "create"
    assert hs["subscribeEventType"] == "delete"


def test_read_items_get_no_event_types() -> None:
    out = normalize_result("salesforce", "read", {"raw": {"Id": "1"}}, selected_fields=None)
    assert list(out) == ["fields", "raw"]


def test_provider_event_types_tables() -> None:
    assert provider_event_types("Salesforce")["GAP_OVERFLOW"] == "update"
    assert provider_event_types("hubspot")["associationChange"] == "associationUpdate"
    assert provider_event_types("x") == {}
    assert set(provider_event_types("salesforce").values()) <= set(SUBSCRIBE_EVENT_TYPES)


# -- errors -----------------------------------------------------------------------------


def test_unknown_salesforce_change_type_names_the_field() -> None:
    item = {"raw": {"Id": "1"}, "rawEvent": {"ChangeEventHeader": {"changeType": "MERGE"}}}
    with pytest.raises(MessageInvalid) as info:
        normalize_result("salesforce", "subscribe", item, selected_fields=None, index=0)
    path = "result[0].rawEvent.ChangeEventHeader.changeType"
    assert list(info.value.fields) == [path]
    assert "'MERGE'" in info.value.fields[path]
    assert "'GAP_OVERFLOW'" in info.value.fields[path]
    assert "'associationUpdate'" in info.value.fields[path]


def test_unknown_hubspot_subscription_type_names_the_field() -> None:
    item = {"raw": {"id": "1"}, "rawEvent": {"subscriptionType": "contact.explode"}}
    with pytest.raises(MessageInvalid) as info:
        normalize_result("hubspot", "subscribe", item, selected_fields=None, index=3)
    path = "result[3].rawEvent.subscriptionType"
    assert list(info.value.fields) == [path]
    assert "<objectType>.creation" in info.value.fields[path]


def test_hubspot_subscription_type_without_object_prefix_is_unknown() -> None:
    item = {"raw": {"id": "1"}, "rawEvent": {"subscriptionType": "creation"}}
    with pytest.raises(MessageInvalid):
        normalize_result("hubspot", "subscribe", item, selected_fields=None)


def test_non_string_change_type_is_rejected() -> None:
    item = {"raw": {"Id": "1"}, "rawEvent": {"ChangeEventHeader": {"changeType": 3}}}
    with pytest.raises(MessageInvalid) as info:
        normalize_result("salesforce", "subscribe", item, selected_fields=None, index=1)
    assert "result[1].rawEvent.ChangeEventHeader.changeType" in info.value.fields


def test_unknown_subscribe_event_type_is_rejected() -> None:
    with pytest.raises(MessageInvalid) as info:
        normalize_result(
            "salesforce",
            "subscribe",
            {"raw": {"Id": "1"}, "subscribeEventType": "upsert"},
            selected_fields=None,
            index=2,
        )
    message = info.value.fields["result[2].subscribeEventType"]
    assert "'create', 'update', 'delete' or 'associationUpdate'" in message


def test_subscribe_without_any_event_type_source() -> None:
    with pytest.raises(MessageInvalid) as info:
        normalize_result("zendesk", "subscribe", {"raw": {"id": 1}}, selected_fields=None)
    assert list(info.value.fields) == ["result[0].subscribeEventType"]


def test_salesforce_raw_event_without_header() -> None:
    item = {"raw": {"Id": "1"}, "rawEvent": {"Name": "x"}}
    with pytest.raises(MessageInvalid) as info:
        normalize_result("salesforce", "subscribe", item, selected_fields=None)
    path = "result[0].rawEvent.ChangeEventHeader.changeType"
    assert list(info.value.fields) == [path]
    assert "'UPDATE'" in info.value.fields[path]


def test_raw_event_that_is_not_an_object() -> None:
    item = {"raw": {"id": "1"}, "rawEvent": ["contact.creation"]}
    with pytest.raises(MessageInvalid) as info:
        normalize_result("hubspot", "subscribe", item, selected_fields=None)
    assert "an array" in info.value.fields["result[0].rawEvent.subscriptionType"]


def test_unknown_provider_event_type_alone() -> None:
    with pytest.raises(MessageInvalid) as info:
        normalize_result(
            "salesforce",
            "subscribe",
            {"raw": {"Id": "1"}, "providerEventType": "NOPE"},
            selected_fields=None,
        )
    assert list(info.value.fields) == ["result[0].providerEventType"]


def test_item_without_record_data() -> None:
    with pytest.raises(MessageInvalid) as info:
        normalize_result("hubspot", "read", {"rawEvent": {}}, selected_fields=None, index=4)
    assert list(info.value.fields) == ["result[4].raw"]


def test_salesforce_subscribe_without_raw_or_cdc_event() -> None:
    item = {"subscribeEventType": "update", "rawEvent": {"Name": "x"}}
    with pytest.raises(MessageInvalid) as info:
        normalize_result("salesforce", "subscribe", item, selected_fields=None)
    assert "Change Data Capture" in info.value.fields["result[0].raw"]


@pytest.mark.parametrize(
    ("item", "path"),
    [
        ({"raw": "text"}, "result[0].raw"),
        ({"fields": [1, 2]}, "result[0].fields"),
        ({"raw": None}, "result[0].raw"),
    ],
)
def test_wrong_json_types(item: dict[str, Any], path: str) -> None:
    with pytest.raises(MessageInvalid) as info:
        normalize_result("hubspot", "read", item, selected_fields=None)
    assert path in info.value.fields


def test_item_that_is_not_an_object() -> None:
    with pytest.raises(MessageInvalid) as info:
        normalize_result("hubspot", "read", "x", selected_fields=None, index=9)  # type: ignore[arg-type]
    assert "result[9]" in info.value.fields
