"""Which changes of a destination make it untested again (`write_settings_changed`): each
setting a PutObject is built from, and nothing else (issue 15, status from evidence)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import asdict
from typing import Any

import pytest

from s3dest.batching import BatchSettings
from s3dest.destinations.rules import ValidatedDestination, validate_destination
from s3dest.destinations.runtime import WRITE_SETTINGS, write_settings_changed
from s3dest.destinations.secrets import SecretBox
from s3dest.destinations.service import stored_fields
from s3dest.store.destinations import DestinationRow

BOX = SecretBox([os.urandom(32)])


def _checked(**overrides: Any) -> ValidatedDestination:
    fields = {
        "name": "lake",
        "bucket": "ampersand-integration-bucket",
        "region": "us-west-2",
        "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
        "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "sessionToken": "made-up-session-token",
        "tags": {"team": "crm"},
        **overrides,
    }
    return validate_destination(
        fields, check_key_template=lambda _t: [], check_endpoint=lambda _h, _p: None
    )


def _row(checked: ValidatedDestination) -> DestinationRow:
    stored = asdict(stored_fields(checked, BOX, "d-1", "s3dest-external"))
    stored["tags_json"] = stored.pop("tags")
    stored["batch_json"] = stored.pop("batch")
    extra = {"failing_since": None, "diagnosis": None, "last_error_code": None}
    return DestinationRow(
        id="d-1",
        project_id="p-1",
        **stored,
        **extra,
        probe_attempts=0,
        next_probe_at=None,
        verified_at=1.0,
        version=1,
        created_at=0.0,
        updated_at=0.0,
    )


#: A different value of each setting a write depends on.
_OTHER: dict[str, Any] = {
    "bucket": "another-bucket",
    "region": "eu-west-1",
    "access_key_id": "AKIAI44QH8DHBEXAMPLE",
    "secret_access_key": "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    "session_token": "another-session-token",
    "role_arn": "arn:aws:iam::123456789012:role/s3dest-writer",
    "endpoint_url": "https://s3.example.com",
    "storage_class": "STANDARD_IA",
    "write_mode": "create-only",
    "server_side_encryption": "aws:kms",
    "kms_key_id": "arn:aws:kms:us-west-2:123456789012:key/made-up",
    "bucket_key_enabled": False,
    "acl": "bucket-owner-full-control",
    "tags": {"team": "data"},
}


def test_every_write_setting_has_a_case() -> None:
    assert set(_OTHER) == set(WRITE_SETTINGS)


@pytest.mark.parametrize("name", WRITE_SETTINGS)
def test_a_change_to_what_a_write_depends_on_is_found(name: str) -> None:
    checked = _checked()
    changed = dataclasses.replace(checked, **{name: _OTHER[name]})
    assert write_settings_changed(_row(checked), BOX, changed) == [name]


@pytest.mark.parametrize(
    "change",
    [
        {"name": "lake2"},
        {"enabled": False},
        {"key_template": "join('/', ['crm', metadata.\"event-id\"])"},
        {},
    ],
    ids=json.dumps,
)
def test_other_changes_keep_the_evidence(change: dict[str, Any]) -> None:
    checked = _checked()
    # A secret sent again is encrypted anew: still the same setting.
    assert write_settings_changed(_row(checked), BOX, dataclasses.replace(checked, **change)) == []


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, BatchSettings()),
        (BatchSettings(), BatchSettings(compression="zstd")),
        (BatchSettings(), None),
    ],
    ids=["on", "changed", "off"],
)
def test_batching_keeps_the_evidence(
    before: BatchSettings | None, after: BatchSettings | None
) -> None:
    """Batching changes how many messages go into one object, not what a PutObject needs
    (the same s3:PutObject, bucket, keys and headers): a verified destination stays so."""
    checked = dataclasses.replace(_checked(), batch=before)
    row = _row(checked)
    assert row.batch == before  # the stored JSON reads back as the settings
    assert write_settings_changed(row, BOX, dataclasses.replace(checked, batch=after)) == []


def test_blank_and_missing_are_the_same_setting() -> None:
    checked = _checked(sessionToken=None, tags=None)
    same = dataclasses.replace(checked, session_token="", tags={})
    assert write_settings_changed(_row(checked), BOX, same) == []
    # False is a setting of its own (the header is sent), not the same as unset.
    assert write_settings_changed(
        _row(checked), BOX, dataclasses.replace(checked, bucket_key_enabled=False)
    ) == ["bucket_key_enabled"]
