"""The test helpers' own promises: the manifest builder writes what the page shows."""

from __future__ import annotations

from tests.support.builders import data_of, message
from tests.support.samples import DESTINATION, PAGE_AMP_YAML, amp_yaml

from s3dest.manifest import parse_manifest


def test_amp_yaml_writes_the_pages_manifest() -> None:
    built = amp_yaml(
        "salesforceToS3",
        "salesforce",
        {"account": DESTINATION, "contact": DESTINATION},
        display_name="Salesforce to S3",
    )
    assert built == PAGE_AMP_YAML
    parse_manifest(PAGE_AMP_YAML)


def test_amp_yaml_with_required_fields_parses() -> None:
    text = amp_yaml(
        "sfToS3", "salesforce", {"account": "big"}, required_fields={"account": ["Name"]}
    )
    assert "requiredFields:\n            - fieldName: Name\n" in text
    parse_manifest(text)


def test_data_of_drops_routing_and_adds_the_project() -> None:
    data = data_of(message(3, "d", pad=0, connectionId="c"), project_id="p")
    assert list(data)[:2] == ["action", "projectId"]
    assert data["projectId"] == "p" and "destination" not in data and "connectionId" not in data
    assert data["result"] == [{"fields": {"id": "3", "name": "Account 3", "pad": ""}}]
