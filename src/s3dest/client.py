"""`s3dest.Client`: the Python API for producers (and the CLI's `send`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any

import httpx

from s3dest.errors import ApiError, Conflict, InvalidInput, NotFound, StorageUnavailable


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        error = response.json()["error"]
        code, message, fields = error["code"], error["message"], error.get("fields") or {}
    except Exception:
        code, message, fields = "http_error", response.text[:500], {}
    if response.status_code == 422:
        raise InvalidInput(message, fields)
    if response.status_code == 404:
        raise NotFound(message)
    if response.status_code == 409:
        raise Conflict(message)
    if response.status_code == 503:
        raise StorageUnavailable(message)
    raise ApiError(response.status_code, code, message, fields)


class Client:
    """Talks to an s3dest server with a project API key.

    >>> with Client("http://127.0.0.1:8080", api_key) as client:
    ...     client.send({"destination": "ampersandS3Bucket", "action": "read", ...})
    """

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 60.0) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"Client({str(self._http.base_url)!r})"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        _raise_for(response)
        if response.status_code == 204 or not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    # messages
    def send(
        self, message: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, str]:
        """Send one message; returns {eventId, destinationId} once it is durable. With an
        `idempotency_key`, sending the same message again with that key within the
        server's idempotency window returns the same answer and stores nothing twice."""
        result: dict[str, str] = self._call(
            "POST", "/v1/messages", json=dict(message), headers=_idempotency(idempotency_key)
        )["accepted"][0]
        return result

    def send_batch(
        self, messages: Iterable[Mapping[str, Any]], *, idempotency_key: str | None = None
    ) -> list[dict[str, str]]:
        """Send a batch (all-or-nothing); returns one {eventId, destinationId} per message
        (`idempotency_key` as for `send`)."""
        body = {"messages": [dict(m) for m in messages]}
        accepted: list[dict[str, str]] = self._call(
            "POST", "/v1/messages", json=body, headers=_idempotency(idempotency_key)
        )["accepted"]
        return accepted

    def message(self, event_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/messages/{event_id}")
        return result

    def replay(self, event_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/v1/messages/{event_id}/replay")
        return result

    def redeliver(self, event_id: str) -> dict[str, Any]:
        """Write a delivered message again (same key and body) while its body is kept."""
        result: dict[str, Any] = self._call("POST", f"/v1/messages/{event_id}/redeliver")
        return result

    def deliveries(
        self, *, destination: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if destination:
            params["destination"] = destination
        if state:
            params["state"] = state
        result: list[dict[str, Any]] = self._call("GET", "/v1/deliveries", params=params)[
            "deliveries"
        ]
        return result

    def deliveries_page(self, **filters: Any) -> dict[str, Any]:
        """One page of GET /v1/deliveries: {"deliveries": [...], "nextCursor": ...}. Filters
        by the API's names (destination, state, eventId, installationId, objectName, key,
        since, until, cursor, limit); None leaves one out."""
        params = {k: v for k, v in filters.items() if v is not None}
        result: dict[str, Any] = self._call("GET", "/v1/deliveries", params=params)
        return result

    def export_deliveries(self, fmt: str = "jsonl", **filters: Any) -> Iterator[bytes]:
        """GET /v1/deliveries/export: every matching record as JSON Lines or CSV (`fmt`),
        in pieces as the server streams them. Filters as for `deliveries_page`."""
        params = {k: v for k, v in filters.items() if v is not None}
        with self._http.stream(
            "GET", "/v1/deliveries/export", params={**params, "format": fmt}
        ) as response:
            if response.status_code >= 400:
                response.read()
                _raise_for(response)
            yield from response.iter_bytes()

    def redeliver_selection(self, **body: Any) -> dict[str, Any]:
        """POST /v1/deliveries/redeliver: `eventIds`, or a time range (`since`, `until`)
        with the filters of `deliveries_page`; returns what was queued and what was not."""
        result: dict[str, Any] = self._call("POST", "/v1/deliveries/redeliver", json=body)
        return result

    def replay_destination(self, ref: str) -> int:
        """Queue every parked message of a destination again; returns how many."""
        result: dict[str, int] = self._call("POST", f"/v1/destinations/{ref}/replay")
        return result["replayed"]

    # destinations
    def create_destination(self, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/v1/destinations", json=fields)
        return result

    def destinations(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/v1/destinations")["destinations"]
        return result

    def destination(self, ref: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/destinations/{ref}")
        return result

    def update_destination(self, ref: str, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PATCH", f"/v1/destinations/{ref}", json=fields)
        return result

    def delete_destination(self, ref: str, *, force: bool = False) -> None:
        self._call("DELETE", f"/v1/destinations/{ref}", params={"force": str(force).lower()})

    def test_destination(self, ref: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/v1/destinations/{ref}/test")
        return result

    def orphaned_uploads(self, ref: str) -> dict[str, Any]:
        """Multipart uploads s3dest could not abort, with the lifecycle rule to add."""
        result: dict[str, Any] = self._call("GET", f"/v1/destinations/{ref}/orphaned-uploads")
        return result

    # API keys
    def api_keys(self) -> list[dict[str, Any]]:
        """The project's live keys (id, name, prefix, createdAt, lastUsedAt); never a key."""
        result: list[dict[str, Any]] = self._call("GET", "/v1/api-keys")["keys"]
        return result

    def create_api_key(self, name: str) -> dict[str, Any]:
        """Issue another key; the answer's `key` is shown this once."""
        result: dict[str, Any] = self._call("POST", "/v1/api-keys", json={"name": name})
        return result

    def revoke_api_key(self, key_id: str) -> None:
        self._call("DELETE", f"/v1/api-keys/{key_id}")

    # manifest
    def manifest(self) -> str:
        """The project's amp.yaml, as uploaded."""
        result: str = self._call("GET", "/v1/manifest", headers={"Accept": "application/yaml"})
        return result

    def put_manifest(self, yaml_text: str | bytes) -> dict[str, Any]:
        content = yaml_text.encode() if isinstance(yaml_text, str) else yaml_text
        result: dict[str, Any] = self._call(
            "PUT",
            "/v1/manifest",
            content=content,
            headers={"Content-Type": "application/yaml"},
        )
        return result


def _idempotency(key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": key} if key is not None else {}
