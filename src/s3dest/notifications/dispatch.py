"""The outbox's sender: claims due webhook deliveries (with a lease), signs and POSTs
each, and records the outcome. A delivery that fails (no 2xx, no answer, refused by the
endpoint policy) is retried with exponential backoff and jitter between
S3DEST_WEBHOOK_RETRY_BASE_SECONDS and S3DEST_WEBHOOK_RETRY_MAX_SECONDS, for up to
RETRY_WINDOW_SECONDS after the event; then it is marked failed. One per process, beside
the delivery worker; processes share the outbox through the database."""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine

from s3dest.background import Periodic
from s3dest.destinations.secrets import SecretBox
from s3dest.errors import S3destError
from s3dest.notifications import sender, signing
from s3dest.settings import Settings
from s3dest.store import webhooks as store

log = logging.getLogger("s3dest.notifications")

POLL_SECONDS = 0.5  # how soon an event is sent after its transition, at most
RETRY_WINDOW_SECONDS = 3 * 86400.0
LEASE_SECONDS = 4 * sender.TIMEOUT_SECONDS  # longer than one POST can take
SENDERS = 4  # POSTs in flight per process: one slow endpoint does not stall the others
_CLAIM = 16


def next_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds before the next try after `attempts` failed ones: base·2^(n-1), capped,
    times a random factor in [0.5, 1] so endpoints that failed together do not retry in
    step."""
    exponent = min(max(0, attempts - 1), 40)
    return float(min(cap, base * 2.0**exponent)) * random.uniform(0.5, 1.0)


class Dispatcher:
    def __init__(self, engine: Engine, settings: Settings, box: SecretBox) -> None:
        self.engine = engine
        self.box = box
        self.base = settings.webhook_retry_base_seconds
        self.cap = settings.webhook_retry_max_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.job = Periodic("s3dest-webhooks", POLL_SECONDS, self.run_once)
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(SENDERS, thread_name_prefix="s3dest-webhook")
        self.job.start()

    def stop(self) -> None:
        self.job.stop(timeout=sender.TIMEOUT_SECONDS + 2)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def run_once(self) -> int:
        """Send everything due now; returns how many were delivered."""
        if not store.any_due(self.engine):
            return 0
        delivered = 0
        while not self.job.stopping:
            due = store.claim_due(
                self.engine, self.owner, limit=_CLAIM, lease_seconds=LEASE_SECONDS
            )
            if not due:
                break
            if self._pool is None:
                delivered += sum(self._send(d) for d in due)
            else:
                delivered += sum(self._pool.map(self._send, due))
        return delivered

    def _send(self, due: store.DueDelivery) -> bool:
        try:
            secret = self.box.decrypt(due.secret_enc, aad=signing.aad(due.webhook_id))
        except S3destError as exc:  # the key it was encrypted with is gone
            outcome = sender.Sent(None, f"cannot decrypt the signing secret: {exc.message}")
        else:
            outcome = sender.post(
                due.url, due.payload, signing.headers(secret, due.id, due.payload)
            )
        attempts = due.attempts + 1
        retry_at: float | None = None
        if not outcome.ok and time.time() - due.created_at < RETRY_WINDOW_SECONDS:
            retry_at = time.time() + next_delay(attempts, self.base, self.cap)
        store.record_attempt(
            self.engine,
            self.owner,
            due.id,
            status=outcome.status,
            error=outcome.error,
            next_attempt_at=retry_at,
            delivered=outcome.ok,
        )
        log.info(
            "webhook delivered" if outcome.ok else "webhook delivery failed",
            extra={
                "webhookId": due.webhook_id,
                "deliveryId": due.id,
                "projectId": due.project_id,
                "attempt": attempts,
                "status": outcome.status,
                "error": outcome.error,
                "retryIn": None if retry_at is None else round(retry_at - time.time(), 3),
            },
        )
        return outcome.ok
