"""amp.yaml over the API and the CLI, as a user applies it (issue 5).

The page's amp.yaml (the "Refer to the destination in your integration" section of
the product page, copied literally) applies as written once ``ampersandS3Bucket``
exists; before that, and for every other mistake, the error names the line it is on.
Everything runs against a real ``s3dest serve`` subprocess on SQLite and PostgreSQL: one
per database for the module, with a project of its own per test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.builders import create_destination
from tests.support.moto_server import S3Server
from tests.support.s3dest_server import S3destEnv, S3destProcess
from tests.support.samples import DESTINATION, PAGE_AMP_YAML
from tests.support.shared_server import shared_server_fixtures

s3dest_env, s3dest_server = shared_server_fixtures()


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line number of the `occurrence`-th line containing `needle`."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) >= occurrence, f"{needle!r} not in the document"
    return hits[occurrence - 1]


def put_yaml(server: S3destProcess, api_key: str, text: str) -> httpx.Response:
    return httpx.put(
        f"{server.url}/v1/manifest",
        content=text.encode(),
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/yaml"},
        timeout=60,
    )


def get_manifest(
    server: S3destProcess, api_key: str, accept: str = "application/yaml"
) -> httpx.Response:
    return httpx.get(
        f"{server.url}/v1/manifest",
        headers={"Authorization": f"Bearer {api_key}", "Accept": accept},
        timeout=60,
    )


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    return error


# -- the page's amp.yaml -----------------------------------------------------------------


def test_page_amp_yaml_applies_over_the_api_once_the_destination_exists(
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
) -> None:
    _, api_key = project
    first, second = (
        line_of(PAGE_AMP_YAML, "destination:", 1),
        line_of(PAGE_AMP_YAML, "destination:", 2),
    )
    assert (first, second) == (9, 11)

    # No manifest yet: GET says so.
    missing = get_manifest(s3dest_server, api_key)
    assert missing.status_code == 404, missing.text

    # Before the destination exists: 422, naming each `destination:` line.
    error = error_of(put_yaml(s3dest_server, api_key, PAGE_AMP_YAML))
    assert f"line {first}," in error["message"]
    assert f"line {second}," in error["message"]
    assert DESTINATION in error["message"]
    fields = error["fields"]
    assert f"line {first}," in fields["integrations[0].read.objects[0].destination"]
    assert f"line {second}," in fields["integrations[0].read.objects[1].destination"]
    assert "does not exist" in fields["integrations[0].read.objects[0].destination"]
    # ...and nothing was stored.
    assert get_manifest(s3dest_server, api_key).status_code == 404

    with s3dest_server.client(api_key) as client:
        create_destination(client, s3_server, bucket, DESTINATION)
    applied = put_yaml(s3dest_server, api_key, PAGE_AMP_YAML)
    assert applied.status_code == 200, applied.text
    manifest = applied.json()["manifest"]
    assert manifest["specVersion"] == "1.0.0"
    [integration] = manifest["integrations"]
    assert integration["name"] == "salesforceToS3"
    assert integration["provider"] == "salesforce"
    assert integration["read"]["objects"] == [
        {"objectName": "account", "destination": DESTINATION},
        {"objectName": "contact", "destination": DESTINATION},
    ]

    # GET returns the document exactly as it was sent...
    got = get_manifest(s3dest_server, api_key)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("application/yaml")
    assert got.text == PAGE_AMP_YAML
    # ...or, asked for JSON, parsed plus the source.
    as_json = get_manifest(s3dest_server, api_key, accept="application/json")
    assert as_json.status_code == 200, as_json.text
    assert as_json.json() == {"manifest": manifest, "source": PAGE_AMP_YAML}

    # The Python client sends it the same way.
    with s3dest_server.client(api_key) as client:
        assert client.put_manifest(PAGE_AMP_YAML)["manifest"] == manifest


def test_page_amp_yaml_applies_with_the_cli_once_the_destination_exists(
    s3dest_server: S3destProcess,
    s3dest_env: S3destEnv,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
) -> None:
    project_id, api_key = project
    amp = tmp_path / "amp.yaml"
    amp.write_text(PAGE_AMP_YAML)

    for command in ("validate", "apply"):
        result = s3dest_env.cli("manifest", command, str(amp), "--project", project_id, check=False)
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert "line 9," in result.stderr and "line 11," in result.stderr, result.stderr
        assert DESTINATION in result.stderr
    assert get_manifest(s3dest_server, api_key).status_code == 404

    with s3dest_server.client(api_key) as client:
        create_destination(client, s3_server, bucket, DESTINATION)
    validated = s3dest_env.cli("manifest", "validate", str(amp), "--project", project_id)
    assert "valid" in validated.stdout
    # validate does not store anything
    assert get_manifest(s3dest_server, api_key).status_code == 404

    applied = s3dest_env.cli("manifest", "apply", str(amp), "--project", project_id)
    assert "applied" in applied.stdout
    got = get_manifest(s3dest_server, api_key)
    assert got.status_code == 200, got.text
    assert got.text == PAGE_AMP_YAML


def test_manifest_as_json_document(
    s3dest_server: S3destProcess,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
) -> None:
    _, api_key = project
    with s3dest_server.client(api_key) as client:
        create_destination(client, s3_server, bucket, DESTINATION)
    document = {
        "specVersion": "1.0.0",
        "integrations": [
            {
                "name": "salesforceToS3",
                "displayName": "Salesforce to S3",
                "provider": "salesforce",
                "read": {"objects": [{"objectName": "account", "destination": DESTINATION}]},
            }
        ],
    }
    response = httpx.put(
        f"{s3dest_server.url}/v1/manifest",
        json=document,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.json()["manifest"] == document


def test_manifest_needs_an_api_key(s3dest_server: S3destProcess) -> None:
    response = httpx.put(
        f"{s3dest_server.url}/v1/manifest",
        content=PAGE_AMP_YAML.encode(),
        headers={"Content-Type": "application/yaml"},
        timeout=60,
    )
    assert response.status_code == 401


def test_manifests_are_per_project(
    s3dest_server: S3destProcess,
    s3dest_env: S3destEnv,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
) -> None:
    _, api_key = project
    with s3dest_server.client(api_key) as client:
        create_destination(client, s3_server, bucket, DESTINATION)
    assert put_yaml(s3dest_server, api_key, PAGE_AMP_YAML).status_code == 200

    # Another project: ampersandS3Bucket is not its destination, and it has no manifest.
    _, other_key = s3dest_env.create_project("other")
    assert get_manifest(s3dest_server, other_key).status_code == 404
    error = error_of(put_yaml(s3dest_server, other_key, PAGE_AMP_YAML))
    assert "line 9," in error["message"]


# -- errors name the line ----------------------------------------------------------------

UNKNOWN_DESTINATION = PAGE_AMP_YAML.replace(
    "        - objectName: contact\n          destination: ampersandS3Bucket\n",
    "        - objectName: contact\n          destination: warehouseBucket\n",
)
MISSING_DESTINATION_KEY = PAGE_AMP_YAML.replace(
    "        - objectName: contact\n          destination: ampersandS3Bucket\n",
    "        - objectName: contact\n          schedule: '*/10 * * * *'\n",
)
BAD_SPEC_VERSION = "# our integrations\n" + PAGE_AMP_YAML.replace(
    "specVersion: 1.0.0", "specVersion: 2.0.0"
)
UNKNOWN_KEY = PAGE_AMP_YAML.replace(
    "        - objectName: contact\n",
    "        - objectName: contact\n          schedul: '*/30 * * * *'\n",
)
YAML_SYNTAX_ERROR = PAGE_AMP_YAML.replace(
    "displayName: Salesforce to S3", "displayName: Salesforce: to S3"
)

ERROR_CASES = [
    pytest.param(
        UNKNOWN_DESTINATION,
        line_of(UNKNOWN_DESTINATION, "warehouseBucket"),
        ["warehouseBucket", "does not exist"],
        "integrations[0].read.objects[1].destination",
        id="destination-does-not-exist",
    ),
    pytest.param(
        MISSING_DESTINATION_KEY,
        line_of(MISSING_DESTINATION_KEY, "objectName: contact"),
        ["missing required key 'destination'"],
        "integrations[0].read.objects[1].destination",
        id="destination-missing",
    ),
    pytest.param(
        BAD_SPEC_VERSION,
        line_of(BAD_SPEC_VERSION, "specVersion"),
        ["specVersion must be 1.0.0", "2.0.0"],
        "specVersion",
        id="bad-spec-version",
    ),
    pytest.param(
        UNKNOWN_KEY,
        line_of(UNKNOWN_KEY, "schedul:"),
        ["unknown key 'schedul'", "did you mean 'schedule'"],
        "integrations[0].read.objects[1].schedul",
        id="unknown-key",
    ),
    pytest.param(
        YAML_SYNTAX_ERROR,
        line_of(YAML_SYNTAX_ERROR, "displayName"),
        ["YAML syntax error"],
        "manifest",
        id="yaml-syntax-error",
    ),
]


@pytest.mark.parametrize(("text", "line", "phrases", "field"), ERROR_CASES)
def test_manifest_errors_name_the_line(
    s3dest_server: S3destProcess,
    s3dest_env: S3destEnv,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
    text: str,
    line: int,
    phrases: list[str],
    field: str,
) -> None:
    project_id, api_key = project
    with s3dest_server.client(api_key) as client:
        create_destination(client, s3_server, bucket, DESTINATION)
    # A good manifest is in place; a bad one must not replace it.
    assert put_yaml(s3dest_server, api_key, PAGE_AMP_YAML).status_code == 200

    # Over the API: 422, the message and the field name the line.
    error = error_of(put_yaml(s3dest_server, api_key, text))
    assert error["code"] == "invalid_manifest"
    assert error["message"].startswith(f"amp.yaml line {line}, column "), error["message"]
    for phrase in phrases:
        assert phrase in error["message"], error["message"]
    assert field in error["fields"], error["fields"]
    assert f"line {line}," in error["fields"][field]
    assert get_manifest(s3dest_server, api_key).text == PAGE_AMP_YAML

    # With the CLI: exit 2, the same message on stderr, for validate and for apply.
    amp = tmp_path / "amp.yaml"
    amp.write_text(text)
    for command in ("validate", "apply"):
        result = s3dest_env.cli("manifest", command, str(amp), "--project", project_id, check=False)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert f"amp.yaml line {line}, column " in result.stderr, result.stderr
        for phrase in phrases:
            assert phrase in result.stderr, result.stderr
    assert get_manifest(s3dest_server, api_key).text == PAGE_AMP_YAML


def test_manifest_text_is_utf8_and_kept_exactly(
    s3dest_server: S3destProcess,
    s3dest_env: S3destEnv,
    project: tuple[str, str],
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
) -> None:
    """Non-ASCII names round-trip; bytes that are not UTF-8 are an error naming the line
    (not characters silently replaced, nor a traceback from the CLI)."""
    project_id, api_key = project
    with s3dest_server.client(api_key) as client:
        create_destination(client, s3_server, bucket, DESTINATION)
    text = PAGE_AMP_YAML.replace("Salesforce to S3", "Salesforce → S3 (Café)")
    line = line_of(text, "displayName")

    latin1 = PAGE_AMP_YAML.replace("Salesforce to S3", "Café").encode("latin-1")
    response = httpx.put(
        f"{s3dest_server.url}/v1/manifest",
        content=latin1,
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/yaml"},
        timeout=60,
    )
    error = error_of(response)
    assert error["message"].startswith(f"amp.yaml line {line}, column "), error["message"]
    assert "UTF-8" in error["message"]
    assert get_manifest(s3dest_server, api_key).status_code == 404

    amp = tmp_path / "amp.yaml"
    amp.write_bytes(latin1)
    for command in ("validate", "apply"):
        result = s3dest_env.cli("manifest", command, str(amp), "--project", project_id, check=False)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert f"amp.yaml line {line}, column " in result.stderr, result.stderr
        assert "Traceback" not in result.stderr

    assert put_yaml(s3dest_server, api_key, text).status_code == 200
    assert get_manifest(s3dest_server, api_key).text == text
    amp.write_text(text, encoding="utf-8")
    s3dest_env.cli("manifest", "apply", str(amp), "--project", project_id)
    got = get_manifest(s3dest_server, api_key, accept="application/json").json()
    assert got["source"] == text
    assert got["manifest"]["integrations"][0]["displayName"] == "Salesforce → S3 (Café)"
