"""Time helpers shared by building, rendering and scheduling a digest."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo


def aware_utc(dt: datetime) -> datetime:
    """Aware UTC: the store compares timestamps as UTC (SQLite keeps no offset), naive means UTC."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except Exception:  # config validation already refuses unknown zones; never crash a render on it
        return ZoneInfo("UTC")


def hours_text(window: timedelta) -> str:
    """"24", "1.5": a window length in hours, without a trailing ".0"."""
    return f"{window.total_seconds() / 3600:g}"
