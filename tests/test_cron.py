"""Standard cron weekdays (0/7 = Sunday) translated for APScheduler (Monday = 0)."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.config.cron import CronError, build_cron_trigger, translate_day_of_week


@pytest.mark.parametrize("field, expected", [
    ("1-5", "mon,tue,wed,thu,fri"), ("0", "sun"), ("7", "sun"), ("0,6", "sun,sat"), ("5-7", "fri,sat,sun"),
    ("*/2", "sun,tue,thu,sat"), ("mon-fri", "mon,tue,wed,thu,fri"), ("*", "*"),
])
def test_translate(field, expected):
    assert translate_day_of_week(field) == expected


def fire_days(expr: str, tz: str, start: datetime, n: int = 7) -> list[str]:
    trigger = build_cron_trigger(expr, tz)
    out, prev, now = [], None, start
    for _ in range(n):
        nxt = trigger.get_next_fire_time(prev, now)
        out.append(nxt.strftime("%a %H:%M"))
        prev, now = nxt, nxt
    return out


def test_weekdays_fire_monday_to_friday():
    start = datetime(2026, 11, 21, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Saturday
    assert fire_days("0 8 * * 1-5", "Asia/Shanghai", start, 6) == [
        "Mon 08:00", "Tue 08:00", "Wed 08:00", "Thu 08:00", "Fri 08:00", "Mon 08:00"]


@pytest.mark.parametrize("expr", ["0 8 * *", "0 8 1 * 1", "0 8 * * 9", "0 8 * * 5-1", "0 25 * * *"])
def test_bad_cron_rejected(expr):
    with pytest.raises(CronError):
        build_cron_trigger(expr, "UTC")


@pytest.mark.parametrize("expr", ["0 8 30 2 *", "0 8 31 4 *", "0 0 31 2,4,6,9,11 *", "*/5 * 30-31 feb *"])
def test_cron_that_never_fires_is_refused(expr):
    with pytest.raises(CronError) as info:
        build_cron_trigger(expr, "Asia/Shanghai")
    assert str(info.value) == f"cron {expr!r} never fires: none of its months has that day"


def test_leap_day_cron_fires_in_leap_years():
    trigger = build_cron_trigger("0 8 29 2 *", "UTC")
    start = datetime(2026, 3, 1, tzinfo=ZoneInfo("UTC"))
    assert trigger.get_next_fire_time(None, start).strftime("%Y-%m-%d %H:%M") == "2028-02-29 08:00"


@pytest.mark.parametrize("expr", ["0 ٨ * * *", "٠ 8 * * *", "0 8 * * ١-٥", "0 8 ١ * *", "0 8 * ١ *", "0 ８ * * *"])
def test_non_ascii_digits_are_refused(expr):
    with pytest.raises(CronError) as info:
        build_cron_trigger(expr, "UTC")
    assert str(info.value) == (f"cron {expr!r} must be written in ASCII (digits 0-9, names like mon or jan)")
