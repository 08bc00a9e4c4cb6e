"""The audit log (issue 13, Build "Throttling and audit"): every configuration change —
keys created and revoked, destinations created, updated, tested, deleted, the manifest
applied, replays — is recorded with who made it, and no secret ever shows. Through the
REST API, the dashboard and the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.builders import destination_fields, manifest_routing, message
from tests.support.dashboard import post_form, sign_in
from tests.support.moto_server import S3Server
from tests.support.polling import wait_for_state
from tests.support.s3dest_server import S3destEnv, S3destProcess

SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLEsessionTOKENmadeUpForTests0123456789"  # made up
NEW_SECRET = "newSecretMadeUpForTheAuditTest/0123456789abcdefXYZ"  # made up
MANIFEST = manifest_routing("audited")


def _entries(api: httpx.Client, limit: int = 100) -> list[dict[str, Any]]:
    response = api.get("/v1/audit", params={"limit": limit})
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def test_every_change_is_audited_without_secrets(
    s3dest_server: S3destProcess, s3dest_env: S3destEnv, s3_server: S3Server, bucket: str
) -> None:
    _, key = s3dest_env.create_project("alpha")
    _, other_key = s3dest_env.create_project("bravo")
    headers = {"Authorization": f"Bearer {key}"}
    api = httpx.Client(base_url=s3dest_server.url, headers=headers, timeout=60)
    with api:
        key_id = api.get("/v1/api-keys").json()["keys"][0]["id"]
        fields = destination_fields(
            s3_server,
            bucket,
            "audited",
            sessionToken=None,
            keyTemplate="join('/', [data.groupRef, metadata.\"event-id\"])",
        )
        secret = fields["secretAccessKey"]
        created = api.post("/v1/destinations", json=fields)
        assert created.status_code == 201, created.text
        dest = created.json()
        target = f"destination:{dest['id']}"
        assert api.post(f"/v1/destinations/{dest['id']}/test").status_code == 200
        # A message the template cannot render (no groupRef) is parked; then replayed.
        sent = api.post("/v1/messages", json=message(1, destination="audited", groupRef=None))
        event_id = sent.json()["accepted"][0]["eventId"]
        wait_for_state(api, event_id, "parked")
        assert api.post(f"/v1/messages/{event_id}/replay").status_code == 200
        wait_for_state(api, event_id, "parked")
        assert api.post(f"/v1/destinations/{dest['id']}/replay").status_code == 200
        patched = api.patch(
            f"/v1/destinations/{dest['id']}",
            json={
                "secretAccessKey": NEW_SECRET,
                "sessionToken": SESSION_TOKEN,
                "region": "eu-west-1",
            },
        )
        assert patched.status_code == 200, patched.text
        put = api.put(
            "/v1/manifest", content=MANIFEST, headers={"Content-Type": "application/yaml"}
        )
        assert put.status_code == 200, put.text
        new_key = api.post("/v1/api-keys", json={"name": "ci"}).json()
        assert api.delete(f"/v1/api-keys/{new_key['id']}").status_code == 204
        deleted = api.delete(f"/v1/destinations/{dest['id']}", params={"force": "true"})
        assert deleted.status_code == 204, deleted.text

        response = api.get("/v1/audit")
        entries = _entries(api)
        actions = [(e["action"], e["target"]) for e in reversed(entries)]
        expected = [
            ("destination.created", target),
            ("destination.tested", target),
            ("message.replayed", f"message:{event_id}"),
            ("destination.replayed", target),
            ("destination.updated", target),
            ("manifest.applied", "manifest"),
            ("apiKey.created", f"apiKey:{new_key['id']}"),
            ("apiKey.revoked", f"apiKey:{new_key['id']}"),
            ("destination.deleted", target),
        ]
        assert actions == expected
        for entry in entries:
            assert set(entry) >= {"at", "actor", "action", "target", "changes"}
            assert entry["actor"] == f"key:{key_id}" and entry["keyPrefix"] == key[:8]

        by_action = {e["action"]: e for e in entries}
        made = by_action["destination.created"]["changes"]
        assert made["bucket"] == {"to": bucket} and made["secretAccessKey"] == {"to": "***"}
        assert "sessionToken" not in made  # not given
        changed = by_action["destination.updated"]["changes"]
        assert changed["region"]["to"] == "eu-west-1"
        assert changed["secretAccessKey"] == {"from": "***", "to": "***"}
        assert changed["sessionToken"] == {"from": "***", "to": "***"}
        assert by_action["destination.tested"]["changes"] == {"ok": True}
        assert by_action["destination.deleted"]["changes"] == {"name": "audited", "force": True}
        assert by_action["apiKey.created"]["changes"] == {
            "name": "ci",
            "prefix": new_key["key"][:8],
        }

        text = response.text
        for leaked in (
            secret,
            NEW_SECRET,
            SESSION_TOKEN,
            key,
            new_key["key"],
            fields["accessKeyId"],
        ):
            assert leaked not in text, "a secret is in the audit log"

        assert api.get("/v1/audit", params={"limit": 2}).json()["entries"] == entries[:2]
        assert api.get("/v1/audit", params={"limit": 0}).status_code == 422

    # Another project sees none of it.
    with httpx.Client(
        base_url=s3dest_server.url, headers={"Authorization": f"Bearer {other_key}"}, timeout=30
    ) as other:
        assert _entries(other) == []


def test_the_dashboard_and_the_cli_are_named_as_actors(
    s3dest_server: S3destProcess, s3dest_env: S3destEnv
) -> None:
    _, key = s3dest_env.create_project("alpha")
    page = sign_in(s3dest_server.url, key)
    created = post_form(page, "/keys", "/keys", name="from-the-dashboard")
    assert created.status_code == 200 and "from-the-dashboard" in created.text
    s3dest_env.cli("projects", "keys", "add", "--name", "from-the-cli")
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=s3dest_server.url, headers=headers, timeout=30) as api:
        key_id = api.get("/v1/api-keys").json()["keys"][0]["id"]
        entries = _entries(api)
    actors = {e["changes"]["name"]: e["actor"] for e in entries}
    assert actors == {"from-the-dashboard": f"dashboard:{key_id}", "from-the-cli": "cli"}
    # The dashboard's audit page lists them.
    audit_page = page.get("/audit")
    assert audit_page.status_code == 200
    assert "from-the-dashboard" in audit_page.text and "apiKey.created" in audit_page.text
