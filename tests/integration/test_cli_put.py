"""`s3dest render-key` and `s3dest put`, run as a user runs them (a subprocess)."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from tests.support.aws_errors_server import AwsErrorsServer
from tests.support.moto_server import Credentials, S3Server
from tests.support.roles import create_role, identity_user
from tests.support.sts_recorder import StsRecorder

from s3dest.devtools.moto import ACCOUNT_ID
from s3dest.keys.samples import READ_EXAMPLE, SUBSCRIBE_EXAMPLE
from s3dest.messages import parse_rfc3339_ns
from s3dest.s3.policy import PolicyInputs, trust_policy, write_policy
from s3dest.s3.writer import MULTIPART_THRESHOLD

UUID7 = r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
OPERATION_ID = "0199e0a8-149d-7ee9-9f50-0514403517f9"


# `s3dest put` signs with botocore's chain: only what a test gives it, never this host's
# files or an instance-metadata address.
NO_CHAIN = {
    "AWS_CONFIG_FILE": "/nonexistent/s3dest-test-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/s3dest-test-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def run_cli(
    *args: str,
    creds: Credentials | None = None,
    timeout: float = 240,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3DEST_"))}
    env["S3DEST_LOG_LEVEL"] = "WARNING"
    env.update(NO_CHAIN)
    env.update(extra_env or {})
    if creds is not None:
        env["AWS_ACCESS_KEY_ID"] = creds.access_key_id
        env["AWS_SECRET_ACCESS_KEY"] = creds.secret_access_key
        if creds.session_token:
            env["AWS_SESSION_TOKEN"] = creds.session_token
    return subprocess.run(
        [sys.executable, "-m", "s3dest.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def message_file(tmp_path: Path, message: Any, name: str = "message.json") -> Path:
    path = tmp_path / name
    path.write_bytes(orjson.dumps(message, option=orjson.OPT_INDENT_2))  # as a person writes it
    return path


def put_args(s3_server: S3Server, bucket: str, path: Path, *extra: str) -> list[str]:
    return [
        "put",
        str(path),
        "--bucket",
        bucket,
        "--region",
        s3_server.region,
        "--endpoint-url",
        s3_server.endpoint,
        *extra,
    ]


def printed(stdout: str) -> dict[str, str]:
    fields = {}
    for line in stdout.splitlines():
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    return fields


# -- render-key -----------------------------------------------------------------------------------


def test_render_key_default_prints_the_page_style_key(tmp_path: Path) -> None:
    result = run_cli("render-key", str(message_file(tmp_path, READ_EXAMPLE)))
    assert result.returncode == 0, result.stderr
    # the event time is the message's operationTime; the event-id is freshly stamped
    assert re.fullmatch(rf"2025-10-14T02:58:59\.323405308Z_{UUID7}\.json\n", result.stdout)
    assert "warning" not in result.stderr


def test_render_key_with_a_page_template_warns_about_the_files_key(tmp_path: Path) -> None:
    """Issue 15 items 1/8: the warnings were the built-in subscribe sample's ("company/"),
    not the key of the file given."""
    template = "join('/', [metadata.objectName, metadata.operationId])"
    result = run_cli(
        "render-key", "--template", template, str(message_file(tmp_path, READ_EXAMPLE))
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"contacts/{OPERATION_ID}\n"
    assert result.stderr == ""
    # The file's own key: a subscribe message (no operationId) would get "company/".
    path = message_file(tmp_path, SUBSCRIBE_EXAMPLE, "subscribe.json")
    refused = run_cli("render-key", "--template", template, str(path))
    assert refused.returncode == 2
    assert "'company/'" in refused.stderr and "empty path segment" in refused.stderr


def test_render_key_reads_the_files_custom_field_and_the_send_shape(tmp_path: Path) -> None:
    """Issue 15 item 1: refused ("does not render for a sample read message") although the
    file has the field; and only {"data": ...} files were read."""
    template = "join('/', [data.result[0].fields.custom_region, metadata.\"event-id\"])"
    message = copy.deepcopy(READ_EXAMPLE)
    message["data"]["result"][0]["fields"]["custom_region"] = "emea"
    result = run_cli("render-key", "--template", template, str(message_file(tmp_path, message)))
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(rf"emea/{UUID7}\n", result.stdout)
    assert result.stderr == ""
    sent = message_file(tmp_path, {"destination": "ampersandS3Bucket", **message["data"]}, "s.json")
    result = run_cli("render-key", "--template", template, str(sent))
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(rf"emea/{UUID7}\n", result.stdout)


def test_render_key_for_a_subscribe_message(tmp_path: Path) -> None:
    template = "join('/', [metadata.objectName, time.date, metadata.\"event-id\"])"
    path = message_file(tmp_path, SUBSCRIBE_EXAMPLE)
    result = run_cli("render-key", "--template", template, str(path))
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(rf"company/2025-04-10/{UUID7}\n", result.stdout)
    assert result.stderr == ""


def test_render_key_wrong_case_fails_helpfully(tmp_path: Path) -> None:
    path = message_file(tmp_path, READ_EXAMPLE)
    result = run_cli("render-key", "--template", "metadata.operationid", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "did you mean metadata.operationId?" in result.stderr


def test_render_key_bad_message_names_the_field(tmp_path: Path) -> None:
    message = copy.deepcopy(READ_EXAMPLE)
    del message["data"]["installationId"]
    result = run_cli("render-key", str(message_file(tmp_path, message)))
    assert result.returncode == 2
    assert "data.installationId" in result.stderr


# -- put ------------------------------------------------------------------------------------------


def test_put_writes_the_message_with_the_putonly_user(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    creds = s3_server.putonly_user(bucket)
    path = message_file(tmp_path, READ_EXAMPLE)
    before = time.time_ns()
    result = run_cli(
        *put_args(s3_server, bucket, path, "--storage-class", "standard_ia"), creds=creds
    )
    after = time.time_ns()
    assert result.returncode == 0, result.stderr
    out = printed(result.stdout)
    assert out["bucket"] == bucket
    # the default key: event time (stamped when `put` accepts the message) + event-id
    found = re.fullmatch(rf"(\S+Z)_({UUID7})\.json", out["key"])
    assert found, out["key"]
    event_time_ns = parse_rfc3339_ns(found.group(1))
    assert before <= event_time_ns <= after
    assert uuid.UUID(found.group(2)).int >> 80 == event_time_ns // 1_000_000
    assert re.fullmatch(r'"[0-9a-f]{32}"', out["etag"])

    admin = s3_server.client()
    stored = admin.get_object(Bucket=bucket, Key=out["key"])
    assert stored["Body"].read() == orjson.dumps(READ_EXAMPLE)  # compact, page order
    assert stored["ETag"] == out["etag"]
    head = admin.head_object(Bucket=bucket, Key=out["key"])
    assert head["ContentType"] == "application/json"
    assert head["StorageClass"] == "STANDARD_IA"
    assert head["Metadata"]["event-id"] == out["key"][31:-5]
    assert head["Metadata"]["operationid"] == OPERATION_ID
    assert len(head["Metadata"]) == 9


def test_put_with_a_key_template(s3_server: S3Server, bucket: str, tmp_path: Path) -> None:
    creds = s3_server.putonly_user(bucket)
    path = message_file(tmp_path, SUBSCRIBE_EXAMPLE)
    template = "join('/', [data.installationId, metadata.\"event-id\"])"
    result = run_cli(*put_args(s3_server, bucket, path, "--key-template", template), creds=creds)
    assert result.returncode == 0, result.stderr
    key = printed(result.stdout)["key"]
    assert re.fullmatch(rf"0c9230e1-8fbe-4b28-bf10-2beee8fbf4ce/{UUID7}", key)
    body = s3_server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == orjson.dumps(SUBSCRIBE_EXAMPLE)


def test_put_create_only_reports_a_collision(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    creds = s3_server.putonly_user(bucket)
    path = message_file(tmp_path, READ_EXAMPLE)
    args = put_args(
        s3_server,
        bucket,
        path,
        "--create-only",
        "--key-template",
        "join('/', [metadata.objectName, metadata.operationId])",
    )
    first = run_cli(*args, creds=creds)
    assert first.returncode == 0, first.stderr
    assert printed(first.stdout)["key"] == f"contacts/{OPERATION_ID}"
    second = run_cli(*args, creds=creds)
    assert second.returncode == 1
    assert "collision" in second.stderr and f"contacts/{OPERATION_ID}" in second.stderr


def test_put_without_credentials_says_which_variables(tmp_path: Path) -> None:
    path = message_file(tmp_path, READ_EXAMPLE)
    result = run_cli("put", str(path), "--bucket", "b", "--region", "us-east-1")
    assert result.returncode == 2
    assert "AWS_ACCESS_KEY_ID" in result.stderr and "AWS_SECRET_ACCESS_KEY" in result.stderr


def test_put_signs_with_a_profile_of_the_shared_files(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    creds = s3_server.putonly_user(bucket)
    files = tmp_path / "aws"
    files.mkdir()
    (files / "credentials").write_text(
        f"[writer]\naws_access_key_id = {creds.access_key_id}\n"
        f"aws_secret_access_key = {creds.secret_access_key}\n"
    )
    path = message_file(tmp_path, READ_EXAMPLE)
    profile_env = {"AWS_SHARED_CREDENTIALS_FILE": str(files / "credentials")}
    result = run_cli(
        *put_args(s3_server, bucket, path, "--profile", "writer"), extra_env=profile_env
    )
    assert result.returncode == 0, result.stderr
    key = printed(result.stdout)["key"]
    s3_server.client().head_object(Bucket=bucket, Key=key)
    # AWS_PROFILE names it as well; an unknown profile is named as the problem.
    again = run_cli(
        *put_args(s3_server, bucket, path), extra_env={**profile_env, "AWS_PROFILE": "writer"}
    )
    assert again.returncode == 0, again.stderr
    missing = run_cli(
        *put_args(s3_server, bucket, path, "--profile", "nobody"), extra_env=profile_env
    )
    assert missing.returncode == 2 and "nobody" in missing.stderr


def test_put_denied_prints_the_policy_to_attach(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    creds = s3_server.putonly_user(s3_server.create_bucket())  # another bucket's user
    result = run_cli(
        *put_args(s3_server, bucket, message_file(tmp_path, READ_EXAMPLE)), creds=creds
    )
    assert result.returncode == 1
    assert "AccessDenied" in result.stderr
    assert f'"Resource": "arn:aws:s3:::{bucket}/*"' in result.stderr
    assert creds.secret_access_key not in result.stderr + result.stdout


def test_put_to_the_wrong_region_names_the_right_one(
    aws_errors_server: AwsErrorsServer, tmp_path: Path
) -> None:
    aws_errors_server.respond_with("PermanentRedirect", region="eu-west-1")
    creds = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    path = message_file(tmp_path, READ_EXAMPLE)
    result = run_cli(
        "put",
        str(path),
        "--bucket",
        "acme-data",
        "--region",
        "us-west-2",
        "--endpoint-url",
        aws_errors_server.endpoint,
        creds=creds,
    )
    assert result.returncode == 1
    assert "is in region 'eu-west-1', not 'us-west-2'" in result.stderr


# -- a large message: streamed, multipart, bounded memory -----------------------------------------


def _large_message(target_bytes: int) -> dict[str, Any]:
    message = copy.deepcopy(READ_EXAMPLE)
    records = []
    size = 0
    i = 0
    while size < target_bytes:
        record = {
            "fields": {
                "id": str(i),
                "email": f"user{i}@example.com",
                "city": "Zürich",
                "score": i * 0.5 + 0.25,
                "count": -i,
                "active": i % 2 == 0,
                "note": None,
            },
            "raw": {
                "id": str(i),
                "properties": {"bio": 'line one\nline "two"\t\\ ' + "x" * 700, "tags": ["a", 1]},
            },
        }
        records.append(record)
        size += 900
        i += 1
    message["data"]["result"] = records
    return message


# Runs the CLI and reports the process's own peak RSS. VmHWM, not ru_maxrss: the latter
# keeps the high-water mark of the forked parent (pytest, holding the test message) across exec.
_PEAK_RSS_RUNNER = """
import re, sys
from s3dest.cli import main
try:
    main(sys.argv[2:], prog_name="s3dest")
finally:
    status = open("/proc/self/status").read()
    with open(sys.argv[1], "w") as fh:
        fh.write(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))
"""


def _run_with_peak_rss(
    args: list[str], creds: Credentials, tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3DEST_"))}
    env.update(
        NO_CHAIN,
        AWS_ACCESS_KEY_ID=creds.access_key_id,
        AWS_SECRET_ACCESS_KEY=creds.secret_access_key,
        S3DEST_LOG_LEVEL="WARNING",
    )
    rss_file = tmp_path / "peak-rss"
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS_RUNNER, str(rss_file), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return result, int(rss_file.read_text())


def test_put_large_message_streams_through_multipart(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    message = _large_message(40 * 1024 * 1024)
    path = message_file(tmp_path, message, "large.json")
    compact = orjson.dumps(message)
    del message
    assert path.stat().st_size > MULTIPART_THRESHOLD and len(compact) > MULTIPART_THRESHOLD
    creds = s3_server.putonly_user(bucket)
    result, peak_kib = _run_with_peak_rss(put_args(s3_server, bucket, path), creds, tmp_path)
    assert result.returncode == 0, result.stderr
    out = printed(result.stdout)
    # streamed: memory stays near the interpreter's baseline plus the part buffers
    # (4 × 8 MiB), far below the message; a whole-file parse would take several times it
    assert peak_kib / 1024 < 150, f"peak RSS {peak_kib / 1024:.0f} MiB"
    assert out["etag"].strip('"').rsplit("-", 1)[1].isdigit()  # a multipart ETag: "…-N"

    admin = s3_server.client()
    head = admin.head_object(Bucket=bucket, Key=out["key"])
    assert head["ContentLength"] == len(compact)
    assert head["ContentType"] == "application/json"
    assert head["Metadata"]["objectname"] == "contacts"
    assert head["Metadata"]["installationid"] == "085353b1-07f1-4209-b471-7e028c0a68c8"
    stored = admin.get_object(Bucket=bucket, Key=out["key"])["Body"].read()
    assert stored == compact


def test_put_as_a_role_assumed_from_a_profile(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    """`s3dest put --role-arn`: the identity of --profile (allowed sts:AssumeRole only)
    assumes the role with --external-id, as the workers do; the role writes."""
    me, my_arn = identity_user(s3_server)
    files = tmp_path / "aws"
    files.mkdir()
    (files / "credentials").write_text(
        f"[operator]\naws_access_key_id = {me.access_key_id}\n"
        f"aws_secret_access_key = {me.secret_access_key}\n"
    )
    role = f"s3dest-put-{uuid.uuid4().hex[:8]}"
    role_arn = f"arn:aws:iam::{ACCOUNT_ID}:role/{role}"
    create_role(
        s3_server, role, trust_policy(my_arn, "ext-123"), write_policy(PolicyInputs(bucket))
    )
    recorder = StsRecorder(s3_server.endpoint).start()
    try:
        env = {
            "AWS_SHARED_CREDENTIALS_FILE": str(files / "credentials"),
            "S3DEST_STS_ENDPOINT_URL": recorder.url,
        }
        path = message_file(tmp_path, READ_EXAMPLE)
        as_role = ("--profile", "operator", "--role-arn", role_arn)
        result = run_cli(
            *put_args(s3_server, bucket, path, *as_role, "--external-id", "ext-123"),
            extra_env=env,
        )
        assert result.returncode == 0, result.stderr
        s3_server.client().head_object(Bucket=bucket, Key=printed(result.stdout)["key"])
        [call] = recorder.assume_role_calls(role_arn)
        assert (call["ExternalId"], call["RoleSessionName"]) == ("ext-123", "s3dest-put")

        # Another external id than the trust policy's: refused, with the policy that fixes
        # it. (moto lets an AssumeRole without ExternalId through such a policy; AWS does
        # not: that diagnosis is in tests/unit/test_role_diagnosis.py.)
        wrong = ("--external-id", "ext-999")
        refused = run_cli(*put_args(s3_server, bucket, path, *as_role, *wrong), extra_env=env)
        assert refused.returncode == 1
        assert f"The role {role_arn} does not let s3dest assume it" in refused.stderr
        assert '"sts:ExternalId": "ext-999"' in refused.stderr and my_arn in refused.stderr
        assert me.secret_access_key not in refused.stderr + refused.stdout
    finally:
        recorder.stop()
