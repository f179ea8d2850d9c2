"""The working calendar's yearly load (gridmgmt.workcalendar reads it): the State Council's holidays and make-up
working days (调休) for one year, from a CSV or ICS file or from the `chinesecalendar` package when it knows
the year. An import replaces that year's rows in one transaction: all of it or nothing.

CSV: ``date,is_workday,name`` (a header line is optional; is_workday 1/0, true/false, 是/否, 班/休).
ICS: all-day VEVENTs (``DTSTART;VALUE=DATE``, ``DTEND`` exclusive, as calendar programs write them); an event
whose SUMMARY says 班 (上班, 补班, 调休上班) or "work" is a make-up working day, any other a holiday.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import transaction
from django.utils.translation import gettext as _

from gridmgmt.errors import InvalidInput
from gridmgmt.models import WorkCalendarDay

MAX_BYTES = 1_000_000  # a year is ~40 lines; a bigger file is not a calendar
_TRUE = {"1", "true", "yes", "y", "t", "是", "班", "上班", "工作日"}
_FALSE = {"0", "false", "no", "n", "f", "否", "休", "休息", "假", "节假日"}
# chinesecalendar's English holiday names → the names the 2026 fixture uses.
_HOLIDAY_ZH = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利纪念日",
}


@dataclass(frozen=True)
class CalendarDay:
    date: date
    is_workday: bool
    name: str = ""


def _bad(message: str, **params) -> InvalidInput:
    return InvalidInput(message % params if params else message, field="file", code="bad_calendar")


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    if len(data) > MAX_BYTES:
        raise _bad(_("日历文件过大 (上限 %(n)d 字节)"), n=MAX_BYTES)
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GBK
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _bad(_("日历文件不是 UTF-8 或 GBK 文本"))


def calendar_parse_csv(*, data: bytes | str) -> list[CalendarDay]:
    days = []
    for n, row in enumerate(csv.reader(io.StringIO(_decode(data))), start=1):
        if not row or not "".join(row).strip() or row[0].strip().startswith("#"):
            continue
        if n == 1 and not re.match(r"^\s*\d{4}-", row[0]):
            continue  # a header line
        if len(row) < 2:
            raise _bad(_("第 %(n)d 行应为: 日期,是否工作日,说明"), n=n)
        try:
            day = date.fromisoformat(row[0].strip())
        except ValueError:
            raise _bad(_("第 %(n)d 行的日期无效: %(v)s"), n=n, v=row[0][:20]) from None
        flag = row[1].strip().lower()
        if flag not in _TRUE | _FALSE:
            raise _bad(_("第 %(n)d 行的「是否工作日」应为 1 或 0: %(v)s"), n=n, v=row[1][:20])
        days.append(CalendarDay(day, flag in _TRUE, (row[2].strip() if len(row) > 2 else "")[:50]))
    return days


def _ics_lines(text: str) -> list[str]:
    lines: list[str] = []
    for raw in text.splitlines():
        if raw[:1] in (" ", "\t") and lines:  # RFC 5545 folding
            lines[-1] += raw[1:]
        else:
            lines.append(raw)
    return lines


def _ics_date(value: str, n: int) -> date:
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        raise _bad(_("ICS 第 %(n)d 行的日期无效: %(v)s"), n=n, v=value[:20]) from None


def calendar_parse_ics(*, data: bytes | str) -> list[CalendarDay]:
    days: list[CalendarDay] = []
    event: dict | None = None
    for n, line in enumerate(_ics_lines(_decode(data)), start=1):
        name, _sep, value = line.partition(":")
        key = name.split(";")[0].upper()
        if key == "BEGIN" and value.strip().upper() == "VEVENT":
            event = {}
        elif key == "END" and value.strip().upper() == "VEVENT" and event is not None:
            if "start" not in event:
                raise _bad(_("ICS 第 %(n)d 行之前的事件没有 DTSTART"), n=n)
            start, summary = event["start"], event.get("summary", "")
            end = event.get("end", start + timedelta(days=1))
            work = "班" in summary or "work" in summary.lower()
            day = start
            while day < end and len(days) < 1000:
                days.append(CalendarDay(day, work, summary[:50]))
                day += timedelta(days=1)
            event = None
        elif event is not None and key in ("DTSTART", "DTEND"):
            event["start" if key == "DTSTART" else "end"] = _ics_date(value.strip(), n)
        elif event is not None and key == "SUMMARY":
            event["summary"] = value.strip().replace("\\,", ",")
    return days


def calendar_from_package(*, year: int) -> list[CalendarDay]:
    """The year's exceptions as the `chinesecalendar` package knows them (holidays on any day, make-up
    working days on weekends); InvalidInput when the package has no data for the year."""
    import chinese_calendar

    days = []
    day = date(year, 1, 1)
    try:
        while day.year == year:
            on_holiday, holiday = chinese_calendar.get_holiday_detail(day)
            if on_holiday and holiday:
                days.append(CalendarDay(day, False, _HOLIDAY_ZH.get(holiday, holiday)))
            elif not on_holiday and day.weekday() >= 5:
                days.append(CalendarDay(day, True, f"{_HOLIDAY_ZH.get(holiday, holiday or '')}调休上班"))
            day += timedelta(days=1)
    except NotImplementedError:
        raise InvalidInput(
            _("chinesecalendar 没有 %(y)d 年的数据:请从文件导入") % {"y": year}, field="year", code="unknown_year"
        ) from None
    return days


@transaction.atomic
def calendar_import(*, year: int, days: list[CalendarDay]) -> int:
    """Replace `year`'s calendar rows with `days` (all in that year, one row per date). Returns the count."""
    if not days:
        raise _bad(_("文件中没有 %(y)d 年的日期"), y=year)
    outside = sorted({d.date for d in days if d.date.year != year})
    if outside:
        raise _bad(_("文件中有不属于 %(y)d 年的日期: %(d)s"), y=year, d=outside[0].isoformat())
    seen: dict[date, bool] = {}
    for d in days:
        if seen.get(d.date, d.is_workday) != d.is_workday:
            raise _bad(_("%(d)s 同时被标为工作日和休息日"), d=d.date.isoformat())
        seen[d.date] = d.is_workday
    unique = {d.date: d for d in days}
    WorkCalendarDay.objects.filter(date__year=year).delete()
    rows = [WorkCalendarDay(date=d, is_workday=unique[d].is_workday, name=unique[d].name) for d in sorted(unique)]
    WorkCalendarDay.objects.bulk_create(rows)
    return len(unique)
