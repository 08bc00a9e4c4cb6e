"""`s3dest demo` (what `make run` runs), as a newcomer runs it (issue 5).

The demo starts its own local S3 (moto) and s3dest, so these tests need neither the
`s3_server` nor the `s3dest_server` fixture: they run the command as a subprocess in a
temporary directory (its data goes to ``.s3dest/demo`` there) and read what it prints —
and, while it serves, what is really in its bucket (`check_bucket`).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import httpx
import orjson
import pytest
from botocore.config import Config
from tests.support.s3dest_server import free_port

from s3dest.devtools.demo import DEMO_BUCKET, hubspot_contact_reads, salesforce_account_events

REPO = Path(__file__).resolve().parents[2]
DEMO = [sys.executable, "-m", "s3dest.cli", "demo"]
EXIT_WITHIN = 60.0  # issue 5: objects in the local bucket within 60 seconds

OBJECT_LINE = re.compile(r"^  (?P<key>\S+)  \((?P<size>\d+) bytes, (?P<storage>[A-Z_]+)\)$")
META_LINE = re.compile(r"^      x-amz-meta: (?P<meta>.+)$")


def demo_env() -> dict[str, str]:
    """The user's environment without any s3dest settings of the test run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("S3DEST_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def landed(stdout: str) -> list[tuple[str, int, dict[str, str]]]:
    """(key, size, metadata) of every object the demo says landed."""
    lines = stdout.splitlines()
    out = []
    for i, line in enumerate(lines):
        match = OBJECT_LINE.match(line)
        if match is None:
            continue
        assert i + 1 < len(lines), stdout
        meta_match = META_LINE.match(lines[i + 1])
        assert meta_match is not None, f"no metadata line after {line!r}:\n{stdout}"
        meta = dict(part.split("=", 1) for part in meta_match["meta"].split(", "))
        out.append((match["key"], int(match["size"]), meta))
    return out


def check_summary(stdout: str) -> tuple[str, str, str]:
    """Assert what the demo prints after the run; return (dashboard url, api key, s3 url)."""
    objects = landed(stdout)
    assert len(objects) >= 7, stdout
    keys = [key for key, _, _ in objects]
    assert len(set(keys)) == len(keys), stdout
    assert all(size > 0 for _, size, _ in objects), stdout
    for key, _, meta in objects:
        required = {"projectid", "installationid", "destinationid", "objectname", "event-id"}
        assert required <= set(meta), meta
        assert meta["timestamp"].isdigit(), meta
        assert meta["event-id"] in key  # the demo's key template ends with the event-id
    names = {meta["objectname"] for _, _, meta in objects}
    assert {"contacts", "account"} <= names, stdout  # HubSpot reads and Salesforce events
    assert len({meta["projectid"] for _, _, meta in objects}) == 1

    delivered = re.search(r"^(\d+) of (\d+) messages delivered", stdout, re.M)
    assert delivered is not None, stdout
    assert delivered[1] == delivered[2] and int(delivered[1]) == len(objects), stdout

    dashboard = re.search(r"^dashboard:\s+(http://127\.0\.0\.1:\d+/)", stdout, re.M)
    api_key = re.search(r"^API key:\s+(\S+)$", stdout, re.M)
    s3 = re.search(r"^local S3:\s+(http://\S+)", stdout, re.M)
    assert dashboard and api_key and s3, stdout
    assert len(api_key[1]) >= 20, stdout
    return dashboard[1], api_key[1], s3[1]


def _records(result: list[dict[str, object]]) -> bytes:
    """A message's records as the producer sent them: `raw` and `rawEvent`, keys sorted."""
    sent = [{k: r[k] for k in ("raw", "rawEvent") if k in r} for r in result]
    return orjson.dumps(sent, option=orjson.OPT_SORT_KEYS)


def check_bucket(s3_url: str, stdout: str) -> None:
    """The demo's bucket holds exactly the objects it printed — same keys, sizes and
    metadata — and each body is one of the messages the demo sent, each message once.

    Read with the local S3 admin key the demo prints (issue 15 item 4: it printed the key
    id, not its secret; its S3 enforces IAM, so only a working pair reads the bucket).
    Planted bug: `encode_body` writing a message without its first record
    (`data["result"][1:]`): the demo's printed list (keys, sizes, metadata, "7 of 7
    delivered") still passes `check_summary`; this fails on it."""
    key_id = re.search(r"^  admin key id:\s+(\S+)$", stdout, re.M)
    secret = re.search(r"^  admin secret key:\s+(\S+)$", stdout, re.M)
    assert key_id and secret, stdout
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_url,
        region_name="us-east-1",
        aws_access_key_id=key_id[1],
        aws_secret_access_key=secret[1],
        config=Config(s3={"addressing_style": "path"}),
    )
    listed = s3.list_objects_v2(Bucket=DEMO_BUCKET)
    assert not listed.get("IsTruncated"), listed
    in_bucket = {o["Key"]: o["Size"] for o in listed.get("Contents", [])}
    printed = {key: (size, meta) for key, size, meta in landed(stdout)}
    assert in_bucket == {key: size for key, (size, _) in printed.items()}, (in_bucket, stdout)
    sent = hubspot_contact_reads() + salesforce_account_events()
    unmatched = [_records(m["result"]) for m in sent]
    for key, (size, meta) in printed.items():
        got = s3.get_object(Bucket=DEMO_BUCKET, Key=key)
        body = got["Body"].read()
        assert len(body) == size, key
        assert {k: v for k, v in got["Metadata"].items() if v} == meta, key
        data = orjson.loads(body)["data"]
        assert data["objectName"] == meta["objectname"], key
        assert data["installationId"] == meta["installationid"], key
        # s3dest adds what it derives (`fields`, the event types) beside what was sent.
        result = _records(data["result"])
        assert result in unmatched, f"{key}: a body the demo did not send: {body[:300]!r}"
        unmatched.remove(result)
    assert unmatched == [], f"{len(unmatched)} sent messages are not in the bucket"


def assert_down(url: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
        except httpx.TransportError:
            return
        time.sleep(0.2)
    raise AssertionError(f"{url} still answers after the demo exited")


def test_demo_runs_end_to_end_and_exits_with_no_wait(tmp_path: Path) -> None:
    port = free_port()
    started = time.monotonic()
    result = subprocess.run(
        [*DEMO, "--no-wait", "--port", str(port)],
        cwd=tmp_path,
        env=demo_env(),
        capture_output=True,
        text=True,
        timeout=EXIT_WITHIN,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert elapsed < EXIT_WITHIN
    dashboard, _, s3 = check_summary(result.stdout)
    assert dashboard == f"http://127.0.0.1:{port}/"
    assert "serving until Ctrl-C" not in result.stdout
    # Only the demo's own summary: no tracebacks, no migration log lines in between.
    assert "Traceback" not in result.stderr, result.stderr
    assert "alembic" not in result.stderr, result.stderr
    # Its state lives in the working directory, and nothing is left running.
    assert (tmp_path / ".s3dest" / "demo").is_dir()
    assert_down(dashboard + "healthz")
    assert_down(s3)


class _Lines:
    """Collects a subprocess's stdout lines on a thread, so reads can time out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout

        def pump() -> None:
            for line in stream:
                self.lines.put(line)
            self.lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def until(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {text!r} within {timeout} s:\n{''.join(self.seen)}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"exited before {text!r}:\n{''.join(self.seen)}")
            self.seen.append(line)
            if text in line:
                return "".join(self.seen)

    def rest(self, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            self.seen.append(line)
        return "".join(self.seen)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("target", ["process", "group"])
def test_demo_keeps_serving_until_ctrl_c(tmp_path: Path, target: str) -> None:
    """Without --no-wait the demo serves until SIGINT, then exits cleanly.

    ``group`` is what a terminal's Ctrl-C does: SIGINT to every process of the foreground
    group, the demo's local S3 server included. ``process`` signals the demo alone.
    """
    port = free_port()
    proc = subprocess.Popen(
        [*DEMO, "--port", str(port)],
        cwd=tmp_path,
        env=demo_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group, so "group" reaches only the demo
        # Ctrl-C as a terminal has it: a run started in the background by a shell (`cmd &`)
        # ignores SIGINT, and so would every process it starts, the demo included.
        preexec_fn=_default_sigint,
    )
    try:
        lines = _Lines(proc)
        stdout = lines.until("serving until Ctrl-C", EXIT_WITHIN)
        dashboard, api_key, s3 = check_summary(stdout)
        check_bucket(s3, stdout)

        # Still serving: the API answers with the printed key, a while after the run.
        time.sleep(1.0)
        assert proc.poll() is None, lines.rest()
        assert httpx.get(dashboard + "healthz", timeout=10).status_code == 200
        deliveries = httpx.get(
            dashboard + "v1/deliveries",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=10,
        )
        assert deliveries.status_code == 200, deliveries.text
        states = {d["state"] for d in deliveries.json()["deliveries"]}
        assert states == {"delivered"}, deliveries.text
        if target == "process":  # once is enough: the commands do not depend on the signal
            check_next_steps(stdout, dashboard, api_key, tmp_path)

        if target == "group":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        returncode = proc.wait(30)
        rest = lines.rest()
        assert returncode == 0, rest
        assert "Traceback" not in rest, rest
        assert_down(dashboard + "healthz")
        assert_down(s3)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def check_next_steps(stdout: str, dashboard: str, api_key: str, tmp_path: Path) -> None:
    """Run the demo's "next steps" exactly as printed, in one shell (its `export` line
    holds for the rest), from another directory, with a PATH that has no s3dest on it:
    `s3dest send` and `curl` are accepted and delivered, the CLI finds the demo's data
    (its project, for a destination made with the printed admin key), and a key made with
    `projects create` works against the demo's server (issue 15 item 4)."""
    commands = re.findall(r"^  \$ (.+)$", stdout, re.M)
    assert commands and commands[0].startswith("export S3DEST_DATA_DIR="), stdout
    assert any(" send " in c for c in commands) and any(c.startswith("curl ") for c in commands)
    assert re.search(rf"^API docs:\s+{re.escape(dashboard)}docs$", stdout, re.M), stdout
    assert httpx.get(dashboard + "docs", timeout=10).status_code == 200
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in demo_env().items() if k not in ("VIRTUAL_ENV",)}
    env["PATH"] = "/usr/bin:/bin"
    script = "set -e\n" + "".join(f"{c}\necho '<<next>>'\n" for c in commands)
    ran = subprocess.run(
        ["bash", "-c", script], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, (ran.stdout, ran.stderr)
    outputs = dict(zip(commands, ran.stdout.split("<<next>>\n"), strict=False))
    sent = next(o for c, o in outputs.items() if " send " in c)
    curled = orjson.loads(next(o for c, o in outputs.items() if c.startswith("curl ")))
    event_ids = [*re.findall(r"^(\S+)  -> ", sent, re.M), curled["accepted"][0]["eventId"]]
    assert len(event_ids) == 2, outputs
    made = next(o for c, o in outputs.items() if "destinations create" in c)
    assert orjson.loads(made)["name"] == "mine", made
    new_key = re.search(r"^api key:\s+(s3d_\S+)$", outputs[commands[-1]], re.M)
    assert new_key is not None, outputs
    with httpx.Client(base_url=dashboard, timeout=10) as http:
        own = http.get("v1/destinations", headers={"Authorization": f"Bearer {new_key[1]}"})
        assert own.status_code == 200 and own.json() == {"destinations": []}, own.text
        deadline = time.monotonic() + 30
        states: list[str] = []
        while time.monotonic() < deadline:
            states = [
                http.get(f"v1/messages/{e}", headers={"Authorization": f"Bearer {api_key}"}).json()[
                    "state"
                ]
                for e in event_ids
            ]
            if states == ["delivered", "delivered"]:
                break
            time.sleep(0.2)
        assert states == ["delivered", "delivered"], states


def test_make_run_runs_the_demo() -> None:
    makefile = (REPO / "Makefile").read_text()
    match = re.search(r"^run:[^\n]*\n((?:\t[^\n]*\n)+)", makefile, re.M)
    assert match is not None, "no run target in the Makefile"
    recipe = match[1]
    assert re.search(r"\bs3dest demo\s*$", recipe, re.M), recipe
    # make itself agrees (-n: print the commands, run nothing).
    # Run as a top-level make: inside `make test` MAKELEVEL/MAKEFLAGS would make this a sub-make
    # that prints "Entering directory" lines around the recipe.
    env = {k: v for k, v in os.environ.items() if k not in {"MAKELEVEL", "MAKEFLAGS", "MFLAGS"}}
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "run"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.strip().splitlines()[-1] == ".venv/bin/s3dest demo", dry.stdout
