"""Waiting for a condition in tests: poll it until it holds, failing with what was awaited.

The timeout only guards against a hang; it is generous and never what a test asserts."""

from __future__ import annotations

import asyncio
import time
from typing import Callable, TypeVar

T = TypeVar("T")

TIMEOUT = 30.0


def wait_until(predicate: Callable[[], T], what: str, timeout: float = TIMEOUT, interval: float = 0.02) -> T:
    """Block until `predicate()` is truthy and return its value; AssertionError naming `what` if it never is."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


async def async_wait_until(predicate: Callable[[], T], what: str, timeout: float = TIMEOUT,
                           interval: float = 0.02) -> T:
    """`wait_until` for a test on the event loop: the loop keeps running while it waits."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)
