"""Working-time arithmetic on a calendar: Monday–Friday within WORK_PERIODS, except the dates listed in
WorkCalendarDay (public holidays off, make-up working days 调休 on). Times are Asia/Shanghai.

Units: working hours and working days both count working minutes (a working day = the length of the
working periods, 8 h by default); natural hours are plain elapsed time.
"""

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.conf import settings

from gridmgmt.models import Category, WorkCalendarDay

TZ = ZoneInfo("Asia/Shanghai")
_MAX_DAYS = 400  # a limit longer than a year of working days is a data error, not a loop


def _periods() -> tuple[tuple[time, time], ...]:
    return _parse_periods(tuple(tuple(p) for p in settings.WORK_PERIODS))


@lru_cache(maxsize=8)
def _parse_periods(periods: tuple[tuple[str, str], ...]) -> tuple[tuple[time, time], ...]:
    # Keyed by the setting's value, so override_settings still takes effect; parsed once, not per call.
    return tuple((time.fromisoformat(a), time.fromisoformat(b)) for a, b in periods)


def working_minutes_per_day() -> int:
    return sum((b.hour * 60 + b.minute) - (a.hour * 60 + a.minute) for a, b in _periods())


def _exceptions(start: date, days: int) -> dict[date, bool]:
    rows = WorkCalendarDay.objects.filter(date__gte=start, date__lte=start + timedelta(days=days))
    return dict(rows.values_list("date", "is_workday"))


def calendar_load(*, start: date, end: date) -> dict[date, bool]:
    """The calendar's exceptions from `start` to `end` plus the longest limit after it, in one query: pass it
    as `calendar=` to limit_add / working_add when computing many deadlines (bulk paths such as the demo),
    so each call does no query of its own."""
    return _exceptions(start, (end - start).days + _MAX_DAYS)


def is_workday(d: date, exceptions: dict[date, bool]) -> bool:
    return exceptions.get(d, d.weekday() < 5)


def working_add(*, start: datetime, minutes: int, calendar: Mapping[date, bool] | None = None) -> datetime:
    """The moment `minutes` working minutes after `start`. Zero minutes from outside working time gives
    the next start of working time. `calendar`: exceptions preloaded by calendar_load (else one query)."""
    local = start.astimezone(TZ)
    remaining = timedelta(minutes=minutes)
    exceptions = calendar if calendar is not None else _exceptions(local.date(), _MAX_DAYS)
    day = local.date()
    for _ in range(_MAX_DAYS):
        if is_workday(day, exceptions):
            for a, b in _periods():
                begin = max(datetime.combine(day, a, TZ), local)
                end = datetime.combine(day, b, TZ)
                if begin >= end:
                    continue
                if remaining <= end - begin:
                    return begin + remaining
                remaining -= end - begin
        day += timedelta(days=1)
    raise ValueError("时限超出工作日历范围 (limit beyond the working calendar)")


def working_between(*, start: datetime, end: datetime) -> int:
    """Working minutes between two moments (0 if end <= start)."""
    if end <= start:
        return 0
    s, e = start.astimezone(TZ), end.astimezone(TZ)
    exceptions = _exceptions(s.date(), (e.date() - s.date()).days + 1)
    total = timedelta()
    day = s.date()
    while day <= e.date():
        if is_workday(day, exceptions):
            for a, b in _periods():
                lo = max(datetime.combine(day, a, TZ), s)
                hi = min(datetime.combine(day, b, TZ), e)
                if hi > lo:
                    total += hi - lo
        day += timedelta(days=1)
    return int(total.total_seconds() // 60)


def limit_add(*, start: datetime, amount: float, unit: str, calendar: Mapping[date, bool] | None = None) -> datetime:
    """Deadline for a limit of `amount` in `unit` (Category.LimitUnit) starting at `start`. `calendar`: the
    exceptions preloaded by calendar_load, covering `start` (bulk callers); without it, one query."""
    if unit == Category.LimitUnit.HOURS:
        return start + timedelta(hours=amount)
    per = 60 if unit == Category.LimitUnit.WORKING_HOURS else working_minutes_per_day()
    return working_add(start=start, minutes=round(amount * per), calendar=calendar)


ALERT_FROM = (11, 1)  # (month, day): the State Council publishes next year's calendar in November


def calendar_missing_years(*, today: date) -> list[int]:
    """Years the calendar should hold but does not: the current one, and from 1 November the next one (without
    it, deadlines running into that year would count its holidays as working days). One query."""
    wanted = [today.year] + ([today.year + 1] if (today.month, today.day) >= ALERT_FROM else [])
    have = set(WorkCalendarDay.objects.filter(date__year__in=wanted).values_list("date__year", flat=True).distinct())
    return [y for y in wanted if y not in have]
