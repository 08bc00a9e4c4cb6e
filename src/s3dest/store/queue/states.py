"""A message's delivery states, as stored in `messages.state` (the values never change).

queued → delivering → delivered; delivering → retrying (transient) → delivering…;
delivering → held (destination failing) → queued when it is fixed or probed;
delivering → parked (message error) → queued on replay.

Batching destinations (SPEC §9): batching → (sealed) the leader queued, the others
batched; the batched follow their leader when it is delivered, and go back to batching
(another batch) if the leader alone is parked.
"""

from __future__ import annotations

from enum import StrEnum


class MessageState(StrEnum):
    # Waiting for its batch to be sealed, and sealed into a batch whose leader carries it.
    BATCHING = "batching"
    BATCHED = "batched"
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
    MessageState.BATCHING,
    MessageState.BATCHED,
    MessageState.QUEUED,
    MessageState.DELIVERING,
    MessageState.RETRYING,
    MessageState.HELD,
    MessageState.PARKED,
)
# Waiting to be delivered by themselves (pending but for parked: a parked message waits for
# a replay): the queue's depth, and what deleting a destination would discard.
WAITING = (
    MessageState.BATCHING,
    MessageState.BATCHED,
    MessageState.QUEUED,
    MessageState.DELIVERING,
    MessageState.RETRYING,
    MessageState.HELD,
)
