"""One Settings object, read from S3DEST_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from s3dest.errors import InvalidInput


def _float(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        return float(value) if value else default
    except ValueError:
        raise _not_a_number(name, value, "a number, e.g. 30 or 0.5") from None


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return int(value) if value else default
    except ValueError:
        raise _not_a_number(name, value, "a whole number, e.g. 64") from None


def _not_a_number(name: str, value: str | None, expected: str) -> InvalidInput:
    # A bad variable stops the command with its name, not with int()'s traceback.
    return InvalidInput(
        f"{name}={value!r} is not a number", {name: f"{expected}; unset it for the default"}
    )


_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds from `90`, `90s`, `30m`, `12h` or `7d` (a plain number is seconds, as the
    *_SECONDS settings are); ValueError names the accepted forms."""
    value = text.strip().lower()
    unit = _DURATION_UNITS.get(value[-1:]) if value else None
    number = value[:-1] if unit is not None else value
    try:
        seconds = float(number) * (unit or 1.0)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a duration: give seconds or a number with s, m, h or d (e.g. 7d)"
        ) from None
    if seconds < 0 or seconds != seconds:
        raise ValueError(f"{text!r} is not a duration: it must not be negative")
    return seconds


def _duration(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return parse_duration(value)
    except ValueError:
        raise InvalidInput(
            f"{name}={value!r} is not a duration",
            {name: "seconds, or a number with s, m, h or d, e.g. 7d; unset it for the default"},
        ) from None


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".s3dest")
    database_url: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    # Access: the token that sees every project's /metrics (for Prometheus); failed
    # authentications allowed per client address and window before 429 (0: no limit).
    operator_token: str | None = field(default=None, repr=False)
    auth_failure_limit: int = 20
    auth_failure_window_seconds: float = 60.0
    # Delivery
    worker_concurrency: int = 64  # in-flight PUTs per process
    per_destination_concurrency: int = 32  # in-flight PUTs per destination per process
    per_project_concurrency: int = 32  # in-flight PUTs per project per process
    claim_batch: int = 200
    lease_seconds: float = 60.0
    # Transient retries: exponential backoff with full jitter, capped; never gives up.
    retry_base_seconds: float = 0.5
    retry_max_seconds: float = 300.0
    # Destination probes while failing: exponential, capped.
    probe_base_seconds: float = 5.0
    probe_max_seconds: float = 300.0
    request_timeout_seconds: float = 30.0
    # Ingest
    max_request_bytes: int = 2 * 1024 * 1024 * 1024  # 2 GiB per request
    inline_body_bytes: int = 4 * 1024 * 1024  # larger bodies are stored in chunks
    # Larger bodies go up as multipart uploads in parts of this size (S3's minimum is
    # 5 MiB for every part but the last; tests lower it against servers set up for it).
    multipart_part_bytes: int = 5 * 1024 * 1024
    # Batch objects being built or sent (SPEC §9) hold about twice their lines' bytes in
    # memory; a process keeps at most this much of them at once, one project at most half
    # of it while another has some (a batch larger than all of it goes alone).
    batch_memory_bytes: int = 256 * 1024 * 1024
    # A client's request headers must arrive, and its body may pause, at most this long.
    read_timeout_seconds: float = 30.0
    poll_interval_seconds: float = 0.05
    # Fair share (SPEC §7): what one process does at once, per project and in all.
    project_ingest_bytes: int = 64 * 1024 * 1024  # in-flight ingest bytes per project
    ingest_memory_bytes: int = 256 * 1024 * 1024  # in-flight ingest bytes, all projects
    ingest_threads: int = 3  # threads that check and store ingest requests
    # worker processes for bodies of at least ingest_process_bytes (0: on the threads)
    ingest_processes: int = 3
    ingest_process_bytes: int = 256 * 1024
    project_connection_tests: int = 2  # concurrent connection tests per project
    connection_tests: int = 8  # concurrent connection tests, all projects
    # Save-time DNS lookups of endpoint hosts (s3dest.s3.lookups), on threads of their own.
    project_dns_lookups: int = 2  # concurrent lookups per project
    dns_lookups: int = 8  # concurrent lookups, all projects
    dns_timeout_seconds: float = 5.0  # a save gives up on a lookup after this (422)
    # Endpoint policy (SPEC §7): hosts, `.domain` suffixes, addresses and CIDRs that tenants'
    # endpointUrl may point at although they are not public (loopback, private, link-local).
    allowed_endpoint_hosts: str = ""
    # Role destinations (SPEC §8): where s3dest calls STS (unset: AWS's regional endpoint;
    # operator-set, never a tenant's), how long an assumed session lasts, and how long
    # before its expiry it is renewed (every process renews its own).
    sts_endpoint_url: str | None = None
    role_session_seconds: int = 3600
    role_refresh_before_seconds: float = 900.0
    # Retention (SPEC §4): a delivered message's record is pruned this long after its
    # delivery (held and parked messages never are). S3DEST_RETAIN_DELIVERED takes 7d, 12h…
    retain_delivered: float = 7 * 86400.0
    # Notifications (SPEC §4): a webhook delivery that fails is retried with exponential
    # backoff from base to max (full jitter), for up to three days (notifications.dispatch).
    webhook_retry_base_seconds: float = 5.0
    webhook_retry_max_seconds: float = 3600.0

    @property
    def sqlalchemy_url(self) -> str:
        url = self.database_url
        if not url:
            return f"sqlite:///{(self.data_dir / 's3dest.db').resolve()}"
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        return url

    @property
    def is_postgres(self) -> bool:
        return self.sqlalchemy_url.startswith("postgresql")

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from S3DEST_* variables; one unset or empty keeps the default above."""
        return cls(
            data_dir=Path(os.environ.get("S3DEST_DATA_DIR") or cls.data_dir),
            database_url=os.environ.get("S3DEST_DATABASE_URL") or cls.database_url,
            secret_key=os.environ.get("S3DEST_SECRET_KEY") or cls.secret_key,
            operator_token=os.environ.get("S3DEST_OPERATOR_TOKEN") or cls.operator_token,
            auth_failure_limit=_int("S3DEST_AUTH_FAILURE_LIMIT", cls.auth_failure_limit),
            auth_failure_window_seconds=_float(
                "S3DEST_AUTH_FAILURE_WINDOW_SECONDS", cls.auth_failure_window_seconds
            ),
            worker_concurrency=_int("S3DEST_WORKER_CONCURRENCY", cls.worker_concurrency),
            per_destination_concurrency=_int(
                "S3DEST_PER_DESTINATION_CONCURRENCY", cls.per_destination_concurrency
            ),
            claim_batch=_int("S3DEST_CLAIM_BATCH", cls.claim_batch),
            lease_seconds=_float("S3DEST_LEASE_SECONDS", cls.lease_seconds),
            retry_base_seconds=_float("S3DEST_RETRY_BASE_SECONDS", cls.retry_base_seconds),
            retry_max_seconds=_float("S3DEST_RETRY_MAX_SECONDS", cls.retry_max_seconds),
            probe_base_seconds=_float("S3DEST_PROBE_BASE_SECONDS", cls.probe_base_seconds),
            probe_max_seconds=_float("S3DEST_PROBE_MAX_SECONDS", cls.probe_max_seconds),
            request_timeout_seconds=_float(
                "S3DEST_REQUEST_TIMEOUT_SECONDS", cls.request_timeout_seconds
            ),
            max_request_bytes=_int("S3DEST_MAX_REQUEST_BYTES", cls.max_request_bytes),
            inline_body_bytes=_int("S3DEST_INLINE_BODY_BYTES", cls.inline_body_bytes),
            multipart_part_bytes=_int("S3DEST_MULTIPART_PART_BYTES", cls.multipart_part_bytes),
            batch_memory_bytes=_int("S3DEST_BATCH_MEMORY_BYTES", cls.batch_memory_bytes),
            read_timeout_seconds=_float("S3DEST_READ_TIMEOUT_SECONDS", cls.read_timeout_seconds),
            poll_interval_seconds=_float("S3DEST_POLL_INTERVAL_SECONDS", cls.poll_interval_seconds),
            per_project_concurrency=_int(
                "S3DEST_PER_PROJECT_CONCURRENCY", cls.per_project_concurrency
            ),
            project_ingest_bytes=_int("S3DEST_PROJECT_INGEST_BYTES", cls.project_ingest_bytes),
            ingest_memory_bytes=_int("S3DEST_INGEST_MEMORY_BYTES", cls.ingest_memory_bytes),
            ingest_threads=_int("S3DEST_INGEST_THREADS", cls.ingest_threads),
            ingest_processes=_int("S3DEST_INGEST_PROCESSES", cls.ingest_processes),
            ingest_process_bytes=_int("S3DEST_INGEST_PROCESS_BYTES", cls.ingest_process_bytes),
            project_connection_tests=_int(
                "S3DEST_PROJECT_CONNECTION_TESTS", cls.project_connection_tests
            ),
            connection_tests=_int("S3DEST_CONNECTION_TESTS", cls.connection_tests),
            project_dns_lookups=_int("S3DEST_PROJECT_DNS_LOOKUPS", cls.project_dns_lookups),
            dns_lookups=_int("S3DEST_DNS_LOOKUPS", cls.dns_lookups),
            dns_timeout_seconds=_float("S3DEST_DNS_TIMEOUT_SECONDS", cls.dns_timeout_seconds),
            allowed_endpoint_hosts=os.environ.get(
                "S3DEST_ALLOWED_ENDPOINT_HOSTS", cls.allowed_endpoint_hosts
            ),
            sts_endpoint_url=os.environ.get("S3DEST_STS_ENDPOINT_URL") or cls.sts_endpoint_url,
            role_session_seconds=_int("S3DEST_ROLE_SESSION_SECONDS", cls.role_session_seconds),
            role_refresh_before_seconds=_float(
                "S3DEST_ROLE_REFRESH_BEFORE_SECONDS", cls.role_refresh_before_seconds
            ),
            retain_delivered=_duration("S3DEST_RETAIN_DELIVERED", cls.retain_delivered),
            webhook_retry_base_seconds=_float(
                "S3DEST_WEBHOOK_RETRY_BASE_SECONDS", cls.webhook_retry_base_seconds
            ),
            webhook_retry_max_seconds=_float(
                "S3DEST_WEBHOOK_RETRY_MAX_SECONDS", cls.webhook_retry_max_seconds
            ),
        )
