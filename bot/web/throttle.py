"""Guessing the dashboard token from one address is slowed to a crawl: after FAILURES_ALLOWED wrong
tokens (login form or Bearer header) within WINDOW_SECONDS, that address is refused, even with the
right token, until its oldest failure in the window has aged out.

Kept in this process's memory: a bot restart, or another worker serving the dashboard, starts
counting afresh (a guesser still gets at most FAILURES_ALLOWED tries per window per process)."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from typing import Callable

FAILURES_ALLOWED = 10
WINDOW_SECONDS = 15 * 60
# Addresses remembered at most: a flood of addresses cannot grow the table without bound (the
# least recently failing ones are forgotten first).
MAX_ADDRESSES = 10_000


class FailedLogins:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def wait_seconds(self, address: str) -> int:
        """0 when `address` may try a token now; else how long until it may (for Retry-After)."""
        failures = self._recent(address)
        if len(failures) < FAILURES_ALLOWED:
            return 0
        return max(1, int(failures[0] + WINDOW_SECONDS - self._clock()) + 1)

    def failed(self, address: str) -> None:
        failures = self._recent(address)
        failures.append(self._clock())
        self._failures[address] = failures
        self._failures.move_to_end(address)
        while len(self._failures) > MAX_ADDRESSES:
            self._failures.popitem(last=False)

    def __len__(self) -> int:
        """How many addresses with recent failures are remembered."""
        return len(self._failures)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)

    def _recent(self, address: str) -> deque[float]:
        failures = self._failures.get(address, deque())
        horizon = self._clock() - WINDOW_SECONDS
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            self._failures.pop(address, None)
        return failures
