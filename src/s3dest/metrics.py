"""Prometheus metrics. One registry per process; `/metrics` serves a view of it.

The counters and the latency histogram are labelled by destination id. What one reader
may see is a `View`: a project's API key sees only the series of its own destinations (a
sample whose `destination` label is one of them, or whose `project` label is its id),
each labelled with the destination's name and project as well, and `s3dest_messages` /
`s3dest_queue_depth` counted over its own messages only. The operator token
(S3DEST_OPERATOR_TOKEN) sees everything: every project's series and the whole queue. A
series with neither label is the operator's alone, so a metric added later without them
does not leak across projects.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
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
    ["destination"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
    registry=registry,
)


@dataclass(frozen=True)
class View:
    """What one reader of /metrics may see."""

    #: destination id -> (name, project id): the reader's destinations (all, for the operator)
    destinations: Mapping[str, tuple[str, str]]
    #: (destination id, state) -> messages not delivered yet, of those destinations
    pending: Mapping[tuple[str, str], int]
    #: states that count towards the queue depth (pending but for parked)
    waiting: frozenset[str]
    #: the reader's project; None for the operator, who sees every series
    project_id: str | None


class _Scoped(Collector):
    def __init__(self, view: View) -> None:
        self.view = view

    def _labels(self, labels: Mapping[str, str]) -> dict[str, str] | None:
        """The sample's labels for this reader (with the destination's name and project),
        or None when the reader may not see it."""
        view = self.view
        destination = labels.get("destination")
        known = view.destinations.get(destination) if destination is not None else None
        if view.project_id is not None:
            if destination is None:
                if labels.get("project") != view.project_id:
                    return None
            elif known is None:
                return None
        out = dict(labels)
        if known is not None:
            out["destination_name"], out["project"] = known
        return out

    def collect(self) -> Iterator[Metric]:
        for family in registry.collect():
            scoped = Metric(family.name, family.documentation, family.type, family.unit)
            for sample in family.samples:
                labels = self._labels(sample.labels)
                if labels is not None:
                    scoped.add_sample(
                        sample.name, labels, sample.value, sample.timestamp, sample.exemplar
                    )
            yield scoped
        yield from self._queue()

    def _queue(self) -> Iterator[Metric]:
        view = self.view
        family = GaugeMetricFamily(
            "s3dest_messages",
            "Messages waiting, in flight, held or parked, per destination and state",
            labels=["destination", "destination_name", "project", "state"],
        )
        depth = 0
        for (destination, state), count in sorted(view.pending.items()):
            known = view.destinations.get(destination)
            if known is None and view.project_id is not None:
                continue
            name, project = known or ("", "")
            family.add_metric([destination, name, project, state], count)
            if state in view.waiting:
                depth += count
        yield family
        yield GaugeMetricFamily(
            "s3dest_queue_depth",
            "Messages not yet delivered or parked, in every process (of the reader's project, "
            "for a project's key)",
            value=depth,
        )


def render(view: View) -> bytes:
    """The Prometheus text exposition of this process's metrics, as `view` may see them."""
    scoped = CollectorRegistry(auto_describe=False)
    scoped.register(_Scoped(view))
    return generate_latest(scoped)
