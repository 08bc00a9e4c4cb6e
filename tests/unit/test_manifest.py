"""amp.yaml parsing, validation with line numbers, and routing."""

from __future__ import annotations

import json
import textwrap

import pytest
from tests.support.samples import PAGE_AMP_YAML

from s3dest.errors import ManifestInvalid
from s3dest.manifest import (
    SPEC_VERSION,
    FieldRef,
    RouteTarget,
    parse_manifest,
    validate_destinations,
)


def yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def invalid(text: str | bytes) -> ManifestInvalid:
    with pytest.raises(ManifestInvalid) as info:
        parse_manifest(text)
    return info.value


# -- the page's manifest -------------------------------------------------------------------


def test_page_manifest_parses_and_routes_reads_to_the_bucket() -> None:
    manifest = parse_manifest(PAGE_AMP_YAML)
    for object_name in ("account", "contact"):
        target = manifest.route("salesforceToS3", "read", object_name)
        assert target is not None
        assert target.destination == "ampersandS3Bucket"
        assert target.selected_fields == frozenset()
        assert target.provider == "salesforce"
    assert manifest.route("salesforceToS3", "subscribe", "account") is None
    assert manifest.route("salesforceToS3", "read", "opportunity") is None
    assert manifest.route("otherIntegration", "read", "account") is None
    assert manifest.spec_version == SPEC_VERSION
    assert manifest.destination_names() == {"ampersandS3Bucket"}


def test_page_manifest_keeps_text_and_plain_document() -> None:
    manifest = parse_manifest(PAGE_AMP_YAML)
    assert manifest.text == PAGE_AMP_YAML
    assert manifest.to_dict() == {
        "specVersion": "1.0.0",
        "integrations": [
            {
                "name": "salesforceToS3",
                "displayName": "Salesforce to S3",
                "provider": "salesforce",
                "read": {
                    "objects": [
                        {"objectName": "account", "destination": "ampersandS3Bucket"},
                        {"objectName": "contact", "destination": "ampersandS3Bucket"},
                    ]
                },
            }
        ],
    }
    json.dumps(manifest.to_dict())  # JSON-able
    copy = manifest.to_dict()
    copy["integrations"].clear()
    assert manifest.to_dict()["integrations"]  # to_dict hands out copies
    integ = manifest.integration("salesforceToS3")
    assert integ is not None
    assert integ.display_name == "Salesforce to S3"
    assert [o.object_name for o in integ.read] == ["account", "contact"]
    assert integ.read[0].raw == {"objectName": "account", "destination": "ampersandS3Bucket"}


def test_page_manifest_as_json_and_as_bytes() -> None:
    as_json = json.dumps(parse_manifest(PAGE_AMP_YAML).to_dict(), indent=2)
    for text in (as_json, as_json.encode(), PAGE_AMP_YAML.encode("utf-8-sig")):
        manifest = parse_manifest(text)
        target = manifest.route("salesforceToS3", "read", "contact")
        assert target is not None and target.destination == "ampersandS3Bucket"


def test_object_names_route_case_insensitively() -> None:
    manifest = parse_manifest(PAGE_AMP_YAML)
    assert manifest.route("salesforceToS3", "read", "Account") == manifest.route(
        "salesforceToS3", "read", "account"
    )


def test_quoted_spec_version_is_fine() -> None:
    parse_manifest(PAGE_AMP_YAML.replace("specVersion: 1.0.0", 'specVersion: "1.0.0"'))


# -- destinations ----------------------------------------------------------------------------


def test_missing_destination_is_named_with_its_line() -> None:
    manifest = parse_manifest(PAGE_AMP_YAML)
    asked: list[str] = []

    def exists(name: str) -> bool:
        asked.append(name)
        return False

    with pytest.raises(ManifestInvalid) as info:
        validate_destinations(manifest, exists)
    assert asked == ["ampersandS3Bucket"]  # once per distinct name
    fields = info.value.fields
    assert fields["integrations[0].read.objects[0].destination"].startswith(
        "amp.yaml line 9, column 24: destination 'ampersandS3Bucket' does not exist"
    )
    assert fields["integrations[0].read.objects[1].destination"].startswith(
        "amp.yaml line 11, column 24:"
    )
    assert "line 9" in info.value.message and "line 11" in info.value.message


def test_existing_destinations_pass() -> None:
    validate_destinations(parse_manifest(PAGE_AMP_YAML), {"ampersandS3Bucket"}.__contains__)


def test_only_the_missing_destination_is_reported() -> None:
    text = PAGE_AMP_YAML.replace(
        "objectName: contact\n          destination: ampersandS3Bucket",
        "objectName: contact\n          destination: otherBucket",
    )
    with pytest.raises(ManifestInvalid) as info:
        validate_destinations(parse_manifest(text), {"ampersandS3Bucket"}.__contains__)
    assert list(info.value.fields) == ["integrations[0].read.objects[1].destination"]
    assert info.value.message.startswith("amp.yaml line 11, column 24: destination 'otherBucket'")


def test_object_without_destination_key() -> None:
    error = invalid(PAGE_AMP_YAML.replace("          destination: ampersandS3Bucket\n", "", 1))
    assert error.fields == {
        "integrations[0].read.objects[0].destination": "amp.yaml line 8, column 11:"
        " integrations[0].read.objects[0] is missing required key 'destination'"
    }


# -- errors carry line numbers ------------------------------------------------------------------


def test_bad_spec_version_names_line_1() -> None:
    error = invalid(PAGE_AMP_YAML.replace("specVersion: 1.0.0", "specVersion: 2.0.0"))
    assert error.fields == {
        "specVersion": "amp.yaml line 1, column 14: specVersion must be 1.0.0; got the string"
        " '2.0.0'"
    }
    assert error.message == error.fields["specVersion"]


def test_spec_version_parsed_as_a_number() -> None:
    error = invalid(PAGE_AMP_YAML.replace("specVersion: 1.0.0", "specVersion: 1.0"))
    assert "got the number 1.0" in error.fields["specVersion"]


def test_missing_spec_version() -> None:
    error = invalid(PAGE_AMP_YAML.replace("specVersion: 1.0.0\n", ""))
    assert error.fields["specVersion"].startswith("amp.yaml line 1, column 1: missing")


def test_unknown_key_names_its_line_and_the_allowed_keys() -> None:
    text = PAGE_AMP_YAML.replace("          destination: ampersandS3Bucket\n", "", 1).replace(
        "        - objectName: account\n",
        "        - objectName: account\n          destinaton: ampersandS3Bucket\n",
    )
    error = invalid(text)
    message = error.fields["integrations[0].read.objects[0].destinaton"]
    assert message.startswith(
        "amp.yaml line 9, column 11: unknown key 'destinaton' in integrations[0].read.objects[0]"
    )
    assert "did you mean 'destination'?" in message
    assert "allowed: objectName, destination, requiredFields" in message
    # ...and the missing destination is reported too, in the same exception
    assert "integrations[0].read.objects[0].destination" in error.fields


def test_unknown_keys_at_every_level() -> None:
    text = yaml(
        """
        specVersion: 1.0.0
        extra: 1
        integrations:
          - name: a
            provider: hubspot
            colour: blue
            read:
              objects:
                - objectName: contact
                  destination: d
                  backfill:
                    defaultPeriod: {weeks: 2}
            subscribe:
              objects:
                - objectName: contact
                  destination: d
                  updateEvent: {enabled: always, watch: all}
              other: 1
        """
    )
    error = invalid(text)
    assert error.fields["extra"].startswith("amp.yaml line 2, column 1: unknown key 'extra'")
    assert error.fields["integrations[0].colour"].startswith("amp.yaml line 6, column 5:")
    assert error.fields["integrations[0].read.objects[0].backfill.defaultPeriod.weeks"].startswith(
        "amp.yaml line 12, column 29:"
    )
    assert error.fields["integrations[0].subscribe.objects[0].updateEvent.watch"].startswith(
        "amp.yaml line 17, column 42:"
    )
    assert error.fields["integrations[0].subscribe.other"].startswith("amp.yaml line 18, column 7:")
    assert error.message.startswith("amp.yaml has 6 errors:\n- amp.yaml line 2, column 1:")


def test_yaml_syntax_error_reports_the_parser_position() -> None:
    text = PAGE_AMP_YAML.replace(
        "        - objectName: contact\n", "        - objectName: [contact\n"
    )
    error = invalid(text)
    assert list(error.fields) == ["manifest"]
    assert error.message.startswith("amp.yaml line 11, column 22: YAML syntax error:")


def test_yaml_indentation_error() -> None:
    error = invalid("specVersion: 1.0.0\nintegrations:\n  - name: a\n bad: 1\n")
    assert error.message.startswith("amp.yaml line 4, column 2: YAML syntax error")


def test_duplicate_yaml_keys_are_a_syntax_error() -> None:
    error = invalid("specVersion: 1.0.0\nspecVersion: 1.0.0\nintegrations: []\n")
    assert error.message.startswith("amp.yaml line 2, column 1:")
    assert "duplicate key" in error.message


def test_json_syntax_error() -> None:
    error = invalid('{\n  "specVersion": "1.0.0",\n  "integrations": [\n}\n')
    assert error.message.startswith("amp.yaml line 4, column 1: YAML syntax error")


def test_character_yaml_does_not_allow() -> None:
    error = invalid("specVersion: 1.0.0\nintegrations: \x07\n")
    assert error.message.startswith("amp.yaml line 2, column 15: YAML syntax error")


def test_not_utf8() -> None:
    error = invalid(b"specVersion: 1.0.0\nname: \xff\n")
    assert error.message == "amp.yaml line 2, column 7: is not UTF-8 text"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "amp.yaml line 1, column 1: the document is empty"),
        ("# nothing\n", "amp.yaml line 1, column 1: the document is empty"),
        ("- 1\n", "amp.yaml line 1, column 1: the document must be a mapping"),
        ("specVersion: 1.0.0\nintegrations: []\n", "amp.yaml line 2, column 15: integrations"),
        ("specVersion: 1.0.0\nintegrations: x\n", "amp.yaml line 2, column 15: integrations"),
        ("specVersion: 1.0.0\n", "amp.yaml line 1, column 1: missing required key 'integrations'"),
    ],
)
def test_document_shape(text: str, expected: str) -> None:
    assert invalid(text).message.startswith(expected)


def test_duplicate_integration_names() -> None:
    text = PAGE_AMP_YAML + PAGE_AMP_YAML.split("integrations:\n", 1)[1]
    error = invalid(text)
    assert error.fields == {
        "integrations[1].name": "amp.yaml line 12, column 11: duplicate integration name"
        " 'salesforceToS3'; it is already used on line 3"
    }


def test_duplicate_objects_in_one_action() -> None:
    text = PAGE_AMP_YAML.replace("objectName: contact", "objectName: Account")
    error = invalid(text)
    assert error.fields["integrations[0].read.objects[1].objectName"].startswith(
        "amp.yaml line 10, column 23: duplicate read object 'Account'"
    )
    assert "line 8" in error.fields["integrations[0].read.objects[1].objectName"]


def test_required_integration_keys_and_sections() -> None:
    text = yaml(
        """
        specVersion: 1.0.0
        integrations:
          - displayName: Nameless
          - name: proxyOnly
            provider: salesforce
            proxy: {enabled: true}
          - name: emptyRead
            provider: salesforce
            read:
              objects: []
          - name: noObjects
            provider: salesforce
            read: {}
        """
    )
    error = invalid(text)
    assert error.fields["integrations[0].name"].startswith("amp.yaml line 3, column 5:")
    assert error.fields["integrations[0].provider"].startswith("amp.yaml line 3, column 5:")
    assert "needs a read or a subscribe section" in error.fields["integrations[1]"]
    assert error.fields["integrations[1]"].startswith("amp.yaml line 4, column 5:")
    assert error.fields["integrations[2].read.objects"].startswith("amp.yaml line 10, column 16:")
    assert "integrations[3].read.objects" in error.fields


def test_all_errors_are_collected_in_one_exception() -> None:
    text = yaml(
        """
        specVersion: 1.0
        integrations:
          - name: a
            provider: salesforce
            read:
              objects:
                - objectName: account
                  destination: d
                  schedule: 5
                  requiredFields:
                    - fieldName: Name
                    - foo: 1
                  optionalFieldsAuto: some
                  delivery: {mode: eventually, pageSize: 0}
                - "just a string"
          - name: a
            provider: hubspot
            subscribe:
              objects:
                - objectName: contact
                  destination: d
                  inheritFieldsAndMapping: yes
                  createEvent: {enabled: sometimes}
                  deleteEvent: always
                  otherEvents: [x, 3]
                  backfill: {defaultPeriod: {days: -1}}
        """
    )
    error = invalid(text)
    expected = {
        "specVersion": 1,
        "integrations[0].read.objects[0].schedule": 9,
        "integrations[0].read.objects[0].requiredFields[1].foo": 12,
        "integrations[0].read.objects[0].requiredFields[1]": 12,
        "integrations[0].read.objects[0].optionalFieldsAuto": 13,
        "integrations[0].read.objects[0].delivery.mode": 14,
        "integrations[0].read.objects[0].delivery.pageSize": 14,
        "integrations[0].read.objects[1]": 15,
        "integrations[1].name": 16,
        "integrations[1].subscribe.objects[0].inheritFieldsAndMapping": 22,
        "integrations[1].subscribe.objects[0].createEvent.enabled": 23,
        "integrations[1].subscribe.objects[0].deleteEvent": 24,
        "integrations[1].subscribe.objects[0].otherEvents[1]": 25,
        "integrations[1].subscribe.objects[0].backfill.defaultPeriod.days": 26,
    }
    assert set(error.fields) == set(expected)
    for path, line in expected.items():
        assert error.fields[path].startswith(f"amp.yaml line {line}, column "), path
    assert error.message.startswith(f"amp.yaml has {len(expected)} errors:")
    # the summary lists them in document order
    lines = [int(row.split()[3].rstrip(",")) for row in error.message.splitlines()[1:]]
    assert lines == sorted(lines)


def test_schedule_must_look_like_cron() -> None:
    text = PAGE_AMP_YAML.replace(
        "destination: ampersandS3Bucket\n",
        'destination: ampersandS3Bucket\n          schedule: "every ten minutes"\n',
        1,
    )
    error = invalid(text)
    assert "cron expression" in error.fields["integrations[0].read.objects[0].schedule"]


def test_unsupported_yaml_values_are_rejected() -> None:
    text = PAGE_AMP_YAML.replace("displayName: Salesforce to S3", "displayName: !!binary aGk=")
    error = invalid(text)
    assert error.fields["integrations[0].displayName"].startswith(
        "amp.yaml line 4, column 18: unsupported YAML value"
    )


def test_alias_expansion_is_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 7):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    text = "specVersion: 1.0.0\n" + "\n".join(lines) + "\nintegrations: *a6\n"
    error = invalid(text)
    assert "more than 200000 values" in error.message


# -- fields, subscribe, routing details ------------------------------------------------------

FULL = yaml(
    """
    specVersion: 1.0.0
    integrations:
      - name: salesforceToS3
        displayName: Salesforce to S3
        provider: salesforce
        module: crm
        read:
          objects:
            - objectName: account
              destination: ampersandS3Bucket
              mapToName: company
              mapToDisplayName: Company
              schedule: "*/10 * * * *"
              requiredFields:
                - fieldName: AnnualRevenue
              optionalFields:
                - fieldName: Website
                  mapToName: site
                  mapToDisplayName: Site
              backfill:
                defaultPeriod:
                  days: 30
              delivery: {mode: auto}
            - objectName: contact
              destination: contactsBucket
              requiredFields:
                - fieldName: "$['MailingAddress']['city']"
                - fieldName: $.Email
              optionalFieldsAuto: all
            - objectName: lead
              destination: ampersandS3Bucket
              requiredFields:
                - fieldName: name
                - mapToName: priority
                  mapToDisplayName: Priority
                  prompt: Which field holds the priority?
              backfill: {fullHistory: true}
        subscribe:
          objects:
            - objectName: account
              destination: eventsBucket
              inheritFieldsAndMapping: true
              createEvent:
                enabled: always
              updateEvent:
                enabled: always
                watchFieldsAuto: all
              deleteEvent:
                enabled: always
              associationChangeEvent:
                enabled: always
                includeFullRecords: true
              otherEvents: [account.merged]
            - objectName: contact
              destination: eventsBucket
              requiredFields:
                - fieldName: Phone
        write:
          objects:
            - objectName: account
        proxy:
          enabled: true
    """
)


def test_subscribe_section_routes_and_selects_fields() -> None:
    manifest = parse_manifest(FULL)
    target = manifest.route("salesforceToS3", "subscribe", "account")
    assert target == RouteTarget(
        destination="eventsBucket",
        selected_fields=frozenset({"annualrevenue", "website"}),  # inherited from the read
        integration="salesforceToS3",
        provider="salesforce",
        action="subscribe",
        object_name="account",
    )
    contact = manifest.route("salesforceToS3", "subscribe", "contact")
    assert contact is not None
    assert (contact.destination, contact.selected_fields) == ("eventsBucket", frozenset({"phone"}))
    integ = manifest.integration("salesforceToS3")
    assert integ is not None and integ.module == "crm"
    sub = integ.subscribe[0]
    assert sub.inherit_fields_and_mapping is True
    assert sub.raw["updateEvent"] == {"enabled": "always", "watchFieldsAuto": "all"}
    assert sub.raw["otherEvents"] == ["account.merged"]
    assert manifest.to_dict()["integrations"][0]["write"] == {
        "objects": [{"objectName": "account"}]
    }
    assert manifest.destination_names() == {"ampersandS3Bucket", "contactsBucket", "eventsBucket"}


def test_read_selected_fields_are_lower_cased_required_plus_optional() -> None:
    manifest = parse_manifest(FULL)
    account = manifest.route("salesforceToS3", "read", "account")
    assert account is not None
    assert account.selected_fields == frozenset({"annualrevenue", "website"})
    integ = manifest.integration("salesforceToS3")
    assert integ is not None
    obj = integ.read[0]
    assert obj.required_fields == (FieldRef("AnnualRevenue"),)
    assert obj.optional_fields == (FieldRef("Website", "site", "Site"),)
    assert obj.schedule == "*/10 * * * *"
    assert obj.raw["backfill"] == {"defaultPeriod": {"days": 30}}


def test_open_selections_keep_every_field() -> None:
    manifest = parse_manifest(FULL)
    contact = manifest.route("salesforceToS3", "read", "contact")  # optionalFieldsAuto: all
    lead = manifest.route("salesforceToS3", "read", "lead")  # a consumer-mapped field
    assert contact is not None and contact.selected_fields == frozenset()
    assert lead is not None and lead.selected_fields == frozenset()


def test_jsonpath_field_names_select_their_top_level_field() -> None:
    text = FULL.replace("          optionalFieldsAuto: all\n", "")
    target = parse_manifest(text).route("salesforceToS3", "read", "contact")
    assert target is not None
    assert target.selected_fields == frozenset({"mailingaddress", "email"})


def test_map_to_name_routes_too() -> None:
    manifest = parse_manifest(FULL)
    company = manifest.route("salesforceToS3", "read", "company")
    assert company is not None and company.object_name == "account"


def test_object_name_wins_over_another_objects_map_to_name() -> None:
    text = FULL.replace("mapToName: company", "mapToName: contact")
    target = parse_manifest(text).route("salesforceToS3", "read", "contact")
    assert target is not None and target.destination == "contactsBucket"


def test_inherit_without_a_read_object() -> None:
    text = FULL.replace(
        "        - objectName: account\n          destination: eventsBucket",
        "        - objectName: opportunity\n          destination: eventsBucket",
    )
    error = invalid(text)
    assert list(error.fields) == ["integrations[0].subscribe.objects[0].inheritFieldsAndMapping"]
    assert "needs a read object named 'opportunity'" in error.message


def test_inherit_from_an_open_read_selection_keeps_every_field() -> None:
    text = FULL.replace(
        "        - objectName: contact\n          destination: eventsBucket\n",
        "        - objectName: contact\n          destination: eventsBucket\n"
        "          inheritFieldsAndMapping: true\n",
    )
    target = parse_manifest(text).route("salesforceToS3", "subscribe", "contact")
    assert target is not None and target.selected_fields == frozenset()


def test_subscribe_only_keys_are_unknown_in_read_objects() -> None:
    text = PAGE_AMP_YAML.replace(
        "destination: ampersandS3Bucket\n",
        "destination: ampersandS3Bucket\n          createEvent: {enabled: always}\n",
        1,
    )
    error = invalid(text)
    assert error.fields["integrations[0].read.objects[0].createEvent"].startswith(
        "amp.yaml line 10, column 11: unknown key 'createEvent'"
    )


def test_merge_keys_are_accepted() -> None:
    text = yaml(
        """
        specVersion: 1.0.0
        integrations:
          - name: a
            provider: salesforce
            read:
              objects:
                - &base
                  objectName: account
                  destination: bucket
                - <<: *base
                  objectName: contact
        """
    )
    manifest = parse_manifest(text)
    target = manifest.route("a", "read", "contact")
    assert target is not None and target.destination == "bucket"
