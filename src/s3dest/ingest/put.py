"""Write one message file straight to a bucket, without the queue (`s3dest put`), any size.

Small files are validated whole; large ones are streamed through `bodies` into a
temporary file and uploaded in parts, so memory stays bounded. The key and metadata come
from `build_request`, as the worker's do.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from s3dest.errors import MessageInvalid
from s3dest.ingest.bodies import CompactResult, compact_chunks
from s3dest.keys.template import KeyTemplate
from s3dest.messages import MessageData, encode_body, metadata_text, new_stamp, parse_data
from s3dest.s3 import credentials
from s3dest.s3.metadata import check_metadata
from s3dest.s3.request import StoredMessage, build_request
from s3dest.s3.storage_classes import canonical_storage_class
from s3dest.s3.writer import MULTIPART_THRESHOLD, ObjectRequest, S3Destination, put_object
from s3dest.validation_errors import field_messages


@dataclass(frozen=True)
class PutResult:
    bucket: str
    key: str
    etag: str | None
    event_id: str


def _chain(profile: str | None) -> None:
    """Refuse early, naming what to set, when the AWS chain finds no credentials."""
    try:
        found = credentials.chain_provider(profile).has_identity()
    except Exception as exc:  # botocore: ProfileNotFound and other config errors
        raise MessageInvalid(
            f"AWS credentials: {exc}", {"--profile": "name a profile of the shared config files"}
        ) from None
    if not found:
        raise MessageInvalid(
            "no AWS credentials",
            {
                "AWS_ACCESS_KEY_ID": "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and "
                "AWS_SESSION_TOKEN for temporary credentials), or AWS_PROFILE / --profile "
                "with the shared config files; instance, container and web identity "
                "credentials are found too"
            },
        )


def put_message_file(
    path: Path,
    *,
    bucket: str,
    region: str,
    key_template: str | None = None,
    storage_class: str | None = None,
    endpoint_url: str | None = None,
    create_only: bool = False,
    profile: str | None = None,
    role_arn: str | None = None,
    external_id: str | None = None,
) -> PutResult:
    # The same chain as s3dest's own identity (botocore's): environment, profiles, web
    # identity, container and instance metadata. With `role_arn`, that identity assumes
    # the role (the worker's path: s3.credentials), and the role writes.
    _chain(profile)
    role = None
    if role_arn is not None:
        role = credentials.AssumedRole(
            role_arn=role_arn,
            external_id=external_id,
            session_name=credentials.session_name("put"),
            source_profile=profile,
        )
    dest = S3Destination(
        bucket=bucket,
        region=region,
        role=role,
        use_chain=role is None,
        profile=profile,
        endpoint_url=endpoint_url,
        storage_class=canonical_storage_class(storage_class),
        create_only=create_only,
        # `s3dest put` runs with the operator's own rights and credentials, and its endpoint
        # comes from the operator's command line: it can reach whatever the operator can,
        # so the tenants' endpoint policy (SPEC §7) is not applied to it.
        operator=True,
    )
    template = KeyTemplate(key_template)
    stamp = new_stamp()
    if path.stat().st_size <= MULTIPART_THRESHOLD:
        raw = orjson.loads(path.read_bytes())
        parse_data(raw)
        data = raw["data"]
        body: bytes | Path = encode_body(data)
        return _put(dest, template, data, body, stamp.event_id, stamp.event_time_ns)
    with tempfile.TemporaryDirectory(prefix="s3dest-put-") as tmp:
        compact = Path(tmp) / "body.json"
        result = CompactResult()
        with path.open("rb") as source, compact.open("wb") as out:
            for chunk in compact_chunks(source, result):
                out.write(chunk)
        _check_envelope(result.envelope)
        return _put(dest, template, result.envelope, compact, stamp.event_id, stamp.event_time_ns)


def _check_envelope(envelope: dict[str, Any]) -> None:
    try:
        MessageData.model_validate({**envelope, "result": []})
    except ValidationError as exc:
        fields = field_messages(exc.errors(), lambda _path, e: e["msg"], root="", indexed=False)
        raise MessageInvalid("invalid message: " + "; ".join(fields), fields) from None


def _put(
    dest: S3Destination,
    template: KeyTemplate,
    data: dict[str, Any],
    body: bytes | Path,
    event_id: str,
    event_time_ns: int,
) -> PutResult:
    # A message file has no envelope: its projectId, connectionId and topic are its data's.
    message = StoredMessage(
        event_id=event_id,
        project_id=metadata_text(data.get("projectId")),
        destination_id="",
        event_time_ns=event_time_ns,
        connection_id=metadata_text(data.get("connectionId")),
        topic=metadata_text(data.get("topic")),
        body=None,
        envelope=None,
    )
    built = build_request(message, template, data=data)
    check_metadata(built.metadata)
    outcome = put_object(
        dest, ObjectRequest(key=built.key, body=body, metadata=built.metadata, event_id=event_id)
    )
    return PutResult(bucket=dest.bucket, key=built.key, etag=outcome.etag, event_id=event_id)
