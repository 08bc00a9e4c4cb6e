"""Save-time DNS lookups (s3dest.s3.lookups): on their own threads, given up after the
timeout, and bounded per project and in all for as long as a lookup really runs. A
resolver that waits on an event stands for a DNS server that does not answer; the policy
is this process's, put back afterwards."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest

from s3dest.errors import TooBusy
from s3dest.s3 import egress
from s3dest.s3.egress import EgressPolicy, EndpointUnresolvable
from s3dest.s3.lookups import Lookups

PUBLIC = "93.184.215.14"  # an answer only: nothing connects to it


class HangingDns:
    def __init__(self) -> None:
        self.answer = threading.Event()
        self.threads: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.threads.append(threading.current_thread().name)
        if host.startswith("hang."):
            self.answer.wait(30)
        return [PUBLIC]


@pytest.fixture
def dns() -> Iterator[HangingDns]:
    fake = HangingDns()
    previous = egress.current()
    egress.configure(EgressPolicy.from_setting("", resolver=fake))
    try:
        yield fake
    finally:
        fake.answer.set()
        egress.configure(previous)


def test_a_lookup_runs_on_its_own_thread_and_is_given_up_after_the_timeout(
    dns: HangingDns,
) -> None:
    lookups = Lookups(per_project=2, total=4, timeout_s=0.2)
    lookups.check_endpoint("p", "fast.example", 443)
    assert dns.threads == [dns.threads[0]] and dns.threads[0].startswith("s3dest-dns")
    with pytest.raises(EndpointUnresolvable, match=r"hang.example did not resolve within 0.2 s"):
        lookups.check_endpoint("p", "hang.example", 443)
    # Literal addresses and allow-listed names are not looked up: no thread, no bound.
    lookups.check_endpoint("p", PUBLIC, 443)
    assert len(dns.threads) == 2


def test_a_hanging_lookup_keeps_its_slot_until_it_ends(dns: HangingDns) -> None:
    lookups = Lookups(per_project=1, total=2, timeout_s=0.1)
    with pytest.raises(EndpointUnresolvable):
        lookups.check_endpoint("a", "hang.example", 443)
    with pytest.raises(TooBusy, match="S3DEST_PROJECT_DNS_LOOKUPS") as busy:
        lookups.check_endpoint("a", "fast.example", 443)  # A's lookup still hangs
    assert busy.value.retry_after >= 1
    with pytest.raises(EndpointUnresolvable):
        lookups.check_endpoint("b", "hang.example", 443)
    with pytest.raises(TooBusy, match="S3DEST_DNS_LOOKUPS"):
        lookups.check_endpoint("c", "fast.example", 443)  # every thread is taken
    dns.answer.set()  # the DNS answers at last: the slots come back
    for _ in range(100):
        try:
            lookups.check_endpoint("c", "fast.example", 443)
            break
        except TooBusy:
            threading.Event().wait(0.05)
    else:
        raise AssertionError("the slots did not come back once the lookups ended")
    lookups.check_endpoint("a", "fast.example", 443)
