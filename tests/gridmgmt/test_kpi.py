"""KPI formulas on a hand-built day of cases whose every answer is worked out below (Tuesday 2026-11-24,
working hours 09–12 and 13–18; category E0404: dispatch within 30 min, handle within 4 working hours)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from gridmgmt import kpi, services
from gridmgmt.errors import InvalidInput
from gridmgmt.models import Case, CaseEvent, User
from tests.factories import CaseEventFactory, DistrictFactory, UserFactory
from tests.world import jpeg, world_build

S, E, R = Case.Status, CaseEvent.Type, User.Role
TZ = ZoneInfo("Asia/Shanghai")
DAY = (datetime(2026, 11, 24, tzinfo=TZ), datetime(2026, 11, 25, tzinfo=TZ))


def at(hour: int, minute: int = 0, day: int = 24) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)


class Clock:
    def __init__(self, world):
        self.w = world

    def __call__(self, moment: datetime, fn, **kw):
        with time_machine.travel(moment, tick=False):
            return fn(**kw)

    def user(self, role):
        return self.w.users[role]


@pytest.fixture
def day(db):
    """Case A: all on time. Case B: first dispatch late, sent back by team B, rework, closed late.
    Case C: voided. Case D: filed, still open. Case E: reported the next day (outside the period)."""
    w = world_build()
    t = Clock(w)
    d, lead, insp, patrol = w.users[R.DISPATCHER], w.users[R.SHIFT_LEADER], w.users[R.INSPECTOR], w.users[R.PATROL]

    def report(moment, cell=4):
        lon, lat = w.centre(cell)
        kw = dict(source=Case.Source.PATROL, category_code="E0404", lon=lon, lat=lat)
        return t(moment, services.case_report, **kw)[0].pk

    a = report(at(9))
    t(at(9, 5), services.case_file, case_id=a, actor=d)  # dispatch by 09:35, due 14:35
    t(at(9, 10), services.case_dispatch, case_id=a, actor=d, team_id=w.team.pk)  # on time
    t(at(9, 20), services.case_accept, case_id=a, actor=patrol)  # deadline 14:20
    t(at(11, 20), services.case_handle, case_id=a, actor=patrol, photos=[jpeg()])  # 2 h, on time
    t(at(11, 30), services.case_check, case_id=a, actor=insp, passed=True)
    t(at(11, 40), services.case_close, case_id=a, actor=lead)  # on time (due 14:35)
    t(at(12), services.case_rate, case_id=a, actor=d, satisfaction=5)

    b = report(at(9), cell=0)
    t(at(9, 5), services.case_file, case_id=b, actor=d)  # due 14:35
    t(at(9, 50), services.case_dispatch, case_id=b, actor=d, team_id=w.other_team.pk)  # late (09:35)
    t(at(10), services.case_send_back, case_id=b, actor=w.users["other_patrol"], reason="不属本队")
    t(at(10, 10), services.case_dispatch, case_id=b, actor=d, team_id=w.team.pk)
    t(at(10, 20), services.case_accept, case_id=b, actor=patrol)  # deadline 15:20
    t(at(14), services.case_handle, case_id=b, actor=patrol, photos=[jpeg()])  # 3 h 40, on time
    t(at(14, 30), services.case_check, case_id=b, actor=insp, passed=False, note="仍有残留")
    t(at(16), services.case_handle, case_id=b, actor=patrol, photos=[jpeg()])  # late, not a new handling time
    t(at(16, 30), services.case_check, case_id=b, actor=insp, passed=True)
    t(at(17), services.case_close, case_id=b, actor=lead)  # late (due 14:35)
    t(at(17, 30), services.case_rate, case_id=b, actor=d, satisfaction=3)

    c = report(at(10), cell=1)
    t(at(10, 10), services.case_void, case_id=c, actor=d, reason="重复")

    dd = report(at(10), cell=2)
    t(at(10, 5), services.case_file, case_id=dd, actor=d)  # due 15:35, never closed

    report(at(9, day=25), cell=3)
    w.ids = dict(a=a, b=b, c=c, d=dd)
    return w


def only(rows):
    (row,) = rows
    return row


def test_totals_match_the_hand_count(day, django_assert_num_queries):
    with django_assert_num_queries(1):
        r = only(kpi.kpi_compute(start=DAY[0], end=DAY[1]))
    assert r.key is None
    assert (r.received, r.filed, r.dispatched, r.sent_back) == (4, 3, 3, 1)
    assert (r.handled, r.handled_on_time, r.check_failed) == (3, 2, 1)
    assert (r.closed, r.closed_on_time, r.due, r.due_closed) == (2, 1, 3, 2)
    assert (r.first_dispatched, r.dispatched_on_time) == (2, 1)
    assert (r.rated, r.satisfied, r.satisfaction_mean) == (2, 1, pytest.approx(4.0))
    assert r.closure_rate == pytest.approx(2 / 3)  # 结案率: A and B closed of A, B, D due
    assert r.on_time_closure_rate == pytest.approx(1 / 2)  # 按期结案率: A on time, B late
    assert r.rework_rate == pytest.approx(1 / 3)
    assert r.send_back_rate == pytest.approx(1 / 3)
    assert r.satisfied_rate == pytest.approx(1 / 2)
    assert r.dispatch_on_time_rate == pytest.approx(1 / 2)
    assert r.handle_on_time_rate == pytest.approx(2 / 3)
    assert r.avg_handling_hours == pytest.approx((2 + 11 / 3) / 2)  # A 2 h, B 3 h 40 (rework not counted)


def test_period_is_half_open(day):
    morning = only(kpi.kpi_compute(start=at(0), end=at(9, 5)))
    assert (morning.received, morning.filed) == (2, 0)  # 09:05 filings fall in the next period
    later = only(kpi.kpi_compute(start=at(9, 5), end=at(0, day=26)))
    assert (later.received, later.filed) == (3, 3)  # C, D and the next day's E
    assert later.due == 3 and later.due_closed == 2
    empty = only(kpi.kpi_compute(start=at(0, day=1), end=at(0, day=2)))
    assert empty.received == 0 and empty.closure_rate is None and empty.avg_handling_hours is None


def test_a_case_reopened_and_closed_again_later_counts_as_closed_by_its_first_closure(day):
    """结案率 asks for a CLOSED event before the period's end: A, closed at 11:40, reopened and closed again the
    next day (its closed_at now after the period), still counts; a period ending before 11:40 does not."""
    t, a = Clock(day), day.ids["a"]
    lead, d, patrol, insp = (t.user(r) for r in (R.SHIFT_LEADER, R.DISPATCHER, R.PATROL, R.INSPECTOR))
    t(at(12, 30), services.case_reopen, case_id=a, actor=lead, reason="仍未清理")
    t(at(12, 40), services.case_dispatch, case_id=a, actor=d, team_id=day.team.pk)
    t(at(12, 50), services.case_accept, case_id=a, actor=patrol)
    t(at(9, day=25), services.case_handle, case_id=a, actor=patrol, photos=[jpeg()])
    t(at(9, 10, day=25), services.case_check, case_id=a, actor=insp, passed=True)
    t(at(9, 20, day=25), services.case_close, case_id=a, actor=lead)
    assert Case.objects.get(pk=a).closed_at == at(9, 20, day=25)
    r = only(kpi.kpi_compute(start=DAY[0], end=DAY[1]))
    assert (r.due, r.due_closed) == (3, 2)  # A (first closure) and B
    assert only(kpi.kpi_compute(start=DAY[0], end=DAY[1], summary=False)).due_closed == 2
    before = only(kpi.kpi_compute(start=DAY[0], end=at(11, 30)))
    assert (before.due, before.due_closed) == (0, 0)  # the promises (14:35, 15:35) fall after 11:30
    morning = only(kpi.kpi_compute(start=at(14), end=at(16)))
    assert (morning.due, morning.due_closed) == (3, 1)  # A closed at 11:40; B only at 17:00; D never


def test_per_team(day):
    rows = {r.key: r for r in kpi.kpi_compute(start=DAY[0], end=DAY[1], group_by="team")}
    a, b, none = rows[day.team.pk], rows[day.other_team.pk], rows[None]
    assert a.name == "甲队" and b.name == "乙队"
    assert (a.dispatched, a.first_dispatched, a.dispatched_on_time, a.sent_back) == (2, 1, 1, 0)
    assert (a.handled, a.handled_on_time, a.check_failed, a.closed, a.closed_on_time) == (3, 2, 1, 2, 1)
    assert (a.due, a.due_closed, a.rated) == (2, 2, 2)
    # Team B got the late first dispatch and sent it back (the send-back is charged to B, from its data).
    assert (b.dispatched, b.first_dispatched, b.dispatched_on_time, b.sent_back) == (1, 1, 0, 1)
    assert b.send_back_rate == 1.0 and b.handled == 0 and b.rework_rate is None
    assert (none.received, none.filed, none.due, none.due_closed) == (4, 3, 1, 0)  # before any team; D's due


def test_per_area_and_grid(day):
    (district,) = kpi.kpi_compute(start=DAY[0], end=DAY[1], group_by="district")
    assert (district.key, district.name, district.received, district.closed) == (day.district.pk, "浦东新区", 4, 2)
    (street,) = kpi.kpi_compute(start=DAY[0], end=DAY[1], group_by="street")
    assert street.key is None and street.received == 4  # the test cells have no street: one "no value" row
    (grid,) = kpi.kpi_compute(start=DAY[0], end=DAY[1], group_by="grid")
    assert grid.key is None and grid.due == 3


def test_per_day_and_month(day):
    rows = kpi.kpi_compute(start=at(0), end=at(0, day=26), group_by="day")
    assert [(r.key, r.name, r.received, r.closed, r.due) for r in rows] == [
        (date(2026, 11, 24), "2026-11-24", 4, 2, 3),
        (date(2026, 11, 25), "2026-11-25", 1, 0, 0),
    ]
    (month,) = kpi.kpi_compute(start=at(0, day=1), end=at(0, day=30), group_by="month")
    assert (month.key, month.received, month.due, month.due_closed) == (date(2026, 11, 1), 5, 3, 2)
    # Local days: an event at 07:30 Shanghai is 23:30 UTC the day before, and counts on the local day.
    CaseEventFactory(
        case=Case.objects.get(pk=day.ids["d"]), type=E.RATED, at=at(7, 30, day=25), data={"satisfaction": 5}
    )
    rows = {r.key: r for r in kpi.kpi_compute(start=at(0), end=at(0, day=26), group_by="day")}
    assert rows[date(2026, 11, 25)].rated == 1 and rows[date(2026, 11, 24)].rated == 2


def test_events_built_by_factory_count_from_their_data(day):
    """History imported without the service's flags: RATED scores come from data, a CLOSED event without
    `on_time_overall` is judged against the case's promise."""
    case = Case.objects.get(pk=day.ids["d"])
    CaseEventFactory(case=case, type=E.CLOSED, to_status=S.CLOSED, at=at(15))  # before its 15:35 promise
    CaseEventFactory(case=case, type=E.RATED, to_status=S.CLOSED, at=at(16), data={"satisfaction": 4})
    r = only(kpi.kpi_compute(start=DAY[0], end=DAY[1]))
    assert (r.closed, r.closed_on_time, r.due_closed) == (3, 2, 3)
    assert (r.rated, r.satisfied, r.satisfaction_mean) == (3, 2, pytest.approx(4.0))


def test_scope_and_kpi_for_user(day):
    start, end = DAY
    elsewhere = DistrictFactory()
    outsider = UserFactory(username="far_inspector", role=R.INSPECTOR, area=elsewhere)
    r = only(kpi.kpi_for_user(user=outsider, start=start, end=end))
    assert (r.received, r.closed, r.due) == (0, 0, 0)
    local = UserFactory(username="local_inspector", role=R.INSPECTOR, area=day.district)
    assert only(kpi.kpi_for_user(user=local, start=start, end=end)).received == 4
    assert only(kpi.kpi_for_user(user=day.users[R.ADMIN], start=start, end=end)).received == 4
    # A patrol member sees the cases of their team: A and B.
    mine = only(kpi.kpi_for_user(user=day.users[R.PATROL], start=start, end=end))
    assert (mine.received, mine.closed, mine.due) == (2, 2, 2)
    # An explicit Q scope: just case A.
    just_a = only(kpi.kpi_compute(start=start, end=end, scope_q=kpi.Q(pk=day.ids["a"])))
    assert (just_a.received, just_a.closed_on_time, just_a.avg_handling_hours) == (1, 1, pytest.approx(2.0))


@pytest.mark.parametrize(
    "kw",
    [
        dict(group_by="city"),
        dict(start=datetime(2026, 11, 24), end=datetime(2026, 11, 25)),  # naive
        dict(start=DAY[1], end=DAY[0]),
    ],
)
def test_bad_arguments_are_clear_errors(db, kw):
    args = {"start": DAY[0], "end": DAY[1], **kw}
    with pytest.raises(InvalidInput):
        kpi.kpi_compute(**args)
