"""One S3 implementation (moto or Ceph RGW) as the tests that run against both see it:
the admin's client, fresh buckets, and the two kinds of writer key issue 14 names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from s3dest.devtools.moto import Credentials


@dataclass
class Store:
    """One S3 implementation, with the two kinds of writer key the issue names."""

    name: str
    endpoint: str
    region: str
    admin: Any  # boto3 S3 client with the admin's keys
    server: Any  # S3Server | RgwServer

    def new_bucket(self) -> str:
        bucket: str = self.server.create_bucket()
        return bucket

    def putonly(self, bucket: str) -> Credentials:
        """PutObject only: AbortMultipartUpload is refused."""
        if self.name == "rgw":
            creds: Credentials = self.server.putobject_only_user(bucket)
            return creds
        return self.server.putonly_user(bucket)  # type: ignore[no-any-return]

    def may_abort(self, bucket: str) -> Credentials:
        """PutObject and AbortMultipartUpload, nothing to read with."""
        if self.name == "rgw":  # RGW's write-only subuser may abort, and not read
            return self.server.putonly_user(bucket)  # type: ignore[no-any-return]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                }
            ],
        }
        return self.server.user_with_policy(policy)  # type: ignore[no-any-return]

    def uploads_left(self, bucket: str) -> list[str]:
        listed = self.admin.list_multipart_uploads(Bucket=bucket)
        return [u["UploadId"] for u in listed.get("Uploads", [])]
