"""A message's delivery states, as stored in `messages.state` (the values never change).

queued → delivering → delivered; delivering → retrying (transient) → delivering…;
delivering → held (destination failing) → queued when it is fixed or probed;
delivering → parked (message error) → queued on replay.
"""

from __future__ import annotations

from enum import StrEnum


class MessageState(StrEnum):
    QUEUED = "queued"
    DELIVERING = "delivering"
    RETRYING = "retrying"
    HELD = "held"
    PARKED = "parked"
    DELIVERED = "delivered"


# Every state, in the order of the flow (as the dashboard lists them).
STATES: tuple[MessageState, ...] = tuple(MessageState)
# Due for a claim once their next_attempt_at has come (the predicate of ix_messages_due).
CLAIMABLE = (MessageState.QUEUED, MessageState.RETRYING)
# Not delivered yet.
PENDING = (
    MessageState.QUEUED,
    MessageState.DELIVERING,
    MessageState.RETRYING,
    MessageState.HELD,
    MessageState.PARKED,
)
# Waiting to be delivered by themselves (pending but for parked: a parked message waits for
# a replay): the queue's depth, and what deleting a destination would discard.
WAITING = (
    MessageState.QUEUED,
    MessageState.DELIVERING,
    MessageState.RETRYING,
    MessageState.HELD,
)
