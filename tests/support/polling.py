"""Polling: wait for something the server does in the background, with generous deadlines
and never a timing assertion (the machine is shared).

One set for every test (and the benchmarks): `wait_until` for any predicate, the others for
message states. Each takes either an `s3dest.client.Client` or an `httpx.Client` whose
base URL is the server and whose headers carry the API key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import httpx

from s3dest.client import Client
from tests.support.checks import metric, metrics_text
from tests.support.s3dest_server import S3destProcess

T = TypeVar("T")

Api = Client | httpx.Client
UNSETTLED = ("queued", "delivering", "retrying", "held")
STUCK = ("parked", "held")  # a message waiting for delivery never reaches these on its own


def wait_until(
    predicate: Callable[[], T], timeout: float = 90.0, what: str = "", interval: float = 0.2
) -> T:
    """Poll `predicate` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        last = value
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what or predicate} (last: {last!r})"
    )


def message_record(api: Api, event_id: str) -> dict[str, Any]:
    """GET /v1/messages/{event_id}."""
    if isinstance(api, Client):
        return api.message(event_id)
    response = api.get(f"/v1/messages/{event_id}")
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


def states(api: Api, event_ids: Iterable[str]) -> list[str]:
    return [message_record(api, event_id)["state"] for event_id in event_ids]


def wait_for_state(api: Api, event_id: str, state: str, timeout: float = 90.0) -> dict[str, Any]:
    """The record of `event_id` once it is in `state`."""
    found: dict[str, Any] = {}

    def reached() -> bool:
        found.update(message_record(api, event_id))
        return bool(found["state"] == state)

    wait_until(reached, timeout, f"message {event_id} to be {state}")
    return found


def wait_for_states(
    api: Api, event_ids: Iterable[str], state: str, timeout: float = 90.0
) -> list[dict[str, Any]]:
    """The records of `event_ids` (in order) once every one is in `state`."""
    ids = list(event_ids)

    def reached() -> list[dict[str, Any]]:
        got = [message_record(api, event_id) for event_id in ids]
        return got if all(r["state"] == state for r in got) else []

    return wait_until(reached, timeout, f"{len(ids)} messages to be {state}")


def wait_delivered(
    api: Api, event_ids: Iterable[str], timeout: float = 90.0
) -> list[dict[str, Any]]:
    """The records of `event_ids` (in order) once all are delivered; fails at once when one
    is parked or held (it would not be delivered without help)."""
    ids = list(event_ids)
    deadline = time.monotonic() + timeout
    got: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        got = [message_record(api, event_id) for event_id in ids]
        if all(r["state"] == "delivered" for r in got):
            return got
        assert not any(r["state"] in STUCK for r in got), got
        time.sleep(0.2)
    raise AssertionError(f"not delivered within {timeout:.0f}s: {got}")


def pending_states(api: Api, states: Iterable[str] = UNSETTLED) -> list[str]:
    """Which of `states` have at least one message (GET /v1/deliveries?state=…)."""
    out = []
    for state in states:
        params: dict[str, str | int] = {"state": state, "limit": 1}
        if isinstance(api, Client):
            found = bool(api.deliveries(state=state, limit=1))
        else:
            response = api.get("/v1/deliveries", params=params)
            assert response.status_code == 200, response.text
            found = bool(response.json()["deliveries"])
        if found:
            out.append(state)
    return out


def wait_settled(api: Api, timeout: float = 120.0, states: Iterable[str] = UNSETTLED) -> None:
    """Until no message of the project is in any of `states` (by default: queued, in flight,
    retrying or held)."""
    wanted = tuple(states)
    wait_until(lambda: not pending_states(api, wanted), timeout, f"no message {wanted}", 0.5)


def wait_queue_empty(server: S3destProcess, api_key: str, timeout: float) -> None:
    """Until the server's s3dest_queue_depth is 0: nothing queued, in flight, retrying or held
    in any process (the gauge is read from the database)."""
    wait_until(
        lambda: metric(metrics_text(server, api_key), "s3dest_queue_depth") == 0,
        timeout,
        "an empty queue",
        0.5,
    )


def wait_settled_and_delivered(api: Api, event_ids: Iterable[str], timeout: float = 120.0) -> None:
    """Until nothing of the project is unsettled (see `wait_settled`), then: every one of
    `event_ids` is delivered. Cheaper than `wait_delivered` for thousands of messages."""
    ids = list(event_ids)
    wait_settled(api, timeout)
    remaining = [e for e, state in zip(ids, states(api, ids), strict=True) if state != "delivered"]
    assert not remaining, f"{len(remaining)} accepted messages were not delivered"
