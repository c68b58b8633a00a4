"""Standard 5-field cron → APScheduler CronTrigger.

APScheduler counts weekdays from Monday = 0, standard cron from Sunday = 0 (7 is
Sunday too). `CronTrigger.from_crontab("0 8 * * 1-5")` would therefore fire
Tue–Sat. We translate the day-of-week field to names before building the trigger.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from bot.config.errors import short_repr

_STD_DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_NAME_TO_STD = {n: i for i, n in enumerate(_STD_DAY_NAMES[:7])}


# A leap year: the probe below spans 2024-2028.
_PROBE_YEAR = 2024


class CronError(ValueError):
    pass


def _std_dow_value(token: str) -> int:
    token = token.strip().lower()
    if token in _NAME_TO_STD:
        return _NAME_TO_STD[token]
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token)
    raise CronError(f"day-of-week value {token!r} is not 0-7 or sun..sat")


def translate_day_of_week(field: str) -> str:
    """Translate a standard cron day-of-week field into APScheduler weekday names."""
    if field == "*":
        return "*"
    days: list[int] = []
    for part in field.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"day-of-week step {step_text!r} is not a positive number")
            step = int(step_text)
        if part == "*":
            first, last = 0, 6
        elif "-" in part:
            a, b = part.split("-", 1)
            first, last = _std_dow_value(a), _std_dow_value(b)
            if last < first:
                raise CronError(f"day-of-week range {part!r} runs backwards")
        else:
            first = _std_dow_value(part)
            last = first if step == 1 else 6
        days.extend(range(first, last + 1, step))
    names: list[str] = []
    for d in days:
        name = _STD_DAY_NAMES[d]
        if name not in names:
            names.append(name)
    return ",".join(names)


def build_cron_trigger(expr: str, timezone: str) -> CronTrigger:
    """Build a trigger from standard cron text ("0 8 * * 1-5") in an IANA timezone."""
    shown = short_repr(expr)
    if not expr.isascii():
        # str.isdigit() and \d accept Arabic-Indic and other digits; cron means 0-9.
        raise CronError(f"cron {shown} must be written in ASCII (digits 0-9, names like mon or jan)")
    fields = expr.split()
    if len(fields) != 5:
        raise CronError(f"cron {shown} must have 5 fields (minute hour day month weekday)")
    minute, hour, day, month, dow = fields
    if day != "*" and dow != "*":
        # Standard cron ORs these two fields; APScheduler ANDs them. Refuse rather
        # than silently fire on different days than the user expects.
        raise CronError(f"cron {shown} restricts both day-of-month and day-of-week; use one of them")
    if re.search(r"[^\w*/,\-]", expr.replace(" ", "")):
        raise CronError(f"cron {shown} has characters outside standard cron syntax")
    try:
        tz = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise CronError(f"unknown timezone {short_repr(timezone)} (use an IANA name like Asia/Shanghai)") from exc
    fields_by_name = dict(minute=minute, hour=hour, day=day, month=month, day_of_week=translate_day_of_week(dow))
    try:
        trigger = CronTrigger(**fields_by_name, timezone=tz)
        # Every month and day-of-month pattern recurs within four years (a leap year included):
        # a trigger with no time in such a span never fires at all (30 February, 31 April).
        never = CronTrigger(**fields_by_name, year=f"{_PROBE_YEAR}-{_PROBE_YEAR + 4}", timezone=tz)
        if never.get_next_fire_time(None, datetime(_PROBE_YEAR, 1, 1, tzinfo=tz)) is None:
            raise CronError(f"cron {shown} never fires: none of its months has that day")
        return trigger
    except CronError:
        raise
    except ValueError as exc:
        raise CronError(f"cron {shown}: {exc}") from exc
