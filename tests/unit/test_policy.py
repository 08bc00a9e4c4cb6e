"""policy.decide: every kind of error to its decision (retry with backoff, hold, park)."""

from __future__ import annotations

import pytest

from s3dest.delivery.policy import HOLD, PARK, Hold, Park, Policy, Retry, kind_of
from s3dest.delivery.retry import Backoff
from s3dest.errors import (
    DeliveryError,
    DestinationError,
    KeyRenderError,
    MessageDeliveryError,
    S3destError,
    StorageUnavailable,
    TransientDeliveryError,
)
from s3dest.settings import Settings

POLICY = Policy(retry=Backoff(0.5, 300.0), probe=Backoff(5.0, 300.0))


@pytest.mark.parametrize(
    "error",
    [
        TransientDeliveryError("503", s3_code="SlowDown", status=503),
        DeliveryError("unclassified"),  # DeliveryError's own kind is transient
        RuntimeError("a bug"),  # a foreign error never loses the message
        StorageUnavailable("disk full"),  # an S3destError that is not a DeliveryError
        S3destError("other"),
    ],
)
def test_transient_errors_are_retried_with_full_jitter(error: BaseException) -> None:
    assert kind_of(error) == "transient"
    for attempt in (1, 2, 5, 30):
        decision = POLICY.decide(error, attempt)
        assert isinstance(decision, Retry)
        assert 0.0 <= decision.delay <= POLICY.retry.ceiling(attempt)
        assert (decision.state, decision.kind) == ("retrying", "transient")


def test_retry_ceiling_doubles_up_to_the_maximum() -> None:
    assert [POLICY.retry.ceiling(a) for a in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert POLICY.retry.ceiling(40) == 300.0
    always = Policy(retry=Backoff(3.0, 3.0), probe=Backoff(1.0, 1.0))
    delays = {always.decide(TransientDeliveryError("x"), 7).delay for _ in range(50)}  # type: ignore[union-attr]
    assert all(0.0 <= d <= 3.0 for d in delays) and len(delays) > 1  # jittered


def test_destination_errors_hold_the_destination() -> None:
    error = DestinationError("denied", s3_code="AccessDenied", status=403)
    assert kind_of(error) == "destination"
    for attempt in (1, 9):
        decision = POLICY.decide(error, attempt)
        assert decision is HOLD and isinstance(decision, Hold)
        assert (decision.state, decision.kind) == ("held", "destination")


@pytest.mark.parametrize(
    "error",
    [MessageDeliveryError("key collision", status=412), KeyRenderError("no key")],
)
def test_message_errors_park_the_message(error: BaseException) -> None:
    assert kind_of(error) == "message"
    decision = POLICY.decide(error, 1)
    assert decision is PARK and isinstance(decision, Park)
    assert (decision.state, decision.kind) == ("parked", "message")


def test_policy_from_settings_uses_the_configured_backoffs() -> None:
    settings = Settings(
        retry_base_seconds=1.0, retry_max_seconds=8.0, probe_base_seconds=2.0, probe_max_seconds=9.0
    )
    policy = Policy.from_settings(settings)
    assert policy.retry == Backoff(1.0, 8.0) and policy.probe == Backoff(2.0, 9.0)
    assert 0.0 <= policy.probe_delay(10) <= 9.0
