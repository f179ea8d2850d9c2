"""督办 (urge): shift leaders and admins press the party whose clock runs — one `urged` event, no state change,
the desk's button from `actions`, and a notification to exactly that party (the team holding the case, else the
dispatchers of the case's area), never twice."""

from __future__ import annotations

import pytest

from gridmgmt import notify, rules, services
from gridmgmt.errors import InvalidInput, TransitionNotAllowed
from gridmgmt.models import Case, CaseEvent, Notification, User
from realtime.models import FeedEvent
from tests.factories import UserFactory
from tests.gridmgmt.api.test_notifications import dispatched, filed

R, E, K, S = User.Role, CaseEvent.Type, Notification.Kind, Case.Status


@pytest.fixture
def crew(world):
    """A second member of the team, a member of the other team, and staff of another district."""
    UserFactory(username="patrol2", role=R.PATROL, team=world.team, area=world.district)
    UserFactory(username="far_leader", role=R.SHIFT_LEADER, area=world.other_district)
    return world


def told(case: Case) -> list[str]:
    rows = Notification.objects.filter(case=case, kind=K.URGED).order_by("user__username")
    return list(rows.values_list("user__username", flat=True))


def test_urging_a_dispatched_case_tells_its_team_once_and_changes_nothing_else(crew):
    case = dispatched(crew)
    before = (case.status, case.team_id, case.deadline_at, case.events.count())
    body = crew.client(R.SHIFT_LEADER).post(f"/api/cases/{case.pk}/urge/", {"note": "居民多次投诉,今天必须清理"})
    assert body.status_code == 200, body.json()
    case.refresh_from_db()
    assert (case.status, case.team_id, case.deadline_at) == before[:3]
    assert case.events.count() == before[3] + 1
    event = case.events.get(type=E.URGED)
    assert (event.from_status, event.to_status, event.note) == (S.DISPATCHED, S.DISPATCHED, "居民多次投诉,今天必须清理")
    assert event.data == {"party": "team", "team": "PT-A"}
    assert told(case) == ["patrol", "patrol2"]  # not the other team, not the dispatchers, not the urger
    note = Notification.objects.get(case=case, kind=K.URGED, user=crew.users[R.PATROL])
    assert note.title == f"督办 {case.code}"
    assert note.text == "乱堆物堆料:指挥中心督办,请抓紧办理。居民多次投诉,今天必须清理"
    # A replay of the event's rules stores nothing twice, and no second feed row.
    rows = FeedEvent.objects.filter(type=notify.FEED_TYPE).count()
    assert notify.notifications_replay(event_ids=[event.pk]) == 0
    assert told(case) == ["patrol", "patrol2"]
    assert FeedEvent.objects.filter(type=notify.FEED_TYPE).count() == rows


def test_urging_a_handling_case_tells_its_team(crew):
    case = dispatched(crew)
    services.case_accept(case_id=case.pk, actor=crew.users[R.PATROL])
    services.case_urge(case_id=case.pk, actor=crew.users[R.ADMIN], note="快")
    assert told(case) == ["patrol", "patrol2"]


@pytest.mark.parametrize("sent_back", [False, True])
def test_urging_a_case_no_team_holds_tells_the_areas_dispatchers_only(crew, sent_back):
    case = dispatched(crew) if sent_back else filed(crew)
    if sent_back:
        services.case_send_back(case_id=case.pk, actor=crew.users[R.PATROL], reason="不归我队")
    services.case_urge(case_id=case.pk, actor=crew.users[R.SHIFT_LEADER], note="尽快派遣")
    assert case.events.get(type=E.URGED).data == {"party": "dispatchers"}
    # Dispatchers of the district; not the far district's, not the team, not other leaders or admins.
    assert told(case) == ["dispatcher", "dispatcher2"]


def test_the_desk_is_offered_the_button_only_where_an_urge_is_allowed(crew):
    case = dispatched(crew)
    for who, offered in ((R.SHIFT_LEADER, True), (R.ADMIN, True), (R.DISPATCHER, False), (R.INSPECTOR, False)):
        actions = crew.client(who).get(f"/api/cases/{case.pk}/").json()["properties"]["actions"]
        urge = [a for a in actions if a["name"] == "urge"]
        assert bool(urge) == offered, who
    (urge,) = [a for a in rules.case_actions_allowed(case=case, user=crew.users[R.SHIFT_LEADER]) if a["name"] == "urge"]
    assert (urge["label"], urge["path"]) == ("督办", "urge")
    assert urge["inputs"] == [{"name": "note", "kind": "text", "label": "督办意见", "required": True}]


def test_an_urge_needs_a_note_and_a_running_clock(crew):
    case = dispatched(crew)
    with pytest.raises(InvalidInput):
        services.case_urge(case_id=case.pk, actor=crew.users[R.SHIFT_LEADER], note="  ")
    answer = crew.client(R.SHIFT_LEADER).post(f"/api/cases/{case.pk}/urge/", {})
    assert answer.status_code == 400 and answer.json()["field"] == "note"
    services.case_park(case_id=case.pk, actor=crew.users[R.SHIFT_LEADER], reason="等待协调")
    with pytest.raises(TransitionNotAllowed):  # parked: no clock runs
        services.case_urge(case_id=case.pk, actor=crew.users[R.SHIFT_LEADER], note="快")
    assert not case.events.filter(type=E.URGED).exists() and not told(case)


def test_an_urge_is_on_the_timeline_the_wall_ticker_and_the_feed(crew):
    from gridmgmt.faces.selectors import wall_ticker

    case = dispatched(crew)
    event = services.case_urge(case_id=case.pk, actor=crew.users[R.SHIFT_LEADER], note="抓紧").events.get(type=E.URGED)
    rows = crew.client(R.DISPATCHER).get(f"/api/cases/{case.pk}/events/").json()["results"]
    assert [(r["type"], r["note"]) for r in rows][-1] == (E.URGED, "抓紧")
    tick = wall_ticker(cases=Case.objects.filter(pk=case.pk))[-1]
    assert (tick["type"], tick["type_label"], tick["case_code"]) == (E.URGED, "督办", case.code)
    row = FeedEvent.objects.get(case_event_id=event.pk)
    assert (row.type, row.data["event"], row.data["status"]) == ("case.updated", E.URGED, S.DISPATCHED)


def test_an_answer_tells_the_urger_and_a_recall_tells_the_team_it_was_taken_from(crew):
    case = dispatched(crew)
    leader, patrol = crew.users[R.SHIFT_LEADER], crew.users[R.PATROL]
    services.case_urge(case_id=case.pk, actor=leader, note="今天必须清理")
    services.case_urge_answer(case_id=case.pk, actor=patrol, note="已安排两人下午处理")
    (answer,) = Notification.objects.filter(case=case, kind=K.URGE_ANSWERED)
    assert (answer.user, answer.title) == (leader, f"督办已回复 {case.code}")
    assert answer.text == "乱堆物堆料:已安排两人下午处理"
    services.case_recall(case_id=case.pk, actor=crew.users[R.DISPATCHER], reason="派错了队伍")
    recalled = Notification.objects.filter(case=case, kind=K.RECALLED).order_by("user__username")
    assert list(recalled.values_list("user__username", flat=True)) == ["patrol", "patrol2"]  # not the dispatcher
    assert recalled[0].text == "乱堆物堆料:指挥中心已收回此任务,无需再处置。派错了队伍"
