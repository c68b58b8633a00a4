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
