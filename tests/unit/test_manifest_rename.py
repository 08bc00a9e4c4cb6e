"""Renaming a destination rewrites amp.yaml's routes to it, in place (issue 15 item 2)."""

from __future__ import annotations

import pytest
from tests.support.samples import PAGE_AMP_YAML

from s3dest.errors import Conflict
from s3dest.manifest.parse import parse_manifest
from s3dest.manifest.rename import rename_destination, routes_to

MIXED = """\
specVersion: 1.0.0
# routes of the warehouse team
integrations:
  - name: salesforceToS3
    provider: salesforce
    read:
      objects:
        - objectName: account
          destination: "ampersandS3Bucket"  # quoted
        - objectName: lead
          destination: other
    subscribe:
      objects:
        - {objectName: contact, destination: ampersandS3Bucket}
"""


def test_every_route_to_the_destination_follows_the_rename() -> None:
    text, routes = rename_destination(PAGE_AMP_YAML, "ampersandS3Bucket", "warehouse")
    assert [r.label for r in routes] == [
        "salesforceToS3 read account",
        "salesforceToS3 read contact",
    ]
    assert text == PAGE_AMP_YAML.replace("ampersandS3Bucket", "warehouse")


def test_comments_quotes_and_flow_style_are_kept() -> None:
    text, routes = rename_destination(MIXED, "ampersandS3Bucket", "warehouse")
    assert len(routes) == 2
    assert '"warehouse"  # quoted' in text
    assert "{objectName: contact, destination: warehouse}" in text
    assert "destination: other" in text and "# routes of the warehouse team" in text
    assert {o.destination for o in parse_manifest(text).objects()} == {"warehouse", "other"}


def test_a_name_yaml_would_read_as_a_number_is_quoted() -> None:
    text, _ = rename_destination(PAGE_AMP_YAML, "ampersandS3Bucket", "2025")
    assert "destination: '2025'" in text
    assert [o.destination for o in parse_manifest(text).objects()] == ["2025", "2025"]


def test_an_alias_is_not_rewritten_behind_the_users_back() -> None:
    aliased = PAGE_AMP_YAML.replace(
        "destination: ampersandS3Bucket\n        - objectName: contact\n"
        "          destination: ampersandS3Bucket",
        "destination: &d ampersandS3Bucket\n        - objectName: contact\n"
        "          destination: *d",
    )
    assert routes_to(parse_manifest(aliased), "ampersandS3Bucket")
    with pytest.raises(Conflict, match="line 9"):
        rename_destination(aliased, "ampersandS3Bucket", "warehouse")


def test_no_route_no_change() -> None:
    assert rename_destination(PAGE_AMP_YAML, "other", "x") == (PAGE_AMP_YAML, [])
