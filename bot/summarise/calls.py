"""The call policy for an OpenAI-compatible server: which failures are worth another try, how
long the server asks us to wait, and how many requests a minute we send."""

from __future__ import annotations

import asyncio
import email.utils
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Awaitable, Callable

if TYPE_CHECKING:
    import openai


# Statuses worth another try (the openai client's own list, which we disabled to own the policy).
RETRYABLE_STATUS = {408, 409, 429}
# A Retry-After longer than this means "come back much later": give up now, post extractive.
MAX_RETRY_AFTER_SECONDS = 60.0


def retry_after_seconds(response: Any) -> float | None:
    if response is None:
        return None
    headers = response.headers
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class RequestRateLimiter:
    """Requests per minute as a GCRA: bursts up to the limit, then evenly spaced; no busy loops."""

    def __init__(self, per_minute: int, sleep: Callable[[float], Awaitable[Any]],
                 clock: Callable[[], float] = time.monotonic):
        self.interval = 60.0 / per_minute
        self.tolerance = 60.0 - self.interval
        self._sleep, self._clock = sleep, clock
        self._tat = 0.0  # theoretical arrival time of the next request
        self._lock = asyncio.Lock()

    async def acquire(self) -> float:
        async with self._lock:
            now = self._clock()
            tat = max(self._tat, now)
            wait = tat - now - self.tolerance
            self._tat = tat + self.interval
            if wait > 0:
                await self._sleep(wait)
            return max(wait, 0.0)


class CallFailed(Exception):
    """No usable completion: outage, budget, or a non-retryable error. Never cached."""

    def __init__(self, outcome: str, message: str):
        super().__init__(message)
        self.outcome = outcome


@dataclass
class Completion:
    content: str | None
    finish_reason: str | None




def error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if body.get("message"):
            return str(body["message"])
    return str(exc.message or exc)
