"""What one careless or hostile client may cost the server (issue 13 items 9 and 10).

- A huge amp.yaml is refused before the (pure-Python, ~15 s of CPU per MB) YAML parser
  runs. Fails on the planted bug "no size check in `manifest.source.source_text`": the
  parser is reached and the 6 MB document takes tens of seconds.
- A client that goes away mid-request is one info line in the log, not an error with a
  traceback. Fails on the planted bug "ClientDisconnect handled as an unexpected error".
- A client that sends its headers or body too slowly is cut off: fails when the server has
  no header or body read timeout (the connection stays open for as long as the client likes).
"""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from s3dest.errors import ManifestInvalid
from s3dest.manifest import parse_manifest, source
from tests.support.s3dest_server import S3destEnv, S3destProcess, serve

# Nothing here depends on the database: the server tests run on SQLite only.
SQLITE_ONLY = pytest.mark.parametrize("database_url", [None], ids=["sqlite"])


def big_manifest(integrations: int) -> str:
    lines = ["specVersion: 1.0.0", "integrations:"]
    for i in range(integrations):
        lines += [
            f"  - name: integration{i}",
            "    provider: salesforce",
            "    read:",
            "      objects:",
            "        - objectName: account",
            "          destination: d",
        ]
    return "\n".join(lines) + "\n"


def test_a_manifest_above_the_limit_never_reaches_the_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def parser_reached(_text: str) -> None:
        raise AssertionError("the YAML parser ran on a document above the size limit")

    monkeypatch.setattr(source, "load", parser_reached)
    monkeypatch.setattr("s3dest.manifest.parse.load", parser_reached)
    text = big_manifest(50_000)  # ~6 MB, like the issue's
    assert len(text) > 5_000_000
    for document in (text, text.encode()):
        with pytest.raises(ManifestInvalid) as caught:
            parse_manifest(document)
        problem = caught.value.fields["manifest"]
        assert f"at most {source.MAX_SOURCE_BYTES:,} bytes" in problem, problem


def test_a_manifest_just_under_the_limit_still_parses() -> None:
    per_integration = len(big_manifest(2)) - len(big_manifest(1))
    count = (source.MAX_SOURCE_BYTES - len(big_manifest(0))) // per_integration
    while len(text := big_manifest(count)) > source.MAX_SOURCE_BYTES:
        count -= 20  # names grow by a digit past 1,000
    assert source.MAX_SOURCE_BYTES - 30 * per_integration < len(text) <= source.MAX_SOURCE_BYTES
    assert len(parse_manifest(text).integrations) == count


@SQLITE_ONLY
def test_a_huge_manifest_upload_is_refused_with_the_limit(
    s3dest_server: S3destProcess, project: tuple[str, str]
) -> None:
    text = big_manifest(50_000)
    with httpx.Client(base_url=s3dest_server.url, timeout=60) as http:
        started = time.monotonic()
        response = http.put(
            "/v1/manifest",
            content=text.encode(),
            headers={"Authorization": f"Bearer {project[1]}", "Content-Type": "application/yaml"},
        )
        elapsed = time.monotonic() - started
    assert response.status_code == 422, response.text
    problem = response.json()["error"]["fields"]["manifest"]
    assert f"at most {source.MAX_SOURCE_BYTES:,} bytes" in problem, problem
    # Generous bound (the parser would take tens of seconds): it was refused before parsing.
    assert elapsed < 10, elapsed


def _raw(server: S3destProcess) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


@SQLITE_ONLY
def test_a_client_that_disconnects_mid_body_is_one_quiet_line(
    s3dest_env: S3destEnv, tmp_path: object, project: tuple[str, str]
) -> None:
    server = serve(s3dest_env, tmp_path)  # type: ignore[arg-type]
    try:
        for method, path in (("POST", "/v1/messages"), ("PUT", "/v1/manifest")):
            with _raw(server) as sock:
                sock.sendall(
                    f"{method} {path} HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: Bearer {project[1]}\r\n"
                    "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n".encode()
                    + b'{"messages": ['
                    + b" " * 5000
                )
                time.sleep(0.5)
        # The server is still fine, and has said what happened once per request, quietly.
        assert httpx.get(f"{server.url}/healthz", timeout=30).status_code == 200
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and server.log().count("client disconnected") < 2:
            time.sleep(0.2)
        log = server.log()
        assert log.count("client disconnected") == 2, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
        assert "unexpected error" not in log, log[-3000:]
        assert project[1] not in log
    finally:
        server.kill()


@SQLITE_ONLY
@pytest.mark.parametrize("stage", ["headers", "body"])
def test_a_slow_client_is_cut_off(
    s3dest_env: S3destEnv, tmp_path: object, project: tuple[str, str], stage: str
) -> None:
    s3dest_env.extra["S3DEST_READ_TIMEOUT_SECONDS"] = "2"
    server = serve(s3dest_env, tmp_path)  # type: ignore[arg-type]
    try:
        with _raw(server) as sock:
            sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n")
            if stage == "body":
                sock.sendall(
                    f"Authorization: Bearer {project[1]}\r\nContent-Type: application/json\r\n"
                    "Content-Length: 100\r\n\r\n{".encode()
                )
            started = time.monotonic()
            sock.settimeout(30)
            try:
                answer = sock.recv(65536)
                while answer and not answer.endswith(b"\r\n\r\n") and b"}" not in answer:
                    more = sock.recv(65536)
                    if not more:
                        break
                    answer += more
            except ConnectionResetError:
                answer = b""
            elapsed = time.monotonic() - started
        # Cut off after about the configured 2 s (generous: a busy 2-core machine), not 30 s.
        assert elapsed < 15, elapsed
        if answer:
            assert answer.startswith((b"HTTP/1.1 408", b"HTTP/1.1 400")), answer[:200]
        assert httpx.get(f"{server.url}/healthz", timeout=30).status_code == 200
    finally:
        server.kill()
