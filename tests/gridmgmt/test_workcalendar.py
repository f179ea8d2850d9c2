"""Deadline arithmetic on the working calendar: weekends, public holidays and make-up working days (调休)."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from gridmgmt.models import Category, WorkCalendarDay
from gridmgmt.workcalendar import limit_add, working_add, working_between

TZ = ZoneInfo("Asia/Shanghai")
WH, WD, H = Category.LimitUnit.WORKING_HOURS, Category.LimitUnit.WORKING_DAYS, Category.LimitUnit.HOURS


def at(*args) -> datetime:
    return datetime(*args, tzinfo=TZ)


@pytest.fixture
def calendar(db):
    call_command("loaddata", "workcalendar", verbosity=0)


@pytest.mark.parametrize(
    ("start", "amount", "unit", "expected"),
    [
        # Plain working day: 09–12, 13–18; the lunch break does not count.
        (at(2026, 11, 24, 10, 0), 4, WH, at(2026, 11, 24, 15, 0)),
        (at(2026, 11, 24, 11, 59), 1, WH, at(2026, 11, 24, 13, 59)),
        # Friday evening over an ordinary weekend.
        (at(2026, 11, 27, 17, 15), 2, WH, at(2026, 11, 30, 10, 15)),
        # Friday 18 Sep → Sunday 20 Sep is a make-up working day (国庆调休上班).
        (at(2026, 9, 18, 16, 0), 8, WH, at(2026, 9, 20, 16, 0)),
        # Wednesday 30 Sep 17:00 → 1 h that day, then the National Day holiday and its weekend, then 8 Oct.
        (at(2026, 9, 30, 17, 0), 2, WH, at(2026, 10, 8, 10, 0)),
        # Mid-Autumn (Fri 25 Sep) plus the weekend, in working days: 0.5 h + Mon + Tue + Wed − 0.5 h.
        (at(2026, 9, 24, 17, 30), 3, WD, at(2026, 9, 30, 17, 30)),
        # Reported on a holiday: the clock starts at the next working morning.
        (at(2026, 10, 3, 14, 0), 1, WH, at(2026, 10, 8, 10, 0)),
        # Saturday 10 Oct is a make-up working day.
        (at(2026, 10, 9, 17, 0), 2, WH, at(2026, 10, 10, 10, 0)),
        # Natural hours ignore the calendar.
        (at(2026, 10, 1, 23, 0), 2, H, at(2026, 10, 2, 1, 0)),
    ],
)
def test_limit_add_to_the_minute(calendar, start, amount, unit, expected):
    assert limit_add(start=start, amount=amount, unit=unit) == expected


def test_zero_minutes_outside_working_time_is_next_working_start(calendar):
    assert working_add(start=at(2026, 10, 1, 8, 0), minutes=0) == at(2026, 10, 8, 9, 0)
    assert working_add(start=at(2026, 11, 24, 12, 30), minutes=0) == at(2026, 11, 24, 13, 0)


def test_working_between_inverts_working_add(calendar):
    start = at(2026, 9, 24, 17, 30)
    for minutes in (0, 1, 30, 479, 480, 1440, 2000):
        end = working_add(start=start, minutes=minutes)
        assert working_between(start=start, end=end) == minutes
    assert working_between(start=at(2026, 10, 2), end=at(2026, 10, 1)) == 0


def test_calendar_is_editable_data(calendar):
    start = at(2026, 12, 31, 17, 0)  # Thursday; 2027's holidays are not in the fixture yet
    assert limit_add(start=start, amount=2, unit=WH) == at(2027, 1, 1, 10, 0)
    WorkCalendarDay.objects.create(date="2027-01-01", is_workday=False, name="元旦")
    assert limit_add(start=start, amount=2, unit=WH) == at(2027, 1, 4, 10, 0)
    WorkCalendarDay.objects.create(date="2027-01-02", is_workday=True, name="调休上班")
    assert limit_add(start=start, amount=2, unit=WH) == at(2027, 1, 2, 10, 0)


def test_times_in_other_zones_are_converted(calendar):
    utc = ZoneInfo("UTC")
    # 01:00 UTC = 09:00 Shanghai.
    assert limit_add(start=datetime(2026, 11, 24, 1, 0, tzinfo=utc), amount=1, unit=WH) == at(2026, 11, 24, 10, 0)
