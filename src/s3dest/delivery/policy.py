"""What to do after a failed attempt: retry the message later, hold its destination, or
park the message (the decision `DeliveryError.kind` asks for; see `s3dest.errors`).

    transient   → Retry(delay)   5xx, SlowDown, timeouts, resets, and any foreign error
    destination → Hold           the destination is broken: hold all its messages, probe
    message     → Park           this message can never be written as it is
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from s3dest.delivery.retry import Backoff
from s3dest.errors import DeliveryError, DeliveryErrorKind
from s3dest.settings import Settings
from s3dest.store.queue import MessageState


@dataclass(frozen=True, slots=True)
class Retry:
    """Try the message again after `delay` seconds."""

    delay: float
    state: ClassVar[MessageState] = MessageState.RETRYING
    kind: ClassVar[DeliveryErrorKind] = "transient"


@dataclass(frozen=True, slots=True)
class Hold:
    """Hold every message of the destination until it is fixed or a probe succeeds."""

    state: ClassVar[MessageState] = MessageState.HELD
    kind: ClassVar[DeliveryErrorKind] = "destination"


@dataclass(frozen=True, slots=True)
class Park:
    """Park the message with its reason until it is replayed."""

    state: ClassVar[MessageState] = MessageState.PARKED
    kind: ClassVar[DeliveryErrorKind] = "message"


Decision = Retry | Hold | Park

HOLD = Hold()
PARK = Park()


def kind_of(error: BaseException) -> DeliveryErrorKind:
    """A classified error's kind; anything else (a bug, a foreign error) is transient, so
    that a message is never lost to it."""
    return error.kind if isinstance(error, DeliveryError) else "transient"


@dataclass(frozen=True)
class Policy:
    """Retries back off exponentially with full jitter and never give up; a failing
    destination is probed on its own backoff (`probe`)."""

    retry: Backoff
    probe: Backoff

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            retry=Backoff(settings.retry_base_seconds, settings.retry_max_seconds),
            probe=Backoff(settings.probe_base_seconds, settings.probe_max_seconds),
        )

    def decide(self, error: BaseException, attempt: int) -> Decision:
        """The decision after `attempt` (1-based) failed with `error`."""
        kind = kind_of(error)
        if kind == "transient":
            return Retry(self.retry.next_delay(attempt))
        if kind == "destination":
            return HOLD
        return PARK

    def probe_delay(self, probes: int) -> float:
        """How long a failing destination waits before its next probe."""
        return self.probe.next_delay(probes)
