"""Outcomes: what an attempt becomes (a delivery record, a retry, a hold, a parked
message), its metrics and its log line, written in batches.

Sender threads record into `Shared`; the coordinator flushes every `FLUSH_SECONDS`, one
transaction per round, and counts and logs the round in one pass.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

from s3dest import logs, metrics
from s3dest.delivery.broker import Broker
from s3dest.delivery.jobs import Delivered, Job, Report
from s3dest.delivery.leases import Leases
from s3dest.delivery.policy import Hold, Policy, Retry
from s3dest.delivery.shared import Shared
from s3dest.errors import DeliveryError, OrphanedUpload, S3destError
from s3dest.store.queue import MessageState, Outcome

log = logging.getLogger("s3dest.delivery")

# Outcomes are recorded in one transaction per round. A round costs ~1 ms of CPU before
# its first outcome: every 0.25 s keeps that under 0.03 ms per message at 150 msg/s, and a
# delivery still shows within a quarter of a second.
FLUSH_SECONDS = 0.25
# After a round that could not be written (the database is away), the next one waits this
# much longer; leases protect the messages meanwhile.
FLUSH_RETRY_SECONDS = 0.5

_COUNTERS = {
    MessageState.DELIVERED: metrics.delivered,
    MessageState.RETRYING: metrics.retried,
    MessageState.HELD: metrics.held,
    MessageState.PARKED: metrics.parked,
}


class Recorder:
    def __init__(self, broker: Broker, shared: Shared, policy: Policy, name: str) -> None:
        self.broker = broker
        self.shared = shared
        self.policy = policy
        self.name = name

    def failure(
        self,
        job: Job,
        started: float,
        error: BaseException,
        key: str | None,
        *,
        attempted: bool = True,
    ) -> bool:
        """Record a failed attempt (on a sender thread) as the policy decides; returns
        whether an outcome was recorded. `attempted`: a PUT was made (a destination error
        seen without one does not mark the destination failing again)."""
        item, state = job.item, job.state
        finished = time.time()
        runtime = self.shared.view(state)[0] if state is not None else None
        bucket = runtime.s3.bucket if runtime is not None else None
        attempt = item.attempts + 1
        decision = self.policy.decide(error, attempt)
        if isinstance(error, DeliveryError):
            reason, s3_code = error.diagnosis, error.s3_code
        else:  # a bug or a foreign error: never lose the message
            reason = f"unexpected error while writing ({type(error).__name__}); retrying"
            s3_code = None
        kind = decision.kind
        outcome = Outcome(
            item.event_id,
            decision.state,
            started,
            finished,
            bucket,
            key,
            error=reason,
            error_kind=kind,
            next_attempt_at=finished + decision.delay if isinstance(decision, Retry) else None,
            batch=item.leads_batch,
        )
        line = logs.BatchEntry(
            logging.WARNING,
            outcome.state,
            finished,
            {
                "eventId": item.event_id,
                "destinationId": item.destination_id,
                "bucket": bucket,
                "key": key,
                "attempt": attempt,
                "errorKind": kind,
                "error": reason,
                "s3Code": s3_code,
            },
        )
        report = Report(decision.state, item.destination_id, None, line)
        hold = None
        if isinstance(decision, Hold) and state is not None and runtime is not None and attempted:
            hold = (state, item.destination_id, (reason, s3_code, runtime.row.version))
        self.shared.add_failure(outcome, report, hold)
        return True

    def orphan(self, job: Job, orphan: OrphanedUpload) -> None:
        """A multipart upload that could not be aborted (on a sender thread; rare): listed
        for the user at once. Its parts are in the bucket whether or not this is written,
        so a database that is away costs the record, logged here, and nothing else."""
        line = {
            "eventId": job.item.event_id,
            "destinationId": job.item.destination_id,
            "bucket": orphan.bucket,
            "key": orphan.key,
            "uploadId": orphan.upload_id,
            "reason": orphan.reason,
        }
        log.warning("multipart upload left in the bucket", extra=line)
        try:
            self.broker.record_orphan(job.item.destination_id, job.item.event_id, orphan)
        except S3destError as exc:
            log.error("cannot record an orphaned upload", extra={**line, "error": exc.message})

    def flush(self, leases: Leases) -> bool:
        """Write what was recorded since the last round (on the coordinator); False when
        the queue is away (what was taken goes back for the next round)."""
        batch = self.shared.take()
        if batch is None:
            return True
        outcomes, reports, holds = batch.outcomes, batch.reports, batch.holds
        delivered_outcomes, delivered_reports = delivery_records(batch.delivered)
        outcomes += delivered_outcomes
        reports += delivered_reports
        # Counted and logged once, before the outcomes are written (as when the sender
        # threads did it): a state read back from the API is never ahead of /metrics.
        report(reports)
        try:
            # A delivery on a failing destination clears the failure inside `finish`;
            # holds are applied after it, so a failure seen in the same round wins.
            self.broker.finish(self.name, self.name, outcomes)
            for destination_id, (reason, code, version) in holds.items():
                self.broker.hold_destination(
                    destination_id,
                    diagnosis=reason,
                    code=code,
                    probe_delay=self.policy.probe_delay,
                    version=version,
                )
        except S3destError as exc:
            # The database is away: keep the outcomes and try again; leases protect us.
            log.error("cannot record outcomes", extra={"error": exc.message})
            self.shared.restore(outcomes, holds)
            return False
        leases.drop(outcome.event_id for outcome in outcomes)
        return True


def delivery_records(delivered: list[Delivered]) -> tuple[list[Outcome], list[Report]]:
    outcomes: list[Outcome] = []
    reports: list[Report] = []
    for d in delivered:
        item, runtime, finished = d.job.item, d.job.runtime, d.finished
        assert runtime is not None  # a job is only sent once prepared with a runtime
        bucket = runtime.s3.bucket
        outcomes.append(
            Outcome(
                event_id=item.event_id,
                state=MessageState.DELIVERED,
                started_at=d.started,
                finished_at=finished,
                bucket=bucket,
                key=d.job.key,
                etag=d.put.etag,
                version=d.put.version,
                destination_id=item.destination_id,
                destination_version=runtime.row.version,
                batch=item.leads_batch,
            )
        )
        latency = max(0.0, finished - item.accepted_at)
        line = logs.BatchEntry(
            logging.INFO,
            "delivered",
            finished,
            {
                "eventId": item.event_id,
                "destinationId": item.destination_id,
                "bucket": bucket,
                "key": d.job.key,
                "etag": d.put.etag,
                "attempt": item.attempts + 1,
                "latencyMs": round(latency * 1000, 1),
                **({"batchLines": d.job.messages} if item.leads_batch else {}),
            },
        )
        reports.append(
            Report(MessageState.DELIVERED, item.destination_id, latency, line, d.job.messages)
        )
    return outcomes, reports


def report(reports: list[Report]) -> None:
    counts: Counter[tuple[MessageState, str]] = Counter()
    for r in reports:
        counts[r.state, r.destination_id] += r.messages
        if r.latency is not None:
            metrics.latency.labels(r.destination_id).observe(r.latency)
    for (state, destination_id), count in counts.items():
        _COUNTERS[state].labels(destination_id).inc(count)
    logs.log_batch(log, [r.line for r in reports])
