"""Prometheus metrics. One registry per process; `/metrics` serves it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

registry = CollectorRegistry()

accepted = Counter(
    "s3dest_messages_accepted",
    "Messages accepted (durable) at ingest",
    ["destination"],
    registry=registry,
)
delivered = Counter(
    "s3dest_messages_delivered", "Messages written to S3", ["destination"], registry=registry
)
retried = Counter(
    "s3dest_messages_retried",
    "Transient failures scheduled for retry",
    ["destination"],
    registry=registry,
)
held = Counter(
    "s3dest_messages_held",
    "Messages held because their destination failed",
    ["destination"],
    registry=registry,
)
parked = Counter(
    "s3dest_messages_parked",
    "Messages parked with a reason",
    ["destination"],
    registry=registry,
)
latency = Histogram(
    "s3dest_accept_to_delivered_seconds",
    "Time from acceptance to S3's acknowledgement",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
    registry=registry,
)
queue_depth = Gauge(
    "s3dest_queue_depth",
    "Messages not yet delivered or parked (all processes)",
    registry=registry,
)


def set_queue_depth_source(source: Callable[[], float]) -> None:
    queue_depth.set_function(source)


class _StateCounts(Collector):
    """``s3dest_messages{destination, state}``: messages not yet delivered, read from the
    shared queue at scrape time, so it is right whichever process delivers them."""

    def __init__(self) -> None:
        self.source: Callable[[], Mapping[tuple[str, str], int]] | None = None

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "s3dest_messages",
            "Messages waiting, in flight, held or parked, per destination and state",
            labels=["destination", "state"],
        )
        if self.source is not None:
            for (destination, state), count in sorted(self.source().items()):
                family.add_metric([destination, state], count)
        yield family


_state_counts = _StateCounts()
registry.register(_state_counts)


def set_state_counts_source(source: Callable[[], Mapping[tuple[str, str], int]]) -> None:
    _state_counts.source = source
