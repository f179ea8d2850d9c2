"""四级处置: a breached case climbs one level per run (thresholds one limit-span apart), its new level's
supervisors are alerted, one event per step; cases not in breach, parked or already at the district stay."""

from __future__ import annotations

import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import CommandError, call_command

from gridmgmt import escalation, services
from gridmgmt.models import Case, CaseEvent, Notification, User
from gridmgmt.states import case_light
from tests.factories import UserFactory
from tests.locks import row_locked_elsewhere
from tests.world import jpeg, world_build, world_with_levels_build

S, E, R, L = Case.Status, CaseEvent.Type, User.Role, Case.Level
TZ = ZoneInfo("Asia/Shanghai")


def at(hour: int, minute: int = 0, day: int = 24) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)  # 2026-11-24 is a Tuesday


@pytest.fixture
def world(db):
    w = world_with_levels_build()
    street, community = w.street, w.community
    w.sup = {
        "community": UserFactory(username="c_insp", role=R.INSPECTOR, area=community),
        "community2": UserFactory(username="c_lead", role=R.SHIFT_LEADER, area=community),
        "street": UserFactory(username="s_lead", role=R.SHIFT_LEADER, area=street),
        "district": UserFactory(username="d_admin", role=R.ADMIN, area=w.district),
    }
    # Not supervisors of any level: wrong role, or inactive.
    UserFactory(username="c_disp", role=R.DISPATCHER, area=community)
    UserFactory(username="c_gone", role=R.INSPECTOR, area=community, is_active=False)
    return w


def handling_case(world, *, when: datetime | None = None) -> Case:
    """Reported, filed, dispatched and accepted at Tuesday 10:00: handling deadline 15:00 (4 working hours
    with the lunch break), promise due 15:30, span 5 h."""
    with time_machine.travel(when or at(10), tick=False):
        lon, lat = world.centre()
        case, _ = services.case_report(
            source=Case.Source.PATROL, category_code=world.category.code, lon=lon, lat=lat, photos=[jpeg()]
        )
        services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER])
        services.case_dispatch(case_id=case.pk, actor=world.users[R.DISPATCHER], team_id=world.team.pk)
        return services.case_accept(case_id=case.pk, actor=world.users[R.PATROL])


def run(moment: datetime) -> escalation.EscalationReport:
    with time_machine.travel(moment, tick=False):
        return escalation.cases_escalate()


def alerted(case: Case, level: int) -> set[str]:
    event = case.events.get(type=E.ESCALATED, data__level=level)
    found = Notification.objects.filter(case=case, event=event, kind=Notification.Kind.ESCALATED)
    return set(found.values_list("user__username", flat=True))


def test_breached_case_climbs_one_level_per_threshold(world):
    case = handling_case(world)
    assert (case.deadline_at, case.due_at) == (at(15), at(15, 30))
    assert run(at(14, 59)).count == 0
    assert run(at(15)).count == 0  # the deadline itself is not yet a breach

    report = run(at(15, 1))
    assert report.escalated == ((case.pk, L.COMMUNITY),) and report.alerts == 2
    case.refresh_from_db()
    assert case.level == L.COMMUNITY and case.status == S.HANDLING
    event = case.events.get(type=E.ESCALATED)
    assert (event.actor, event.actor_role, event.data, event.at) == (None, "system", {"level": 1}, at(15, 1))
    assert (event.from_status, event.to_status) == (S.HANDLING, S.HANDLING)
    assert alerted(case, 1) == {"c_insp", "c_lead"}

    # A run every minute does not push it further: the next level is due one span (5 h) after the breach.
    for minute in range(2, 60, 7):
        assert run(at(15, minute)).count == 0
    assert run(at(19, 59)).count == 0
    assert run(at(20, 1)).escalated == ((case.pk, L.STREET),)
    assert run(at(20, 2)).count == 0
    assert alerted(case, 2) == {"s_lead"}
    assert run(at(1, 1, day=25)).escalated == ((case.pk, L.DISTRICT),)
    assert alerted(case, 3) == {"d_admin"}
    assert run(at(9, 0, day=30)).count == 0  # the district is the top

    case.refresh_from_db()
    assert case.level == L.DISTRICT
    levels = list(case.events.filter(type=E.ESCALATED).order_by("id").values_list("data__level", flat=True))
    assert levels == [1, 2, 3]
    assert Notification.objects.filter(case=case, kind=Notification.Kind.ESCALATED).count() == 4


def test_one_level_per_run_even_after_a_long_outage(world):
    case = handling_case(world)
    # The scheduler was down for a week: every threshold has passed, but each run climbs one level.
    moments = [at(10, 0, day=28), at(10, 1, day=28), at(10, 2, day=28), at(10, 3, day=28)]
    assert [run(m).count for m in moments] == [1, 1, 1, 0]
    case.refresh_from_db()
    assert case.level == L.DISTRICT and case.events.filter(type=E.ESCALATED).count() == 3


def test_not_breached_parked_and_unfiled_cases_are_untouched(world):
    late = handling_case(world)
    parked = handling_case(world)
    fresh = handling_case(world, when=at(9, 0, day=26))
    with time_machine.travel(at(11), tick=False):
        services.case_park(case_id=parked.pk, actor=world.users[R.SHIFT_LEADER], reason="需产权单位确认")
        lon, lat = world.centre()
        unfiled, _ = services.case_report(source=Case.Source.RESIDENT, category_code="E0404", lon=lon, lat=lat)
    with time_machine.travel(at(16), tick=False):
        services.case_handle(case_id=late.pk, actor=world.users[R.PATROL], photos=[jpeg()])
    # `late` now waits for the inspector with no stage clock, but its promise (15:30) is broken.
    report = run(at(9, 30, day=26))
    assert report.escalated == ((late.pk, L.COMMUNITY),)
    for case in (parked, unfiled, fresh):
        case.refresh_from_db()
        assert case.level == L.GRID and not case.events.filter(type=E.ESCALATED).exists()
    assert case_light(case=parked, now=at(9, 0, day=26)) == "none"  # parked: paused, never red


def test_rework_keeps_the_handling_clock(world):
    """A failed check sends the case back with its original deadline (no extra time): red and escalated
    once that deadline passes, even though the promise (15:30) has not."""
    case = handling_case(world)
    with time_machine.travel(at(13), tick=False):
        services.case_handle(case_id=case.pk, actor=world.users[R.PATROL], photos=[jpeg()])
        case = services.case_check(case_id=case.pk, actor=world.users[R.INSPECTOR], passed=False, note="仍有残留")
    assert (case.status, case.deadline_at, case.warn_at) == (S.HANDLING, at(15), at(13, 45))
    assert case_light(case=case, now=at(14)) == "yellow"
    assert case_light(case=case, now=at(15, 1)) == "red"
    assert run(at(15, 1)).escalated == ((case.pk, L.COMMUNITY),)


def test_case_handled_on_time_and_within_promise_is_not_escalated(world):
    case = handling_case(world)
    with time_machine.travel(at(14), tick=False):
        services.case_handle(case_id=case.pk, actor=world.users[R.PATROL], photos=[jpeg()])
        services.case_check(case_id=case.pk, actor=world.users[R.INSPECTOR], passed=True)
        services.case_close(case_id=case.pk, actor=world.users[R.SHIFT_LEADER])
    assert run(at(9, 0, day=30)).count == 0


def test_waiting_for_dispatch_escalates_on_the_dispatch_window(world):
    with time_machine.travel(at(10), tick=False):
        lon, lat = world.centre()
        case, _ = services.case_report(source=Case.Source.RESIDENT, category_code="E0404", lon=lon, lat=lat)
        services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER])
    assert run(at(10, 30)).count == 0  # the 30-minute dispatch window ends at 10:30
    assert run(at(10, 31)).escalated == ((case.pk, L.COMMUNITY),)
    # The next level waits at least MIN_SPAN (2 h), not another 30 minutes.
    assert run(at(11, 5)).count == 0
    assert run(at(12, 29)).count == 0
    assert run(at(12, 32)).escalated == ((case.pk, L.STREET),)


def test_missing_or_empty_area_alerts_the_next_level_up(world):
    case = handling_case(world)
    Case.objects.filter(pk=case.pk).update(community=None)
    run(at(15, 1))
    assert alerted(case, 1) == {"s_lead"}  # no community: its street is alerted (属地兜底)
    other = handling_case(world)
    User.objects.filter(area=world.street).delete()
    Case.objects.filter(pk=other.pk).update(level=L.COMMUNITY)
    run(at(20, 2))  # case climbs to street (nobody there → district), other too
    assert alerted(other, 2) == {"d_admin"}


def test_run_is_set_based_with_bounded_queries(world, django_assert_max_num_queries):
    cases = [handling_case(world) for _ in range(6)]
    with time_machine.travel(at(15, 1), tick=False), django_assert_max_num_queries(9 + len(cases)):
        # savepoint, select+lock, supervisors, one UPDATE, one INSERT per event (event_append), one bulk
        # INSERT of all alerts, release; the outbox: a savepoint, the active robots, its release
        report = escalation.cases_escalate()
    assert report.count == 6 and report.alerts == 12
    assert set(Case.objects.filter(pk__in=[c.pk for c in cases]).values_list("level", flat=True)) == {1}


@pytest.mark.django_db(transaction=True)
def test_a_case_locked_by_someone_else_is_skipped_not_waited_for():
    world = world_build()
    case = handling_case(world)
    with row_locked_elsewhere(Case.objects.all(), case.pk):
        assert run(at(15, 1)).count == 0  # returns at once instead of blocking on the lock
    assert run(at(15, 2)).escalated == ((case.pk, L.COMMUNITY),)


def test_management_command_runs_once_and_validates_loop(world):
    case = handling_case(world)
    out = io.StringIO()
    with time_machine.travel(at(15, 1), tick=False):
        call_command("cases_escalate", stdout=out)
    assert "escalated 1" in out.getvalue()
    case.refresh_from_db()
    assert case.level == L.COMMUNITY
    with pytest.raises(CommandError):
        call_command("cases_escalate", "--loop", "0")


def test_loop_mode_runs_repeatedly_survives_a_failed_run_and_stops_on_sigterm(monkeypatch):
    import os
    import signal

    from gridmgmt.management import loop
    from gridmgmt.management.commands import cases_escalate as command

    calls = []

    def fake(**kw):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("database restarting")  # a failed run is logged; the loop goes on
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGTERM)  # what systemd sends on stop
        return escalation.EscalationReport(now=at(10), escalated=(), alerts=0)

    monkeypatch.setattr(command, "cases_escalate", fake)
    monkeypatch.setattr(loop, "close_old_connections", lambda: None)
    previous = signal.getsignal(signal.SIGTERM)
    out = io.StringIO()
    try:
        call_command("cases_escalate", "--loop", "0.01", stdout=out)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert len(calls) == 4 and out.getvalue().count("escalated 0") == 3


def test_each_supervisor_of_the_new_level_is_notified_once_and_a_second_run_adds_none(world):
    from gridmgmt import notify
    from realtime.models import FeedEvent

    case = handling_case(world)
    run(at(15, 1))
    escalated = Notification.objects.filter(case=case, kind=Notification.Kind.ESCALATED)
    assert sorted(escalated.values_list("user__username", flat=True)) == ["c_insp", "c_lead"]
    note = escalated.get(user__username="c_insp")
    assert note.title == f"{case.code} 已升级至社区督办"
    assert note.text == "乱堆物堆料:超过处置时限,请督办"
    feed = FeedEvent.objects.filter(type="notification.created", data__kind="escalated")
    assert sorted(feed.values_list("user_id", flat=True)) == sorted(
        world.sup[k].id for k in ("community", "community2")
    )

    # The loop runs again (same moment, a minute later): nothing new, no second notification, no feed row.
    assert run(at(15, 1)).count == 0
    assert run(at(15, 2)).alerts == 0
    event = case.events.get(type=E.ESCALATED)
    assert notify.notifications_replay(event_ids=[event.id]) == 0  # the rule fired again on the same event
    assert escalated.count() == 2
    assert feed.count() == 2
