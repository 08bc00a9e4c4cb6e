"""Orphaned multipart uploads of a destination, as the user is shown them (SPEC §8).

An upload s3dest could not abort (a PutObject-only key may not) keeps its parts in the
customer's bucket, billed, until something removes them. s3dest records each one; the
remedy is one lifecycle rule on the bucket, given here ready to apply — with it, S3
removes every incomplete upload after a day, these and any future ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from s3dest.store import destinations as store
from s3dest.store import uploads

LIFECYCLE_DAYS = 1


def lifecycle_rule() -> dict[str, Any]:
    """The bucket lifecycle configuration that aborts incomplete multipart uploads."""
    return {
        "Rules": [
            {
                "ID": "abort-incomplete-multipart-uploads",
                "Status": "Enabled",
                "Filter": {},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": LIFECYCLE_DAYS},
            }
        ]
    }


def lifecycle_command(bucket: str) -> str:
    """The AWS CLI command that applies `lifecycle_rule` (it replaces the bucket's
    lifecycle configuration: merge the rule into an existing one instead)."""
    return (
        f"aws s3api put-bucket-lifecycle-configuration --bucket {bucket} "
        f"--lifecycle-configuration '{json.dumps(lifecycle_rule(), separators=(',', ':'))}'"
    )


@dataclass(frozen=True, slots=True)
class OrphanList:
    bucket: str
    uploads: list[uploads.OrphanRow]

    def as_dict(self) -> dict[str, Any]:
        return {
            "orphanedUploads": [
                {
                    "bucket": u.bucket,
                    "key": u.key,
                    "uploadId": u.upload_id,
                    "eventId": u.event_id,
                    "reason": u.reason,
                    "recordedAt": u.created_at,
                }
                for u in self.uploads
            ],
            "lifecycleRule": lifecycle_rule(),
            "lifecycleCommand": lifecycle_command(self.bucket),
            "advice": (
                "Multipart uploads that s3dest could not abort keep their parts (billed as "
                "storage) until they are aborted. Add the lifecycle rule to the bucket: S3 "
                f"then aborts every upload left incomplete for {LIFECYCLE_DAYS} day(s). Or "
                "allow s3:AbortMultipartUpload on the bucket's objects, and s3dest aborts "
                "what it cannot finish."
            ),
        }


def orphan_counts(engine: Engine, destination_ids: list[str]) -> dict[str, int]:
    return uploads.orphan_counts(engine, destination_ids)


def orphaned_uploads(engine: Engine, *, project_id: str, ref: str) -> OrphanList:
    row = store.get_destination(engine, project_id, ref)
    return OrphanList(bucket=row.bucket, uploads=uploads.list_orphans(engine, row.id))
