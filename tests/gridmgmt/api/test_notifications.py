"""The inbox: who is told of what (gridmgmt.notify.RULES), nothing twice, and /api/notifications/."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gridmgmt import notify, services
from gridmgmt.models import Case, CaseEvent, Notification, User
from realtime import selectors
from realtime.models import FeedEvent
from realtime.scopes import Scope
from tests.factories import UserFactory
from tests.gridmgmt.api.conftest import jpeg

R, E, K = User.Role, CaseEvent.Type, Notification.Kind


@pytest.fixture
def crew(world):
    """A second member of the team, an inactive one, and a shift leader and an inspector of the other district."""
    world.users["patrol2"] = UserFactory(username="patrol2", role=R.PATROL, team=world.team, area=world.district)
    UserFactory(username="patrol_gone", role=R.PATROL, team=world.team, area=world.district, is_active=False)
    UserFactory(username="far_leader", role=R.SHIFT_LEADER, area=world.other_district)
    UserFactory(username="far_inspector", role=R.INSPECTOR, area=world.other_district)
    return world


def filed(world) -> Case:
    lon, lat = world.centre()
    case, _ = services.case_report(source=Case.Source.PATROL, category_code=world.category.code, lon=lon, lat=lat)
    return services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER])


def dispatched(world) -> Case:
    case = filed(world)
    return services.case_dispatch(case_id=case.pk, actor=world.users[R.DISPATCHER], team_id=world.team.pk)


def told(case: Case, kind: str) -> list[str]:
    rows = Notification.objects.filter(case=case, kind=kind).order_by("user__username")
    return list(rows.values_list("user__username", flat=True))


# --- the rules ---------------------------------------------------------------------------------------------


def test_a_dispatch_tells_exactly_the_teams_active_members(crew):
    case = dispatched(crew)
    assert told(case, K.DISPATCHED) == ["patrol", "patrol2"]
    assert Notification.objects.filter(case=case).count() == 2  # filing and reporting tell nobody
    note = Notification.objects.get(case=case, user=crew.users[R.PATROL])
    assert note.title == f"新任务 {case.code}"
    assert note.text == "乱堆物堆料:已派遣给你的队伍甲队,请签收"
    assert note.event.type == E.DISPATCHED
    assert note.read_at is None


def test_a_send_back_tells_the_dispatchers_of_the_area_and_not_another_areas(crew):
    case = dispatched(crew)
    services.case_send_back(case_id=case.pk, actor=crew.users[R.PATROL], reason="不归我队管")
    # Dispatchers, shift leaders and admins with the case's district in scope (the admin has no area: all).
    assert told(case, K.SENT_BACK) == ["admin", "dispatcher", "dispatcher2", "shift_leader"]
    note = Notification.objects.get(case=case, kind=K.SENT_BACK, user=crew.users[R.DISPATCHER])
    assert note.title == f"退单 {case.code}"
    assert note.text == "PT-A 退回了案件(乱堆物堆料),请重新派遣。不归我队管"


def test_an_extension_request_tells_the_areas_shift_leaders(crew):
    case = dispatched(crew)
    services.case_accept(case_id=case.pk, actor=crew.users[R.PATROL])
    services.case_extension_request(case_id=case.pk, actor=crew.users[R.PATROL], hours=4, reason="等材料")
    assert told(case, K.EXTENSION_REQUESTED) == ["shift_leader"]


def test_a_reopen_tells_the_team_and_the_areas_inspectors_not_the_actor(crew):
    case = dispatched(crew)
    patrol, leader = crew.users[R.PATROL], crew.users[R.SHIFT_LEADER]
    services.case_accept(case_id=case.pk, actor=patrol)
    services.case_handle(case_id=case.pk, actor=patrol, note="已清理", photos=[jpeg()])
    services.case_check(case_id=case.pk, actor=crew.users[R.INSPECTOR], passed=True)
    services.case_close(case_id=case.pk, actor=leader)
    services.case_reopen(case_id=case.pk, actor=leader, reason="又堆上了")
    assert told(case, K.REOPENED) == ["inspector", "patrol", "patrol2"]


def test_a_rule_run_again_on_the_same_events_stores_nothing_twice(crew):
    case = dispatched(crew)
    before = FeedEvent.objects.filter(type=notify.FEED_TYPE).count()
    ids = list(case.events.values_list("id", flat=True))
    assert notify.notifications_replay(event_ids=ids) == 0
    assert notify.notifications_replay(event_ids=ids) == 0
    assert told(case, K.DISPATCHED) == ["patrol", "patrol2"]
    assert FeedEvent.objects.filter(type=notify.FEED_TYPE).count() == before  # no second feed row either
    # A notification lost (deleted) is restored by a replay, once.
    Notification.objects.filter(case=case, user__username="patrol2").delete()
    assert notify.notifications_replay(event_ids=ids) == 1
    assert told(case, K.DISPATCHED) == ["patrol", "patrol2"]


def test_one_statement_stores_every_recipient(crew):
    case = filed(crew)
    with CaptureQueriesContext(connection) as queries:
        services.case_dispatch(case_id=case.pk, actor=crew.users[R.DISPATCHER], team_id=crew.team.pk)
    inserts = [q["sql"] for q in queries.captured_queries if "INSERT INTO gridmgmt_notification" in q["sql"]]
    assert len(inserts) == 1
    assert len(told(case, K.DISPATCHED)) == 2


def test_each_notification_is_a_feed_row_in_its_users_scope_only(crew):
    case = dispatched(crew)
    patrol = crew.users[R.PATROL]
    note = Notification.objects.get(case=case, user=patrol)
    rows = list(FeedEvent.objects.filter(type=notify.FEED_TYPE, user_id=patrol.id))
    assert len(rows) == 1
    row = rows[0]
    assert (row.district_id, row.street_id, row.community_id, row.team_id, row.case_event_id) == (None,) * 5
    assert row.data == {
        "id": note.id,
        "kind": "dispatched",
        "case_id": case.id,
        "code": case.code,
        "title": f"新任务 {case.code}",
        "text": note.text,
        "created_at": note.created_at.isoformat(),
        "unread": 1,
    }
    # The `all` scope (the wall) and area scopes never carry one person's rows; user:<id> carries only theirs.
    assert "notification.created" not in {r.type for r in selectors.feed_read(scope=Scope("all"), after=0)}
    district_rows = selectors.feed_read(scope=Scope("district", crew.district.id), after=0)
    assert "notification.created" not in {r.type for r in district_rows}
    mine = selectors.feed_read(scope=Scope("user", patrol.id), after=0)
    assert [r.seq for r in mine] == [row.seq]
    assert selectors.feed_head(scope=Scope("all")) < row.seq  # the dispatch's own row came just before


def test_the_feed_rows_unread_count_counts_what_is_already_unread(crew):
    first = dispatched(crew)
    second = dispatched(crew)
    patrol = crew.users[R.PATROL]
    counts = [
        r.data["unread"] for r in FeedEvent.objects.filter(type=notify.FEED_TYPE, user_id=patrol.id).order_by("seq")
    ]
    assert counts == [1, 2]
    assert {first.code, second.code} == set(
        FeedEvent.objects.filter(user_id=patrol.id).values_list("data__code", flat=True)
    )


# --- the API -----------------------------------------------------------------------------------------------


def test_the_inbox_lists_the_callers_own_newest_first_with_the_unread_count(crew):
    first, second = dispatched(crew), dispatched(crew)
    body = crew.client("patrol").get("/api/notifications/").json()
    assert body["count"] == 2
    assert body["unread"] == 2
    assert [n["case_code"] for n in body["results"]] == [second.code, first.code]
    assert set(body["results"][0]) == {
        "id", "kind", "case_id", "case_code", "event_id", "title", "text", "created_at", "read_at", "read",
    }  # fmt: skip
    assert body["results"][0]["kind"] == "dispatched"
    assert body["results"][0]["read"] is False
    # Someone told of nothing has an empty inbox.
    empty = crew.client("other_patrol").get("/api/notifications/").json()
    assert (empty["count"], empty["unread"], empty["results"]) == (0, 0, [])


def test_read_one_then_unread_filter_then_read_all(crew):
    first, second = dispatched(crew), dispatched(crew)
    client = crew.client("patrol")
    note = Notification.objects.get(case=first, user=crew.users[R.PATROL])
    response = client.post(f"/api/notifications/{note.id}/read/")
    assert response.status_code == 200
    body = response.json()
    assert body["unread"] == 1
    assert body["notification"]["id"] == note.id
    assert body["notification"]["read"] is True
    read_at = body["notification"]["read_at"]
    assert read_at is not None
    # Reading again changes nothing (the first read time stays).
    again = client.post(f"/api/notifications/{note.id}/read/").json()
    assert (again["unread"], again["notification"]["read_at"]) == (1, read_at)

    unread = client.get("/api/notifications/?unread=1").json()
    assert [n["case_code"] for n in unread["results"]] == [second.code]
    assert (unread["count"], unread["unread"]) == (1, 1)
    assert client.get("/api/notifications/?unread=0").json()["count"] == 2
    assert client.get("/api/notifications/?unread=maybe").status_code == 400

    done = client.post("/api/notifications/read-all/")
    assert done.status_code == 200
    assert done.json() == {"marked": 1, "unread": 0}
    assert client.post("/api/notifications/read-all/").json() == {"marked": 0, "unread": 0}
    assert client.get("/api/notifications/?unread=1").json()["count"] == 0
    # The other team member's inbox is untouched.
    assert Notification.objects.filter(user=crew.users["patrol2"], read_at__isnull=True).count() == 2


def test_another_users_notification_is_not_found(crew):
    case = dispatched(crew)
    theirs = Notification.objects.get(case=case, user=crew.users[R.PATROL])
    response = crew.client("patrol2").post(f"/api/notifications/{theirs.id}/read/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert crew.client(R.ADMIN).post(f"/api/notifications/{theirs.id}/read/").status_code == 404
    assert crew.client("patrol").post("/api/notifications/99999999/read/").status_code == 404
    assert crew.client("patrol").post("/api/notifications/abc/read/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None
    # read-all marks only the caller's own.
    crew.client("patrol2").post("/api/notifications/read-all/")
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_the_inbox_needs_a_login(crew):
    assert crew.client(None).get("/api/notifications/").status_code in (401, 403)
    assert crew.client(None).post("/api/notifications/read-all/").status_code in (401, 403)


def test_the_list_costs_three_queries_whatever_its_length(crew, django_assert_num_queries):
    for _ in range(3):
        dispatched(crew)
    client = crew.client("patrol")
    with django_assert_num_queries(3):  # the unread count, the page count, the page (case codes joined)
        body = client.get("/api/notifications/").json()
    assert len(body["results"]) == 3
    for _ in range(22):
        dispatched(crew)
    with django_assert_num_queries(3):
        body = client.get("/api/notifications/?page=2").json()
    assert (body["count"], len(body["results"]), body["unread"]) == (25, 5, 25)


def test_the_schema_declares_the_inbox(crew):
    schema = crew.client(R.ADMIN).get("/api/schema/?format=json").json()
    paths = schema["paths"]
    listing = paths["/api/notifications/"]["get"]
    assert {"200", "400", "401", "404"} <= set(listing["responses"])
    page = listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "unread" in schema["components"]["schemas"][page]["required"]
    assert {"200", "401", "404"} <= set(paths["/api/notifications/{id}/read/"]["post"]["responses"])
    assert {"200", "401"} <= set(paths["/api/notifications/read-all/"]["post"]["responses"])
