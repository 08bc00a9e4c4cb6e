"""A fake sender (`s3dest.delivery.broker.Sender`) for unit tests of the worker: it makes
no request, counts the PUTs in flight (overall and per bucket), and answers as scripted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from s3dest.s3.writer import PreparedPut, PutOutcome


@dataclass(frozen=True)
class Sent:
    bucket: str
    key: str
    event_id: str
    body: bytes  # a streamed body as far as it was read


class FakeSender:
    def __init__(self, *, seconds: float = 0.0) -> None:
        self.seconds = seconds  # how long each PUT takes
        self._lock = threading.Lock()
        self._errors: dict[str, list[BaseException]] = {}
        self.sent: list[Sent] = []  # the PUTs that returned an outcome
        self.started: list[str] = []  # event ids, as their PUTs began
        self.in_flight = 0
        self.max_in_flight = 0
        self.in_flight_by_bucket: dict[str, int] = {}
        self.max_in_flight_by_bucket: dict[str, int] = {}
        # When set, a PUT waits for this before answering (a slow S3, held by the test).
        self.gate: threading.Event | None = None
        # Called with the event id after each chunk of a streamed body is read.
        self.on_chunk: Callable[[str], None] | None = None

    def fail(self, event_id: str, *errors: BaseException) -> None:
        """The next attempts at `event_id` raise these, in order; later ones succeed."""
        with self._lock:
            self._errors.setdefault(event_id, []).extend(errors)

    def send(self, prepared: PreparedPut) -> PutOutcome:
        request, bucket = prepared.request, prepared.dest.bucket
        with self._lock:
            self.started.append(request.event_id)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            count = self.in_flight_by_bucket.get(bucket, 0) + 1
            self.in_flight_by_bucket[bucket] = count
            self.max_in_flight_by_bucket[bucket] = max(
                self.max_in_flight_by_bucket.get(bucket, 0), count
            )
            errors = self._errors.get(request.event_id)
            error = errors.pop(0) if errors else None
        try:
            body = self._read(request.event_id, prepared.body)
            if self.gate is not None:
                self.gate.wait()
            if self.seconds:
                time.sleep(self.seconds)
            if error is not None:
                raise error
            with self._lock:
                self.sent.append(Sent(bucket, request.key, request.event_id, body))
            return PutOutcome(etag=f'"etag-{request.event_id}"', version=None)
        finally:
            with self._lock:
                self.in_flight -= 1
                self.in_flight_by_bucket[bucket] -= 1

    def _read(self, event_id: str, body: object) -> bytes:
        if isinstance(body, bytes):
            return body
        read = b""
        for chunk in body:  # type: ignore[attr-defined]
            read += chunk
            if self.on_chunk is not None:
                self.on_chunk(event_id)
        return read
