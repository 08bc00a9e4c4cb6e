"""Save-time checks of a tenant's endpoint host (SPEC §7), with its DNS lookup on threads of
its own: bounded per project and in all, and given up after a timeout.

`EgressPolicy.check_endpoint` resolves a name with the system resolver (`getaddrinfo`),
which blocks its thread for as long as the tenant's DNS takes to answer — tens of seconds
for a server that does not — and cannot be cancelled. Run on the thread serving the save,
forty such saves of one tenant held every thread that serves requests and another tenant's
GET waited ~30 s (tests/security/test_dns_fair_share.py). Here a lookup runs on this
module's pool; the save waits for it at most S3DEST_DNS_TIMEOUT_SECONDS, then answers with
a 422 on endpointUrl. A lookup that hangs keeps its slot until it really ends, so one
project holds at most S3DEST_PROJECT_DNS_LOOKUPS of the pool's S3DEST_DNS_LOOKUPS threads
and the saves of a project at its bound are refused at once (429), never queued: the save
threads that can be waiting on DNS are bounded too.

Hosts that need no lookup (literal addresses, AWS's endpoints, allow-listed names) are
checked on the calling thread as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from s3dest.fairshare import ProjectSlots
from s3dest.s3 import egress
from s3dest.settings import Settings

RETRY_AFTER = 5


class Lookups:
    def __init__(self, *, per_project: int, total: int, timeout_s: float) -> None:
        # The pool has a thread for every slot, so a lookup let in never queues.
        self._slots = ProjectSlots(
            "endpoint host lookups",
            per_project=max(1, per_project),
            total=max(1, total),
            project_bound="S3DEST_PROJECT_DNS_LOOKUPS",
            total_bound="S3DEST_DNS_LOOKUPS",
            advice="Its DNS answers slowly: check the endpoint's host name, or retry shortly",
            retry_after=RETRY_AFTER,
        )
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(
            max_workers=self._slots.total, thread_name_prefix="s3dest-dns"
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Lookups:
        return cls(
            per_project=settings.project_dns_lookups,
            total=settings.dns_lookups,
            timeout_s=settings.dns_timeout_seconds,
        )

    def checker(self, project_id: str) -> Callable[[str, int], None]:
        """`check_endpoint(host, port)` for the destination rules, on behalf of a project."""
        return lambda host, port: self.check_endpoint(project_id, host, port)

    def check_endpoint(self, project_id: str, host: str, port: int) -> None:
        """The policy's save-time check (raises EndpointRefused); TooBusy at a bound."""
        policy = egress.current()
        if not policy.needs_lookup(host):
            policy.check_endpoint(host, port)
            return
        release = self._slots.hold(project_id)
        try:
            future = self._pool.submit(policy.check_endpoint, host, port)
        except BaseException:  # the pool is shut down: nothing will run to give it back
            release()
            raise
        # Given back when the lookup really ends, not at the timeout: a hanging lookup
        # still holds its thread.
        future.add_done_callback(lambda _: release())
        try:
            future.result(timeout=self.timeout_s)
        except FutureTimeout:
            raise egress.EndpointUnresolvable(
                host, f"{host} did not resolve within {self.timeout_s:g} s (DNS lookup timed out)"
            ) from None

    def close(self) -> None:
        """No new lookups; those running end on their own (none can be cancelled)."""
        self._pool.shutdown(wait=False)


_lock = threading.Lock()
_current: Lookups | None = None


def configure(settings: Settings) -> None:
    """Install the process's lookups (the composition root does, with the policy)."""
    global _current
    with _lock:
        previous, _current = _current, Lookups.from_settings(settings)
    if previous is not None:
        previous.close()


def current() -> Lookups:
    """The installed lookups; until some are installed, those the environment gives."""
    global _current
    with _lock:
        if _current is None:
            _current = Lookups.from_settings(Settings.from_env())
        return _current
