"""Durations in feeds.yaml ("30s", "10m", "2h", "1d" or seconds), each field within a stated range.

A timedelta holds at most 999,999,999 days and a scheduler adds intervals to today's date, so an
unbounded duration (`.inf`, `99999999999999d`) would surface as an OverflowError far from the file.
Every duration field therefore has a range, and a value outside it is refused with that range."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

from bot.config.errors import short_repr, type_name

_DURATION_RE = re.compile(r"^\s*(\d{1,15}(?:\.\d{1,9})?)\s*(s|sec|secs|m|min|mins|h|hr|hrs|d|day|days|w)?\s*$",
                          re.I | re.ASCII)
_UNIT_SECONDS = {"s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60, "mins": 60, "h": 3600, "hr": 3600,
                 "hrs": 3600, "d": 86400, "day": 86400, "days": 86400, "w": 604800}
_MAX_TEXT = 40
_HINT = "use e.g. 30s, 10m, 2h, 1d"

# The range of a duration field unless it states its own.
SHORTEST = timedelta(seconds=1)
LONGEST = timedelta(days=365)


def _seconds(value: Any) -> float:
    """The number of seconds `value` states (any sign, maybe not finite); ValueError if it states none."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"expected a duration ({_HINT}), got {type_name(value)}")
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            return math.inf
    match = _DURATION_RE.match(value) if len(value) <= _MAX_TEXT else None
    if not match:
        raise ValueError(f"invalid duration {short_repr(value)} ({_HINT})")
    return float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]


def parse_duration(value: Any, shortest: timedelta = SHORTEST, longest: timedelta = LONGEST) -> timedelta:
    """`value` as a timedelta, refused (ValueError) outside shortest..longest."""
    seconds = _seconds(value)
    if not seconds > 0:  # also catches NaN
        raise ValueError(f"duration {_shown(value)} must be positive")
    if not shortest.total_seconds() <= seconds <= longest.total_seconds():
        raise ValueError(f"duration {_shown(value)} is out of range "
                         f"(allowed {format_duration(shortest)} to {format_duration(longest)})")
    return value if isinstance(value, timedelta) else timedelta(seconds=seconds)


def _shown(value: Any) -> str:
    return format_duration(value) if isinstance(value, timedelta) else short_repr(value)


def duration(shortest: timedelta = SHORTEST, longest: timedelta = LONGEST) -> Any:
    """A pydantic field type: a duration within shortest..longest."""
    def validate(value: Any) -> timedelta:
        return parse_duration(value, shortest, longest)

    return Annotated[timedelta, BeforeValidator(validate)]


Duration = duration()


def format_duration(value: timedelta) -> str:
    """The inverse of parse_duration for log lines: 90s, 10m, 24h, 2d (0.5s below a second)."""
    total = value.total_seconds()
    if total < 1:
        return f"{total:g}s"
    seconds = int(total)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
