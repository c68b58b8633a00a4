"""What every delivery adapter implements, and how it reports failure to the outbox."""

from __future__ import annotations

from typing import Protocol

from bot.config import Target
from bot.models import Brief, Digest


class DeliveryError(Exception):
    """A failed delivery.

    permanent=True (unknown channel, revoked token, invalid webhook): the outbox marks the row
    failed and logs how to fix it, instead of retrying forever. Otherwise the row is retried with
    backoff, honouring `retry_after` seconds when the platform gave one.
    """

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class Deliverer(Protocol):
    """One per target kind. Must never raise anything but DeliveryError for delivery problems.

    `delivery_key` is stable across retries of the same outbox row (usable as an idempotency
    key / Discord nonce). `attempt` is 1 for the first try; > 1 means an earlier try may have
    landed before a crash, so adapters that can check (e.g. by a nonce or message metadata)
    should avoid posting twice. The return value is the platform's message id (Slack ts,
    Discord message id) or None.
    """

    async def deliver_brief(self, target: Target, brief: Brief, *, delivery_key: str, attempt: int) -> str | None: ...

    async def deliver_digest(self, target: Target, digest: Digest, *, delivery_key: str, attempt: int) -> str | None: ...

    async def aclose(self) -> None: ...
