"""The call policy for an OpenAI-compatible server: which failures are worth another try, how
long the server asks us to wait, how many requests a minute we send, the daily token budget, and
reading a completion's content and token counts."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from bot import metrics
from bot.summarise.article import count_tokens

if TYPE_CHECKING:
    import openai
    from bot.store import Store

log = logging.getLogger("briefbot.llm")


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


class Refused(Exception):
    """The server refused a part of the request's shape (see dialect.py); handled by the caller."""

    def __init__(self, part: str, status: int, message: str):
        super().__init__(message)
        self.part, self.status, self.message = part, status, message


@dataclass
class Completion:
    content: str | None
    finish_reason: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False  # the server sent no usage: the token counts are our estimate


def read_completion(response: Any, messages: list[dict]) -> Completion:
    try:
        choice = response.choices[0]
        content = choice.message.content
        finish_reason = choice.finish_reason
    except (AttributeError, IndexError, TypeError):
        content, finish_reason = None, None
    usage = getattr(response, "usage", None)
    prompt_tokens = getattr(usage, "prompt_tokens", None)
    completion_tokens = getattr(usage, "completion_tokens", None)
    # Some local servers omit usage: estimate, so the budget still works.
    estimated = prompt_tokens is None or completion_tokens is None
    if prompt_tokens is None:
        prompt_tokens = sum(count_tokens(m.get("content") or "") + 4 for m in messages)
    if completion_tokens is None:
        completion_tokens = count_tokens(content or "")
    return Completion(content, finish_reason, int(prompt_tokens), int(completion_tokens), estimated)


class DailyBudget:
    """The daily token budget (UTC days), read from the usage ledger; one warning a day when spent."""

    def __init__(self, budget: int | None, store: Store):
        self.budget, self.store = budget, store
        self._warned_day: str | None = None

    def spent(self, now: datetime) -> tuple[str, int] | None:
        """(UTC day, tokens used that day) when the budget is used up on `now`'s day, else None."""
        if self.budget is None:
            return None
        day = (now.astimezone(timezone.utc) if now.tzinfo else now).strftime("%Y-%m-%d")  # naive is UTC
        used = self.store.llm_tokens_on(day)
        return (day, used) if used >= self.budget else None

    def check(self, purpose: str) -> None:
        spent = self.spent(datetime.now(timezone.utc))
        if spent is None:
            return
        day, used = spent
        metrics.LLM_CALLS.labels(purpose, "budget_exhausted").inc()
        if self._warned_day != day:
            self._warned_day = day
            log.warning("LLM daily token budget used up (%d of %d tokens on %s UTC): extractive briefs until "
                        "the next UTC day", used, self.budget, day)
        raise CallFailed("budget_exhausted",
                         f"daily token budget of {self.budget} used up ({used} tokens on {day})")


def error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if body.get("message"):
            return str(body["message"])
    return str(exc.message or exc)
