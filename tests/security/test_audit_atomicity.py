"""A configuration change and its audit entry commit together or not at all (issue 13,
"Throttling and audit"), on SQLite and PostgreSQL, through a real `s3dest serve`.

For every route that changes configuration, two faults are injected into the server's
database for the tenant's audit entries only (tests.support.audit_faults): the audit insert
fails, and the commit fails after the audit insert ran. Either way the change must not be
there and nor must an entry; then, without the fault, the same request leaves both. The
routes come from the app's own route table (tests.support.routes): a new route that is not
tried here, nor named as changing no configuration, fails
`test_every_route_that_changes_something_is_tried`.

Failed before the fix: the entry was written in its own transaction after the change had
committed, so each fault left the change without an entry (a failed insert was logged and
the change answered 2xx on PostgreSQL; a 500 on SQLite, after the change had committed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.audit_faults import FAULTS, Fault, injected
from tests.support.builders import (
    create_destination,
    destination_fields,
    manifest_routing,
    message,
)
from tests.support.dashboard import post_form, sign_in
from tests.support.moto_server import S3Server
from tests.support.polling import message_record, wait_for_state
from tests.support.routes import api_endpoints, dashboard_endpoints
from tests.support.s3dest_server import S3destEnv, S3destProcess
from tests.support.shared_server import shared_server_fixtures

s3dest_env, s3dest_server = shared_server_fixtures()

#: A template a message without a groupRef cannot render: such a message is parked.
NEEDS_GROUP = "join('/', [data.groupRef, metadata.\"event-id\"])"


@dataclass
class Tenant:
    env: S3destEnv
    api: httpx.Client
    project_id: str
    s3: S3Server
    bucket: str

    def get(self, path: str) -> Any:
        response = self.api.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    def entries(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.get("/v1/audit?limit=1000")["entries"]
        return found

    def destination(self, name: str, **overrides: Any) -> dict[str, Any]:
        return create_destination(self.api, self.s3, self.bucket, name, **overrides)

    def parked_message(self) -> str:
        """A message of a fresh destination, parked (its template cannot render it)."""
        self.destination("parking", keyTemplate=NEEDS_GROUP)
        sent = self.api.post("/v1/messages", json=message(1, destination="parking", groupRef=None))
        assert sent.status_code == 202, sent.text
        event_id: str = sent.json()["accepted"][0]["eventId"]
        wait_for_state(self.api, event_id, "parked")
        return event_id

    def delivered_message(self) -> str:
        self.destination("delivering")
        sent = self.api.post("/v1/messages", json=message(1, destination="delivering"))
        assert sent.status_code == 202, sent.text
        event_id: str = sent.json()["accepted"][0]["eventId"]
        wait_for_state(self.api, event_id, "delivered")
        return event_id

    def record(self, event_id: str) -> tuple[str, float]:
        found = message_record(self.api, event_id)
        return found["state"], found["updatedAt"]


@dataclass(frozen=True)
class Change:
    """A request that changes configuration, the entries it writes, and what it changes as
    the tenant can read it back."""

    request: Callable[[], httpx.Response]
    state: Callable[[], object]
    actions: tuple[str, ...]
    stores: bool = True  # False: the entry is all it writes (a draft's connection test)


def _created_destination(t: Tenant) -> Change:
    fields = destination_fields(t.s3, t.bucket, "made")
    return Change(
        lambda: t.api.post("/v1/destinations", json=fields),
        lambda: t.get("/v1/destinations"),
        ("destination.created",),
    )


def _renamed_destination(t: Tenant) -> Change:
    # A rename also rewrites amp.yaml (two entries, one transaction).
    dest = t.destination("before")
    put = t.api.put(
        "/v1/manifest",
        content=manifest_routing("before"),
        headers={"Content-Type": "application/yaml"},
    )
    assert put.status_code == 200, put.text
    return Change(
        lambda: t.api.patch(
            f"/v1/destinations/{dest['id']}", json={"name": "after", "region": "eu-west-1"}
        ),
        lambda: (t.get(f"/v1/destinations/{dest['id']}"), t.api.get("/v1/manifest").text),
        ("manifest.applied", "destination.updated"),
    )


def _deleted_destination(t: Tenant) -> Change:
    dest = t.destination("doomed")
    return Change(
        lambda: t.api.delete(f"/v1/destinations/{dest['id']}", params={"force": "true"}),
        lambda: t.get("/v1/destinations"),
        ("destination.deleted",),
    )


def _tested_destination(t: Tenant) -> Change:
    # A first passing test makes an untested destination healthy.
    dest = t.destination("tested")
    return Change(
        lambda: t.api.post(f"/v1/destinations/{dest['id']}/test"),
        lambda: t.get(f"/v1/destinations/{dest['id']}"),
        ("destination.tested",),
    )


def _tested_draft(t: Tenant) -> Change:
    fields = destination_fields(t.s3, t.bucket, "draft")
    return Change(
        lambda: t.api.post("/v1/destinations/test", json=fields),
        lambda: t.get("/v1/destinations"),
        ("destination.tested",),
        stores=False,
    )


def _message_change(t: Tenant, event_id: str, path: str, action: str, **json: Any) -> Change:
    """A change of one message's state by `path` (a replay, a re-delivery)."""
    return Change(
        lambda: t.api.post(path.format(event_id=event_id), json=json or None),
        lambda: t.record(event_id),
        (action,),
    )


def _replayed_destination(t: Tenant) -> Change:
    event_id = t.parked_message()
    return _message_change(t, event_id, "/v1/destinations/parking/replay", "destination.replayed")


def _replayed_message(t: Tenant) -> Change:
    event_id = t.parked_message()
    return _message_change(t, event_id, "/v1/messages/{event_id}/replay", "message.replayed")


def _redelivered_message(t: Tenant) -> Change:
    event_id = t.delivered_message()
    return _message_change(t, event_id, "/v1/messages/{event_id}/redeliver", "message.redelivered")


def _redelivered_selection(t: Tenant) -> Change:
    event_id = t.delivered_message()
    path, action = "/v1/deliveries/redeliver", "deliveries.redelivered"
    return _message_change(t, event_id, path, action, eventIds=[event_id])


def _applied_manifest(t: Tenant) -> Change:
    t.destination("routed")
    return Change(
        lambda: t.api.put(
            "/v1/manifest",
            content=manifest_routing("routed"),
            headers={"Content-Type": "application/yaml"},
        ),
        lambda: (t.api.get("/v1/manifest").status_code, t.api.get("/v1/manifest").text),
        ("manifest.applied",),
    )


def _created_key(t: Tenant) -> Change:
    return Change(
        lambda: t.api.post("/v1/api-keys", json={"name": "ci"}),
        lambda: t.get("/v1/api-keys"),
        ("apiKey.created",),
    )


def _revoked_key(t: Tenant) -> Change:
    spare = t.api.post("/v1/api-keys", json={"name": "spare"})
    assert spare.status_code == 201, spare.text
    return Change(
        lambda: t.api.delete(f"/v1/api-keys/{spare.json()['id']}"),
        lambda: t.get("/v1/api-keys"),
        ("apiKey.revoked",),
    )


# Nothing listens on port 9 of loopback: the webhook's events fail and are retried, harmless.
_HOOK = {"url": "http://127.0.0.1:9/hook", "events": ["destination.failing"]}


def _created_webhook(t: Tenant) -> Change:
    return Change(
        lambda: t.api.post("/v1/webhooks", json=_HOOK),
        lambda: t.get("/v1/webhooks"),
        ("webhook.created",),
    )


def _deleted_webhook(t: Tenant) -> Change:
    hook = t.api.post("/v1/webhooks", json=_HOOK)
    assert hook.status_code == 201, hook.text
    return Change(
        lambda: t.api.delete(f"/v1/webhooks/{hook.json()['id']}"),
        lambda: t.get("/v1/webhooks"),
        ("webhook.deleted",),
    )


#: REST route → a change it makes.
CHANGES: dict[str, Callable[[Tenant], Change]] = {
    "POST /v1/destinations": _created_destination,
    "PATCH /v1/destinations/{ref}": _renamed_destination,
    "DELETE /v1/destinations/{ref}": _deleted_destination,
    "POST /v1/destinations/{ref}/test": _tested_destination,
    "POST /v1/destinations/test": _tested_draft,
    "POST /v1/destinations/{ref}/replay": _replayed_destination,
    "POST /v1/messages/{event_id}/replay": _replayed_message,
    "POST /v1/messages/{event_id}/redeliver": _redelivered_message,
    "POST /v1/deliveries/redeliver": _redelivered_selection,
    "PUT /v1/manifest": _applied_manifest,
    "POST /v1/api-keys": _created_key,
    "DELETE /v1/api-keys/{key_id}": _revoked_key,
    "POST /v1/webhooks": _created_webhook,
    "DELETE /v1/webhooks/{webhook_id}": _deleted_webhook,
}
#: Routes that send or store something that is not configuration (reviewed, with why).
NOT_CONFIGURATION = {
    "POST /v1/messages": "messages are data; each has its own record",
    "POST /v1/key-templates/preview": "renders a preview, stores nothing",
    "POST /v1/webhooks/{webhook_id}/test": "posts one test event, stores nothing",
    "POST /signin": "a session, not configuration",
    "POST /signout": "a session, not configuration",
    "POST /ui/api/key-preview": "renders a preview, stores nothing",
    "POST /webhooks/{webhook_id}/test": "posts one test event, stores nothing",
}
#: Dashboard route → the REST route that calls the same service function (so the same
#: `atomic` block); POST /keys is also tried through the dashboard below.
DASHBOARD = {
    "POST /destinations/new": "POST /v1/destinations",
    "POST /destinations/{ref}/edit": "PATCH /v1/destinations/{ref}",
    "POST /destinations/{ref}/delete": "DELETE /v1/destinations/{ref}",
    "POST /destinations/{ref}/test": "POST /v1/destinations/{ref}/test",
    "POST /ui/api/destinations/{ref}/test": "POST /v1/destinations/{ref}/test",
    "POST /ui/api/draft-test": "POST /v1/destinations/test",
    "POST /destinations/{ref}/replay": "POST /v1/destinations/{ref}/replay",
    "POST /messages/{event_id}/replay": "POST /v1/messages/{event_id}/replay",
    "POST /deliveries/redeliver": "POST /v1/deliveries/redeliver",
    "POST /manifest": "PUT /v1/manifest",
    "POST /keys": "POST /v1/api-keys",
    "POST /keys/{key_id}/revoke": "DELETE /v1/api-keys/{key_id}",
    "POST /webhooks": "POST /v1/webhooks",
    "POST /webhooks/{webhook_id}/delete": "DELETE /v1/webhooks/{webhook_id}",
}


def test_every_route_that_changes_something_is_tried() -> None:
    """Each route but GET is tried here, named as the dashboard's form of one that is, or
    named as changing no configuration: a new one is none of these until someone decides."""
    rest = {e.label for e in api_endpoints() if e.method != "GET"}
    dashboard = {e.label for e in dashboard_endpoints() if e.method != "GET"}
    assert rest - CHANGES.keys() - NOT_CONFIGURATION.keys() == set()
    assert dashboard - DASHBOARD.keys() - NOT_CONFIGURATION.keys() == set()
    # Nothing listed that the app does not have (a renamed route would hide here).
    assert CHANGES.keys() <= rest and DASHBOARD.keys() <= dashboard
    assert NOT_CONFIGURATION.keys() <= rest | dashboard
    assert set(DASHBOARD.values()) <= CHANGES.keys()


@pytest.fixture
def tenant(
    s3dest_env: S3destEnv, s3dest_server: S3destProcess, s3_server: S3Server, bucket: str
) -> Iterator[Tenant]:
    project_id, key = s3dest_env.create_project("atomic")
    headers = {"Authorization": f"Bearer {key}"}
    # A connection per request: after an unexpected error (the injected constraint failure
    # on SQLite, a 500) uvicorn closes the connection it answered on, and a client reusing
    # it read a reset.
    fresh = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=s3dest_server.url, headers=headers, timeout=60, limits=fresh) as api:
        yield Tenant(s3dest_env, api, project_id, s3_server, bucket)


def _refused_under(t: Tenant, fault: Fault, change: Change) -> None:
    state, entries = change.state(), t.entries()
    with injected(t.env, fault, t.project_id):
        response = change.request()
    assert response.status_code >= 500, f"{fault}: {response.status_code} {response.text}"
    assert change.state() == state, f"{fault}: the change was stored without its entry"
    assert t.entries() == entries, f"{fault}: an entry was written for a change not stored"


@pytest.mark.parametrize("route", sorted(CHANGES))
def test_a_change_and_its_audit_entry_commit_together(route: str, tenant: Tenant) -> None:
    change = CHANGES[route](tenant)
    for fault in FAULTS:
        _refused_under(tenant, fault, change)
    state, entries = change.state(), tenant.entries()
    response = change.request()
    assert response.is_success, response.text
    assert (change.state() != state) is change.stores
    new = tenant.entries()[: -len(entries) or None]
    # (uuid7 ids order entries by millisecond only: compare as sorted.)
    assert sorted(e["action"] for e in new) == sorted(change.actions)


def test_a_dashboard_change_and_its_entry_commit_together(
    tenant: Tenant, s3dest_server: S3destProcess
) -> None:
    key = tenant.api.headers["Authorization"].removeprefix("Bearer ")
    page = sign_in(s3dest_server.url, key)
    try:
        change = Change(
            lambda: post_form(page, "/keys", "/keys", name="from-the-dashboard"),
            lambda: tenant.get("/v1/api-keys"),
            ("apiKey.created",),
        )
        for fault in FAULTS:
            _refused_under(tenant, fault, change)
        assert change.request().status_code == 200
        assert tenant.entries()[0]["changes"]["name"] == "from-the-dashboard"
    finally:
        page.close()
