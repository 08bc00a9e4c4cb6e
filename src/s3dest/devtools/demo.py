"""`s3dest demo`: the whole product on one machine, in one command.

Starts a local S3 server (moto, enforcing IAM), runs s3dest on embedded defaults (SQLite),
creates a project and a least-privilege destination, applies an amp.yaml shaped like the
product page's, sends realistic HubSpot contact reads and Salesforce account change
events through the real HTTP ingest path, and prints what landed in the bucket.
"""

from __future__ import annotations

import copy
import shlex
import shutil
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import orjson

DEMO_BUCKET = "ampersand-integration-bucket"
DEMO_MANIFEST = """\
specVersion: 1.0.0
integrations:
  - name: salesforceToS3
    displayName: Salesforce to S3
    provider: salesforce
    read:
      objects:
        - objectName: account
          destination: ampersandS3Bucket
        - objectName: contact
          destination: ampersandS3Bucket
    subscribe:
      objects:
        - objectName: account
          destination: ampersandS3Bucket
          optionalFields:
            - fieldName: annualrevenue
            - fieldName: website
  - name: hubspotToS3
    displayName: HubSpot to S3
    provider: hubspot
    read:
      objects:
        - objectName: contacts
          destination: ampersandS3Bucket
          requiredFields:
            - fieldName: firstname
            - fieldName: lastname
            - fieldName: email
          optionalFields:
            - fieldName: city
"""

_PEOPLE = [
    ("438", "Maria", "Johnson", "Brisbane"),
    ("439", "Kenji", "Watanabe", "Osaka"),
    ("440", "Amara", "Okafor", "Lagos"),
    ("441", "Lucas", "Moreau", "Lyon"),
]


def hubspot_contact_reads() -> list[dict[str, Any]]:
    """HubSpot CRM v3 contact records, as the API returns them (raw only)."""
    results = []
    for record_id, first, last, city in _PEOPLE:
        results.append(
            {
                "raw": {
                    "archived": False,
                    "createdAt": "2023-10-26T17:55:48.301Z",
                    "id": record_id,
                    "properties": {
                        "firstname": first,
                        "lastname": last,
                        "email": f"{first.lower()}@example.com",
                        "city": city,
                        "createdate": "2023-10-26T17:55:48.301Z",
                    },
                }
            }
        )
    return [
        {
            "integration": "hubspotToS3",
            "action": "read",
            "provider": "hubspot",
            "objectName": "contacts",
            "groupRef": "group-id-1",
            "groupName": "group-name-1",
            "consumerRef": "user-id",
            "consumerName": "user-name",
            "installationId": "085353b1-07f1-4209-b471-7e028c0a68c8",
            "installationUpdateTime": "2025-10-14T02:58:55.595861Z",
            "operationId": "0199e0a8-149d-7ee9-9f50-0514403517f9",
            "operationTime": "2025-10-14T02:58:59.323405308Z",
            "result": [item],
        }
        for item in results
    ]


def salesforce_account_events() -> list[dict[str, Any]]:
    """Salesforce Change Data Capture events for Account, with the record (raw)."""
    from s3dest.keys.samples import SUBSCRIBE_EXAMPLE

    base = SUBSCRIBE_EXAMPLE["data"]["result"][0]
    events = []
    for change, description in (
        ("CREATE", "New account"),
        ("UPDATE", "Notes about the account"),
        ("DELETE", None),
    ):
        raw = copy.deepcopy(base["raw"])
        raw_event = copy.deepcopy(base["rawEvent"])
        raw_event["ChangeEventHeader"]["changeType"] = change
        if description is not None:
            raw["Description"] = description
            raw_event["Description"] = description
        events.append(
            {
                "integration": "salesforceToS3",
                "action": "subscribe",
                "provider": "salesforce",
                "objectName": "account",
                "groupRef": "webhook-demo-group-id",
                "groupName": "webhook-demo-group-name",
                "consumerRef": "user-id",
                "consumerName": "user-name",
                "installationId": "0c9230e1-8fbe-4b28-bf10-2beee8fbf4ce",
                "installationUpdateTime": "2025-04-10T23:00:52.618406Z",
                "operationTime": "2025-04-10T23:22:25.000Z",
                "result": [{"raw": raw, "rawEvent": raw_event}],
            }
        )
    return events


def cli_command() -> str:
    """How the person who ran the demo runs `s3dest`: the word itself when it is on PATH
    (an activated venv), else the console script beside this Python (`make run` runs
    .venv/bin/s3dest without activating anything), else `python -m s3dest.cli`."""
    script = Path(sys.executable).parent / "s3dest"
    if not script.exists():
        return f"{shlex.quote(sys.executable)} -m s3dest.cli"
    on_path = shutil.which("s3dest")
    if on_path is not None and Path(on_path).resolve() == script.resolve():
        return "s3dest"
    return shlex.quote(str(script))


def onboarding(
    *,
    url: str,
    api_key: str,
    data_dir: Path,
    example: Path,
    s3_endpoint: str,
    s3_region: str,
    admin_key_id: str,
    admin_secret: str,
    serving: bool,
) -> None:
    """What a newcomer needs for the next step, and commands that work as printed.

    The local S3 admin key is the demo's own, made up for its local server: printing it is
    how a person looks into the bucket (or points a destination of their own at it)."""
    cli = cli_command()
    q = shlex.quote
    host = urlsplit(s3_endpoint).hostname or "127.0.0.1"
    click.echo(f"dashboard:  {url}/   (sign in with the API key)")
    click.echo(f"API docs:   {url}/docs")
    click.echo(f"API key:    {api_key}")
    click.echo(f"local S3:   {s3_endpoint} (bucket {DEMO_BUCKET}, region {s3_region})")
    click.echo(f"  admin key id:      {admin_key_id}")
    click.echo(f"  admin secret key:  {admin_secret}")
    click.echo(f"data dir:   {data_dir}")
    click.echo(
        "  the CLI reads projects and destinations from its data directory: export "
        "S3DEST_DATA_DIR (below) and a key made with `projects create` works here too"
    )
    if not serving:
        return
    click.echo("")
    click.echo("next steps (copy-paste into another terminal while the demo serves):")
    commands = [
        # S3DEST_PROJECT: the CLI's commands then act on the demo's project even once
        # `projects create` (last below) made a second one.
        f"export S3DEST_DATA_DIR={q(str(data_dir))} S3DEST_PROJECT=demo"
        f" S3DEST_ALLOWED_ENDPOINT_HOSTS={q(host)}",
        f"{cli} send --url {url} --api-key {api_key} {q(str(example))}",
        f"curl -sS -X POST {url}/v1/messages -H 'Authorization: Bearer {api_key}'"
        f" -H 'Content-Type: application/json' --data-binary @{q(str(example))}",
        f"{cli} destinations create --name mine --bucket {DEMO_BUCKET} --region {s3_region}"
        f" --endpoint-url {s3_endpoint} --access-key-id {admin_key_id}"
        f" --secret-access-key {q(admin_secret)}",
        f"{cli} projects create acme",
    ]
    for command in commands:
        click.echo(f"  $ {command}")


def _free_port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])


def run_demo(*, port: int = 8080, wait: bool = True) -> None:
    import logging

    # The demo prints its own summary; per-delivery log lines would drown it, and so would
    # alembic's (it logs when imported, below, and when it migrates the demo's database).
    logging.getLogger("s3dest").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)

    import uvicorn

    from s3dest.access.audit import CLI
    from s3dest.api.http_protocol import server_config
    from s3dest.app import create_app
    from s3dest.client import Client
    from s3dest.destinations import service
    from s3dest.destinations.schemas import parse_create
    from s3dest.devtools.moto import start_moto_server
    from s3dest.manifest.service import apply_manifest
    from s3dest.runtime import open_state
    from s3dest.settings import Settings
    from s3dest.store.projects import create_project

    started = time.monotonic()
    data_dir = Path(".s3dest") / "demo"
    shutil.rmtree(data_dir, ignore_errors=True)
    click.echo("starting a local S3 server (moto, enforcing IAM)…")
    s3 = start_moto_server()
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    try:
        s3.create_bucket(DEMO_BUCKET)
        creds = s3.putonly_user(DEMO_BUCKET)
        # The demo's S3 server listens on loopback, which the endpoint policy refuses for
        # tenants (SPEC §7); the demo allows exactly that host, as an operator would.
        settings = Settings(
            data_dir=data_dir,
            poll_interval_seconds=0.05,
            allowed_endpoint_hosts=urlsplit(s3.endpoint).hostname or "",
        )
        state = open_state(settings)
        project = create_project(state.engine, "demo")
        body = parse_create(
            {
                "name": "ampersandS3Bucket",
                "bucket": DEMO_BUCKET,
                "region": s3.region,
                "accessKeyId": creds.access_key_id,
                "secretAccessKey": creds.secret_access_key,
                "endpointUrl": s3.endpoint,
                "keyTemplate": "join('/', [metadata.objectName, time.date, metadata.\"event-id\"])",
            }
        )
        destination = service.create(
            state.engine, state.box, project_id=project.project.id, body=body, actor=CLI
        )
        apply_manifest(state.engine, project.project.id, DEMO_MANIFEST, actor=CLI)
        port = _free_port(port)
        app = create_app(state)
        server = uvicorn.Server(
            server_config(
                app, host="127.0.0.1", port=port, read_timeout=state.settings.read_timeout_seconds
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        click.echo(f"s3dest is serving on {url}; sending HubSpot reads and Salesforce events…")
        with Client(url, project.api_key) as client:
            accepted = client.send_batch(hubspot_contact_reads() + salesforce_account_events())
            deadline = time.monotonic() + 45
            records: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                records = [client.message(a["eventId"]) for a in accepted]
                if all(r["state"] in ("delivered", "parked") for r in records):
                    break
                time.sleep(0.2)
        admin = s3.client()
        click.echo("")
        click.echo(f"landed in s3://{DEMO_BUCKET} (destination {destination.row.name}):")
        for record in records:
            if record["state"] != "delivered":
                click.echo(f"  {record['eventId']}: {record['state']} {record['lastError']}")
                continue
            head = admin.head_object(Bucket=DEMO_BUCKET, Key=record["key"])
            click.echo(
                f"  {record['key']}  ({head['ContentLength']} bytes, "
                f"{head.get('StorageClass', 'STANDARD')})"
            )
            meta = ", ".join(f"{k}={v}" for k, v in sorted(head["Metadata"].items()) if v)
            click.echo(f"      x-amz-meta: {meta}")
        delivered = sum(r["state"] == "delivered" for r in records)
        click.echo("")
        click.echo(
            f"{delivered} of {len(records)} messages delivered in "
            f"{time.monotonic() - started:.1f} s"
        )
        example = data_dir / "example-message.json"
        example.write_bytes(orjson.dumps(hubspot_contact_reads()[0], option=orjson.OPT_INDENT_2))
        onboarding(
            url=url,
            api_key=project.api_key,
            data_dir=data_dir.resolve(),
            example=example.resolve(),
            s3_endpoint=s3.endpoint,
            s3_region=s3.region,
            admin_key_id=s3.admin_access_key_id,
            admin_secret=s3.admin_secret_access_key,
            serving=wait,
        )
        if wait:
            click.echo("serving until Ctrl-C…")
            try:
                while thread.is_alive():
                    thread.join(0.5)
            except KeyboardInterrupt:
                pass
    finally:
        if server is not None:
            server.should_exit = True
            # Wait for uvicorn's shutdown, which stops the delivery threads: they are not
            # daemons, and on a busy machine 0.5 s was not enough, so the process never ended.
            if thread is not None:
                thread.join(30)
        s3.stop()
