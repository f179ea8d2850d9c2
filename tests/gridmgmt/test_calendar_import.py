"""The working calendar's yearly import (gridmgmt.services.calendar): CSV, ICS, the chinesecalendar package,
the admin's import page, the command, and the administrators' notice when next year is missing."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from gridmgmt.errors import InvalidInput
from gridmgmt.models import User, WorkCalendarDay
from gridmgmt.services import calendar
from gridmgmt.workcalendar import calendar_missing_years, limit_add
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
TZ = ZoneInfo("Asia/Shanghai")

CSV_2027 = """日期,是否工作日,说明
2027-01-01,0,元旦
2027-02-06,休,春节
2027-02-07,0,春节
2027-02-08,0,春节
2027-02-20,1,春节调休上班
"""

ICS_2027 = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
BEGIN:VEVENT\r
DTSTART;VALUE=DATE:20271001\r
DTEND;VALUE=DATE:20271004\r
SUMMARY:\xe5\x9b\xbd\xe5\xba\x86\xe8\x8a\x82 \xe4\xbc\x91\r
END:VEVENT\r
BEGIN:VEVENT\r
DTSTART;VALUE=DATE:20270926\r
SUMMARY:\xe5\x9b\xbd\xe5\xba\x86\xe8\x8a\x82 \xe7\x8f\xad\r
END:VEVENT\r
END:VCALENDAR\r
"""


def rows(year: int) -> list[tuple]:
    return list(WorkCalendarDay.objects.filter(date__year=year).values_list("date", "is_workday", "name"))


def test_csv_import_replaces_the_year_and_moves_deadlines():
    WorkCalendarDay.objects.create(date=date(2027, 5, 3), is_workday=False, name="旧数据")
    n = calendar.calendar_import(year=2027, days=calendar.calendar_parse_csv(data=CSV_2027.encode("gb18030")))
    assert n == 5
    assert rows(2027)[0] == (date(2027, 1, 1), False, "元旦")
    assert (date(2027, 2, 20), True, "春节调休上班") in rows(2027)
    assert not WorkCalendarDay.objects.filter(date=date(2027, 5, 3)).exists()
    # Friday 2027-02-05 17:00 + 2 working hours: the festival days are off, so Tuesday 09–10.
    start = datetime(2027, 2, 5, 17, 0, tzinfo=TZ)
    assert limit_add(start=start, amount=2, unit="working_hours") == datetime(2027, 2, 9, 10, 0, tzinfo=TZ)


def test_ics_import():
    days = calendar.calendar_parse_ics(data=ICS_2027)
    assert [(d.date.isoformat(), d.is_workday) for d in days] == [
        ("2027-10-01", False),
        ("2027-10-02", False),
        ("2027-10-03", False),
        ("2027-09-26", True),
    ]


def test_package_year_matches_the_2026_fixture():
    call_command("loaddata", "workcalendar", verbosity=0)
    fixture = {(d, w) for d, w, _ in rows(2026)}
    assert {(d.date, d.is_workday) for d in calendar.calendar_from_package(year=2026)} == fixture


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("2027-13-01,0,x", "日期无效"),
        ("2027-01-01,maybe,x", "1 或 0"),
        ("2026-12-31,0,x", "不属于 2027 年"),
        ("2027-01-01,0,a\n2027-01-01,1,b", "同时被标为"),
        ("", "没有 2027 年"),
    ],
)
def test_bad_files_change_nothing(text, fragment):
    WorkCalendarDay.objects.create(date=date(2027, 1, 1), is_workday=False, name="元旦")
    with pytest.raises(InvalidInput) as e:
        calendar.calendar_import(year=2027, days=calendar.calendar_parse_csv(data=text))
    assert fragment in str(e.value.message)
    assert rows(2027) == [(date(2027, 1, 1), False, "元旦")]


def test_unknown_package_year_is_a_clear_error():
    with pytest.raises(InvalidInput, match="请从文件导入"):
        calendar.calendar_from_package(year=2099)


def test_command(tmp_path):
    path = tmp_path / "2027.csv"
    path.write_text(CSV_2027, encoding="utf-8")
    call_command("calendar_import", "2027", str(path), verbosity=0)
    assert len(rows(2027)) == 5
    with pytest.raises(CommandError, match="2099"):
        call_command("calendar_import", "2099")


def test_missing_years_from_first_november():
    WorkCalendarDay.objects.create(date=date(2026, 1, 1), is_workday=False, name="元旦")
    assert calendar_missing_years(today=date(2026, 10, 31)) == []
    assert calendar_missing_years(today=date(2026, 11, 27)) == [2027]


def test_admin_index_notice_and_import_page(client):
    root = UserFactory(username="root", role=User.Role.ADMIN, is_staff=True, is_superuser=True)
    WorkCalendarDay.objects.create(date=date(2026, 1, 1), is_workday=False, name="元旦")
    client.force_login(root)
    with time_machine.travel(datetime(2026, 11, 27, 10, tzinfo=TZ)):
        html = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
        assert 'id="calendar-notice"' in html and "2027" in html
        bad = client.post(
            "/admin/gridmgmt/workcalendarday/import/",
            {"year": 2027, "file": SimpleUploadedFile("x.csv", b"2027-02-30,0,x")},
        )
        assert bad.status_code == 200 and "日期无效" in bad.content.decode()
        upload = SimpleUploadedFile("2027.ics", ICS_2027, content_type="text/calendar")
        response = client.post("/admin/gridmgmt/workcalendarday/import/", {"year": 2027, "file": upload})
        assert response.status_code == 302
        assert len(rows(2027)) == 4
        assert 'id="calendar-notice"' not in client.get("/admin/").content.decode()
