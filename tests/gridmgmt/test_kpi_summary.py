"""The KPI summary (KpiDay, kpi_summary_refresh) gives the rows the events give (kpi_compute(summary=False)),
on the hand-built day of test_kpi: right after it is built, with events written after it (reads take the
tail past the watermark from the events), with an offline action recorded late but dated earlier, with a
case whose clocks a resume moved after its first dispatch was summarized, and with a case reclassified to
another department."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from gridmgmt import kpi, services
from gridmgmt.models import Case, CaseEvent, Department, KpiDay, KpiVolatile, KpiWatermark, User
from tests.factories import CaseEventFactory, CategoryFactory, UserFactory
from tests.gridmgmt import test_kpi
from tests.gridmgmt.test_kpi import DAY, at

S, E, R = Case.Status, CaseEvent.Type, User.Role
day = test_kpi.day  # the hand-built day, a fixture
GROUPS = [None, "district", "street", "community", "team", "day", "week", "month", "grid", "department", "person"]
PERIODS = [DAY, (at(0, day=1), at(0, day=30)), (at(0, day=24), at(0, day=26))]


def same_both_ways(**scope):
    """Every grouping over every period: the summary's answer equals the events' answer; returns one of them."""
    for start, end in PERIODS:
        for group_by in GROUPS:
            fast = kpi.kpi_compute(start=start, end=end, group_by=group_by, **scope)
            raw = kpi.kpi_compute(start=start, end=end, group_by=group_by, summary=False, **scope)
            assert fast == raw, (start, group_by)
    return kpi.kpi_compute(start=DAY[0], end=DAY[1])


def test_summary_built_then_events_after_it(day):
    before = same_both_ways()
    done = kpi.kpi_summary_refresh()
    assert done["from"] == 0 and done["to"] == CaseEvent.objects.latest("id").id
    assert KpiDay.objects.filter(day=DAY[0].date()).count() > 0
    assert KpiWatermark.objects.get().upto == done["to"]
    (after,) = same_both_ways()
    assert after == before[0]
    # A case of the same day reported and filed after the summary: read from the events past the watermark.
    d = day.users[R.DISPATCHER]
    lon, lat = day.centre(5)
    with time_machine.travel(at(20, day=24), tick=False):
        case = services.case_report(source=Case.Source.PATROL, category_code="E0404", lon=lon, lat=lat)[0]
    with time_machine.travel(at(20, 5, day=24), tick=False):
        services.case_file(case_id=case.pk, actor=d)
    (later,) = same_both_ways()
    assert (later.received, later.filed) == (after.received + 1, after.filed + 1)
    kpi.kpi_summary_refresh(batch=2)  # a few ids per transaction: the batches add up
    assert same_both_ways() == [later]
    assert kpi.kpi_summary_refresh()["from"] == kpi.kpi_summary_refresh()["to"]  # nothing new: nothing done


def test_offline_action_recorded_after_the_summary_counts_on_its_day(day):
    kpi.kpi_summary_refresh()
    case = Case.objects.get(pk=day.ids["d"])
    # done on the phone at 11:00 on the 24th, reached the server two days later
    CaseEventFactory(case=case, type=E.RATED, at=at(11), recorded_at=at(9, day=26), data={"satisfaction": 2})
    (r,) = same_both_ways()
    assert (r.rated, r.satisfied, r.satisfaction_mean) == (3, 1, pytest.approx(10 / 3))
    kpi.kpi_summary_refresh()
    assert same_both_ways() == [r]


def test_a_resume_after_the_summary_moves_the_first_dispatch_deadline(day):
    """D was filed at 10:05 (dispatch by 10:35); dispatched late at 11:00 and summarized; then parked for
    two hours: the resume moves its dispatch deadline to 12:35, so that first dispatch is now on time."""
    lead, d = day.users[R.SHIFT_LEADER], day.users[R.DISPATCHER]
    case_id = day.ids["d"]
    with time_machine.travel(at(11), tick=False):
        services.case_dispatch(case_id=case_id, actor=d, team_id=day.team.pk)
    with time_machine.travel(at(11, 10), tick=False):
        services.case_park(case_id=case_id, actor=lead, reason="等待供电部门")
    kpi.kpi_summary_refresh()
    (r,) = same_both_ways()
    assert (r.first_dispatched, r.dispatched_on_time) == (3, 1)
    assert KpiVolatile.objects.filter(case_id=case_id, dispatched_on_time=0).count() == 1
    with time_machine.travel(at(13, 10), tick=False):
        services.case_resume(case_id=case_id, actor=lead)
    assert Case.objects.get(pk=case_id).dispatch_deadline_at == at(12, 35)
    (now,) = same_both_ways()  # the correction read with the tail, before any refresh
    assert (now.first_dispatched, now.dispatched_on_time) == (3, 2)
    kpi.kpi_summary_refresh()  # folded into the summary
    assert KpiVolatile.objects.get(case_id=case_id, first_dispatched=1).dispatched_on_time == 1
    assert same_both_ways() == [now]


def test_a_reclassified_case_keeps_its_earlier_events_with_the_department_that_had_them(day):
    """D (filed at 10:05 under 城管执法队) is reclassified at 11:00 to a category of 绿化市容所, after the summary
    was built, then dispatched: its report and filing stay with the first department, the dispatch counts for the
    second (its promise, `due`, would count for the department that owns the case now)."""
    d = day.users[R.DISPATCHER]
    green = Department.objects.create(code="D-GREEN", name="绿化市容所")
    CategoryFactory(code="E0501", name="绿化带损坏", parent=day.category.parent, default_department=green)
    kpi.kpi_summary_refresh()
    with time_machine.travel(at(11), tick=False):
        services.case_reclassify(case_id=day.ids["d"], actor=d, category="E0501", reason="实为绿化带损坏")
    with time_machine.travel(at(11, 5), tick=False):
        services.case_dispatch(case_id=day.ids["d"], actor=d, team_id=day.team.pk)
    for refreshed in (False, True):
        if refreshed:
            kpi.kpi_summary_refresh()
        same_both_ways()
        rows = kpi.kpi_compute(start=DAY[0], end=DAY[1], group_by="department")
        by_name = {r.name: (r.received, r.filed, r.dispatched, r.due, r.due_closed) for r in rows}
        # 城管执法队: A, B, C and D reported, A, B and D filed, A and B dispatched (B twice), A and B due and
        # closed; D's new category's limit moved its promise past the day
        assert by_name == {"城管执法队": (4, 3, 3, 2, 2), "绿化市容所": (0, 0, 1, 0, 0)}, refreshed
    case = Case.objects.get(pk=day.ids["d"])
    assert case.department == green and case.due_at > DAY[1]


def test_an_event_without_a_department_copy_counts_for_its_cases_department(day):
    """History written before the copy existed (migration 0024): its case's department, both ways."""
    case = Case.objects.get(pk=day.ids["d"])
    CaseEventFactory(case=case, type=E.CHECK_FAILED, at=at(12), department_id_copy=None)
    for refresh in (False, True):
        if refresh:
            kpi.kpi_summary_refresh()
        same_both_ways()
        (row,) = kpi.kpi_compute(start=DAY[0], end=DAY[1], group_by="department")
        assert (row.key, row.check_failed) == (case.department_id, 2)


def test_imported_closure_judged_against_the_promise_now(day):
    """A CLOSED event without `on_time_overall` reads the case's promise as it is now."""
    case = Case.objects.get(pk=day.ids["d"])
    CaseEventFactory(case=case, type=E.CLOSED, to_status=S.CLOSED, at=at(15))  # before its 15:35 promise
    kpi.kpi_summary_refresh()
    (r,) = same_both_ways()
    assert (r.closed, r.closed_on_time) == (3, 2)
    lead = day.users[R.SHIFT_LEADER]
    with time_machine.travel(at(15, 40), tick=False):  # an extension-like move of the promise: park, resume
        services.case_park(case_id=case.pk, actor=lead, reason="等待")
    Case.objects.filter(pk=case.pk).update(due_at=at(14))  # the promise now before the closure…
    with time_machine.travel(at(15, 50), tick=False):  # …and an event of the case after the summary
        services.case_resume(case_id=case.pk, actor=lead)
    (moved,) = same_both_ways()
    assert moved.closed_on_time == 1
    kpi.kpi_summary_refresh()
    assert same_both_ways() == [moved]


def test_area_scoped_users_read_the_summary(day):
    kpi.kpi_summary_refresh()
    local = UserFactory(username="local_inspector", role=R.INSPECTOR, area=day.district)
    visible = kpi.access.cases_visible(user=local)
    assert kpi._scope(visible, kpi.read_connection()).area_columns is not None  # served by KpiDay
    same_both_ways(cases=visible)
    same_both_ways(cases=kpi.cases_in_area(cases=visible, area_id=day.district.pk))
    mine = kpi.access.cases_visible(user=day.users[R.PATROL])  # a team's cases: from the events
    assert kpi._scope(mine, kpi.read_connection()).area_columns is None
    same_both_ways(cases=mine)
    # a scope by community: KpiDay serves it, KpiDayDepartment (no community id) leaves department to the events
    by_community = Case.objects.filter(community_id__isnull=True)  # this world has no communities
    assert kpi._scope(by_community, kpi.read_connection()).area_columns == {"community_id"}
    same_both_ways(cases=by_community)
    rows = kpi.kpi_for_user(user=local, start=DAY[0], end=DAY[1] + timedelta(days=1), group_by="day")
    assert [(r.key, r.received) for r in rows] == [(DAY[0].date(), 4), (DAY[1].date(), 1)]


def test_stock_reads_only_open_cases():
    """kpi_stock counts overdue among the open cases only: every clocked status is an open one."""
    from gridmgmt import states

    assert states.CLOCKED_STATUSES <= states.OPEN_STATUSES
