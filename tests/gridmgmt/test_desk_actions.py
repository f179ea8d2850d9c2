"""The desk actions of issue 11: 改派 / 撤回, 改类 (deadlines recomputed), 督办回复 and the ledger, bulk file / void /
dispatch with per-case results, 回访 by phone, and components (部件) routing a case to their maintainer."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.gis.geos import Point
from django.http import Http404
from rest_framework.test import APIClient

from geo.models import Component
from gridmgmt import desk_selectors, rules, services
from gridmgmt.errors import InvalidInput, RoleNotAllowed, TransitionNotAllowed
from gridmgmt.models import Case, CaseEvent, Category, Department, Notification, User
from tests.factories import CategoryFactory, DistrictFactory, TeamFactory, UserFactory
from tests.world import world_build

S, E, R = Case.Status, CaseEvent.Type, User.Role
TZ = ZoneInfo("Asia/Shanghai")
TUESDAY_10 = datetime(2026, 11, 24, 10, 0, tzinfo=TZ)  # a working day; periods 09–12, 13–18


@pytest.fixture
def world(db):
    return world_build()


def reported(world, **kw) -> Case:
    lon, lat = world.centre()
    case, _ = services.case_report(
        source=Case.Source.HOTLINE, category_code=world.category.code, lon=lon, lat=lat, **kw
    )
    return case


def filed(world, **kw) -> Case:
    case = reported(world, **kw)
    return services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER])


def dispatched(world, team=None) -> Case:
    case = filed(world)
    return services.case_dispatch(case_id=case.pk, actor=world.users[R.DISPATCHER], team_id=(team or world.team).pk)


# --- 改派 / 撤回 ------------------------------------------------------------------------------------------


def test_reassign_moves_the_case_to_another_team_with_reason_and_evidence(world):
    case = dispatched(world)
    services.case_accept(case_id=case.pk, actor=world.users[R.PATROL])
    case = services.case_reassign(
        case_id=case.pk, actor=world.users[R.DISPATCHER], team_id=world.other_team.pk, reason="甲队人手不足"
    )
    assert (case.status, case.team_id, case.accepted_at) == (S.DISPATCHED, world.other_team.pk, None)
    event = case.events.get(type=E.REASSIGNED)
    assert (event.from_status, event.to_status, event.note) == (S.HANDLING, S.DISPATCHED, "甲队人手不足")
    assert event.data["from_team"] == "PT-A" and event.data["team"] == "PT-B"
    assert event.data["evidence"]["team"] == "PT-B"
    told = Notification.objects.filter(case=case, kind=Notification.Kind.DISPATCHED).order_by("id")
    assert [n.user.username for n in told] == ["patrol", "other_patrol"]  # the dispatch, then the reassignment
    # the new team may accept it; the old one no longer can
    assert rules.action_allowed(action="accept", case=case, user=world.users["other_patrol"])
    assert not rules.action_allowed(action="accept", case=case, user=world.users[R.PATROL])


def test_reassign_refusals(world):
    case = dispatched(world)
    with pytest.raises(InvalidInput) as e:
        services.case_reassign(case_id=case.pk, actor=world.users[R.DISPATCHER], team_id=world.other_team.pk, reason="")
    assert e.value.field == "reason"
    with pytest.raises(InvalidInput) as e:
        services.case_reassign(case_id=case.pk, actor=world.users[R.DISPATCHER], team_id=world.team.pk, reason="x")
    assert e.value.code == "same_team"
    with pytest.raises(RoleNotAllowed):
        services.case_reassign(case_id=case.pk, actor=world.users[R.INSPECTOR], team_id=world.other_team.pk, reason="x")
    filed_case = filed(world)
    with pytest.raises(TransitionNotAllowed):  # 409: not dispatched yet
        services.case_reassign(
            case_id=filed_case.pk, actor=world.users[R.DISPATCHER], team_id=world.other_team.pk, reason="x"
        )
    assert not CaseEvent.objects.filter(type=E.REASSIGNED).exists()


def test_recall_takes_the_case_back_to_filed(world):
    case = dispatched(world)
    case = services.case_recall(case_id=case.pk, actor=world.users[R.SHIFT_LEADER], reason="派错了")
    assert (case.status, case.team_id, case.send_back_count) == (S.FILED, None, 0)
    event = case.events.get(type=E.RECALLED)
    assert (event.data, event.note) == ({"from_team": "PT-A"}, "派错了")
    with pytest.raises(TransitionNotAllowed):  # 409: filed now, nothing to recall
        services.case_recall(case_id=case.pk, actor=world.users[R.DISPATCHER], reason="again")
    with pytest.raises(RoleNotAllowed):
        services.case_recall(case_id=dispatched(world).pk, actor=world.users[R.PATROL], reason="x")


# --- 改类 -------------------------------------------------------------------------------------------------


def _longer_category(world) -> Category:
    category = CategoryFactory(
        code="E0405",
        name="占道经营",
        limit_unit=Category.LimitUnit.WORKING_HOURS,
        limit_normal=8,
        dispatch_minutes_normal=30,
        default_department=None,
    )
    Category.objects.filter(pk=category.pk).update(parent=world.category.parent)
    return category


@time_machine.travel(TUESDAY_10, tick=False)
def test_reclassify_records_old_and_new_and_recomputes_deadlines(world):
    _longer_category(world)
    case = filed(world)
    assert case.due_at == datetime(2026, 11, 24, 15, 30, tzinfo=TZ)  # 10:30 + 4 working hours
    case = services.case_reclassify(
        case_id=case.pk, actor=world.users[R.DISPATCHER], category="E0405", reason="实为占道经营"
    )
    assert case.category.code == "E0405" and case.department_id is None  # the new category's (no) department
    assert case.due_at == datetime(2026, 11, 25, 10, 30, tzinfo=TZ)  # 10:30 + 8 working hours
    event = case.events.get(type=E.RECLASSIFIED)
    assert (event.data["from"], event.data["to"], event.note) == ("E0404", "E0405", "实为占道经营")
    assert event.data["due_at"] == "2026-11-25T10:30:00+08:00"


@time_machine.travel(TUESDAY_10, tick=False)
def test_reclassify_while_handling_recomputes_the_handling_deadline_from_acceptance(world):
    _longer_category(world)
    case = dispatched(world)
    case = services.case_accept(case_id=case.pk, actor=world.users[R.PATROL])
    assert case.deadline_at == datetime(2026, 11, 24, 15, 0, tzinfo=TZ)  # 10:00 + 4 working hours
    case = services.case_reclassify(case_id=case.pk, actor=world.users[R.SHIFT_LEADER], category="E0405", reason="改类")
    assert case.status == S.HANDLING
    assert case.deadline_at == datetime(2026, 11, 25, 10, 0, tzinfo=TZ)
    assert case.warn_at == datetime(2026, 11, 24, 17, 0, tzinfo=TZ)


def test_reclassify_refusals(world):
    case = filed(world)
    actor = world.users[R.DISPATCHER]
    with pytest.raises(InvalidInput) as e:
        services.case_reclassify(case_id=case.pk, actor=actor, category="NOPE", reason="x")
    assert e.value.field == "category"
    with pytest.raises(InvalidInput) as e:
        services.case_reclassify(case_id=case.pk, actor=actor, category="E0404", reason="x")
    assert e.value.code == "same_category"
    with pytest.raises(RoleNotAllowed):
        services.case_reclassify(case_id=case.pk, actor=world.users[R.WALL], category="E0405", reason="x")
    services.case_void(case_id=reported(world).pk, actor=actor, reason="重复")
    voided = Case.objects.get(status=S.VOIDED)
    with pytest.raises(TransitionNotAllowed):
        services.case_reclassify(case_id=voided.pk, actor=actor, category="E0404", reason="x")


# --- 督办 and 回复, the ledger ------------------------------------------------------------------------------


def test_urge_answer_and_ledger(world, django_assert_num_queries):
    case = dispatched(world)
    leader, patrol = world.users[R.SHIFT_LEADER], world.users[R.PATROL]
    assert not rules.action_allowed(action="urge_answer", case=case, user=patrol)  # nothing urged yet
    services.case_urge(case_id=case.pk, actor=leader, note="今天下班前处理")
    services.case_urge(case_id=case.pk, actor=leader, note="再催")
    case.refresh_from_db()
    assert case.urges_open == 2
    with pytest.raises(Http404):  # the other team neither sees the case nor was urged
        services.case_urge_answer(case_id=case.pk, actor=world.users["other_patrol"], note="不是我们")
    with pytest.raises(RoleNotAllowed):  # an inspector is never the party urged
        services.case_urge_answer(case_id=case.pk, actor=world.users[R.INSPECTOR], note="x")
    with pytest.raises(InvalidInput):
        services.case_urge_answer(case_id=case.pk, actor=patrol, note=" ")
    case = services.case_urge_answer(case_id=case.pk, actor=patrol, note="已安排人员")
    first_urge = case.events.filter(type=E.URGED).order_by("id").first()
    answer = case.events.get(type=E.URGE_ANSWERED)
    assert (answer.data["urge"], answer.note, case.urges_open) == (first_urge.pk, "已安排人员", 1)
    with django_assert_num_queries(1):  # urges, cases, actors and answers in one statement
        ledger = list(desk_selectors.urges_ledger(user=world.users[R.DISPATCHER]))
    assert [(u.note, u.answer_note, u.answer_by) for u in ledger] == [
        ("再催", None, None),
        ("今天下班前处理", "已安排人员", "patrol"),
    ]
    assert [u.note for u in desk_selectors.urges_ledger(user=leader, answered=False)] == ["再催"]
    services.case_urge_answer(case_id=case.pk, actor=patrol, note="已处理")
    with pytest.raises(TransitionNotAllowed):  # 409: every urge answered
        services.case_urge_answer(case_id=case.pk, actor=patrol, note="again")


def test_urge_ledger_api(world):
    case = filed(world)  # no team holds it: the dispatchers are urged and answer
    services.case_urge(case_id=case.pk, actor=world.users[R.SHIFT_LEADER], note="尽快派遣")
    client = APIClient()
    client.force_authenticate(world.users[R.DISPATCHER])
    r = client.post(f"/api/cases/{case.pk}/urge-answer/", {"note": "马上派"}, format="json")
    assert r.status_code == 200, r.content
    r = client.get("/api/urges/?answered=true")
    row = r.json()["results"][0]
    assert (row["case_code"], row["party"], row["answered"], row["answer_note"]) == (
        case.code,
        "dispatchers",
        True,
        "马上派",
    )
    assert client.get("/api/urges/?answered=maybe").status_code == 400
    client.force_authenticate(world.users[R.RESIDENT])
    assert client.get("/api/urges/").status_code == 403


# --- bulk ------------------------------------------------------------------------------------------------


def test_bulk_file_gives_one_event_each_and_per_case_refusals(world):
    a, b, c = reported(world), reported(world), reported(world)
    services.case_void(case_id=c.pk, actor=world.users[R.DISPATCHER], reason="重复")
    results = services.cases_bulk_act(
        actor=world.users[R.DISPATCHER], action="file", case_ids=[a.pk, b.pk, c.pk, 999999]
    )
    assert [(r["id"], r["ok"], r.get("http_status")) for r in results] == [
        (a.pk, True, None),
        (b.pk, True, None),
        (c.pk, False, 409),
        (999999, False, 404),
    ]
    assert CaseEvent.objects.filter(type=E.FILED).count() == 2
    assert set(Case.objects.filter(pk__in=[a.pk, b.pk]).values_list("status", flat=True)) == {S.FILED}


def test_bulk_void_and_dispatch_over_the_api(world):
    a, b = reported(world), reported(world)
    client = APIClient()
    client.force_authenticate(world.users[R.DISPATCHER])
    r = client.post("/api/cases/bulk/", {"action": "void", "cases": [a.pk, b.pk]}, format="json")
    assert (r.status_code, r.json()["field"]) == (400, "reason")  # said once, nothing written
    assert not CaseEvent.objects.filter(type=E.VOIDED).exists()
    r = client.post("/api/cases/bulk/", {"action": "void", "cases": [a.pk], "reason": "测试"}, format="json")
    assert (r.status_code, r.json()["ok"], r.json()["failed"]) == (200, 1, 0)
    c, d = filed(world), filed(world)
    r = client.post(
        "/api/cases/bulk/", {"action": "dispatch", "cases": [c.pk, d.pk, b.pk], "team": world.team.pk}, format="json"
    )
    body = r.json()
    assert (body["ok"], body["failed"]) == (2, 1)
    assert body["results"][2]["http_status"] == 409 and body["results"][2]["error"]["code"] == "transition_not_allowed"
    assert CaseEvent.objects.filter(type=E.DISPATCHED).count() == 2
    client.force_authenticate(world.users[R.INSPECTOR])
    r = client.post("/api/cases/bulk/", {"action": "file", "cases": [b.pk]}, format="json")
    assert r.json()["results"][0]["http_status"] == 403


# --- 回访 -------------------------------------------------------------------------------------------------


def _closed(world) -> Case:
    case = dispatched(world)
    users = world.users
    services.case_accept(case_id=case.pk, actor=users[R.PATROL])
    from tests.world import jpeg

    services.case_handle(case_id=case.pk, actor=users[R.PATROL], photos=[jpeg()])
    services.case_check(case_id=case.pk, actor=users[R.INSPECTOR], passed=True)
    return services.case_close(case_id=case.pk, actor=users[R.SHIFT_LEADER], hotline_reply="已处理")


def test_return_visit_records_satisfaction_by_phone(world):
    case = _closed(world)
    Case.objects.filter(pk=case.pk).update(reporter_phone="13812345678", reporter_name="王先生")
    client = APIClient()
    client.force_authenticate(world.users[R.DISPATCHER])
    r = client.get("/api/return-visits/")
    feature = r.json()["features"][0]["properties"]
    assert (feature["code"], feature["reporter_phone"]) == (case.code, "138****5678")
    r = client.post(
        f"/api/cases/{case.pk}/rate/", {"satisfaction": 4, "note": "电话回访", "via": "phone"}, format="json"
    )
    assert r.status_code == 200
    assert case.events.get(type=E.RATED).data == {"satisfaction": 4, "via": "phone"}
    assert client.get("/api/return-visits/").json()["features"] == []
    r = client.post(f"/api/cases/{case.pk}/rate/", {"satisfaction": 5}, format="json")
    assert r.status_code == 409  # rated once


def test_the_return_visit_caller_gets_the_whole_number_and_no_one_else(world, caplog):
    case = _closed(world)
    Case.objects.filter(pk=case.pk).update(reporter_phone="13812345678")
    url = f"/api/cases/{case.pk}/reporter-phone/"

    def post(user, path=url):
        client = APIClient()
        client.force_authenticate(user)
        return client.post(path, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans")

    with caplog.at_level("INFO", logger="gridmgmt.api.views"):
        r = post(world.users[R.DISPATCHER])
    assert (r.status_code, r.json()) == (200, {"phone": "13812345678"})
    assert "13812345678" not in caplog.text and "reporter phone shown" in caplog.text
    assert post(world.users[R.SHIFT_LEADER]).json() == {"phone": "13812345678"}
    for role in (R.INSPECTOR, R.PATROL, R.WALL):  # staff who never call back: refused, in Chinese
        r = post(world.users[role])
        assert r.status_code in (403, 404), role
        assert "13812345678" not in r.content.decode()
    assert post(world.users[R.INSPECTOR]).json()["detail"] == "只有派遣员和值班长可以查看完整电话"
    other_district = DistrictFactory(code="310116")
    elsewhere = UserFactory(username="disp_310116", role=R.DISPATCHER, area=other_district)
    assert post(elsewhere).status_code == 404  # another district's dispatcher: not found
    Case.objects.filter(pk=case.pk).update(reporter_phone="")
    assert post(world.users[R.DISPATCHER]).status_code == 404  # nothing to call
    assert post(world.users[R.DISPATCHER], "/api/cases/abc/reporter-phone/").status_code == 404
    assert APIClient().post(url).status_code in (401, 403)  # anonymous


# --- components route cases --------------------------------------------------------------------------------


def test_a_case_naming_a_component_is_routed_to_its_maintainer(world):
    maintainer = Department.objects.create(code="LD", name="路灯养护所")
    lamp_team = TeamFactory(district=world.district, code="PT-LAMP", name="路灯队", department=maintainer)
    lon, lat = world.centre()
    Component.objects.create(
        code="0101310115001",
        major_class=Component.MajorClass.PUBLIC_FACILITIES,
        name="路灯",
        location=Point(lon, lat, srid=4326),
        cell=world.cells[4],
        maintainer=maintainer,
    )
    client = APIClient()
    client.force_authenticate(world.users[R.DISPATCHER])
    body = {"category": "E0404", "lon": lon, "lat": lat, "source": "hotline", "component": "0101310115001"}
    r = client.post("/api/cases/", body, format="json")
    assert r.status_code == 201, r.content
    case = Case.objects.get(pk=r.json()["id"])
    assert (case.component.code, case.department_id) == ("0101310115001", maintainer.pk)
    assert r.json()["properties"]["department"] == "路灯养护所"
    services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER])
    r = client.get(f"/api/cases/{case.pk}/candidates/")
    assert r.json()["results"][0]["team"]["code"] == "PT-LAMP"
    services.case_dispatch(case_id=case.pk, actor=world.users[R.DISPATCHER], team_id=lamp_team.pk)
    evidence = case.events.get(type=E.DISPATCHED).data["evidence"]
    assert evidence["component"] == "0101310115001"
    assert evidence["department"] == "LD" and evidence["department_basis"] == "component_maintainer"
    assert evidence["team_department"] is True
    r = client.get(f"/api/components/?in_bbox={lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}")
    assert [f["properties"]["code"] for f in r.json()["features"]] == ["0101310115001"]
    r = client.post("/api/cases/", {**body, "component": "NOPE"}, format="json")
    assert (r.status_code, r.json()["field"]) == (400, "component")


def test_print_sheet_renders_for_staff_only(world):
    case = dispatched(world)
    client = APIClient()
    client.force_login(world.users[R.DISPATCHER])
    r = client.get(f"/dispatch/cases/{case.code}/print/")
    html = r.content.decode()
    assert r.status_code == 200 and case.code in html and "<svg" in html and "派遣" in html
    client.force_login(world.users[R.RESIDENT])
    assert client.get(f"/dispatch/cases/{case.code}/print/").status_code == 403


def test_component_link_routes_an_existing_case(world):
    maintainer = Department.objects.create(code="LD", name="路灯养护所")
    lon, lat = world.centre()
    Component.objects.create(
        code="0101310115002",
        major_class=Component.MajorClass.PUBLIC_FACILITIES,
        location=Point(lon, lat, srid=4326),
        cell=world.cells[4],
        maintainer=maintainer,
    )
    case = filed(world)
    dispatcher = world.users[R.DISPATCHER]
    with pytest.raises(RoleNotAllowed):
        services.case_component_link(case_id=case.pk, actor=world.users[R.INSPECTOR], component="0101310115002")
    with pytest.raises(InvalidInput) as e:
        services.case_component_link(case_id=case.pk, actor=dispatcher, component="NOPE")
    assert e.value.field == "component"
    case = services.case_component_link(case_id=case.pk, actor=dispatcher, component="0101310115002")
    assert (case.status, case.department_id) == (S.FILED, maintainer.pk)
    event = case.events.get(type=E.COMPONENT_LINKED)
    assert event.data == {"component": "0101310115002", "department": "LD", "previous_component": None}
    services.case_dispatch(case_id=case.pk, actor=dispatcher, team_id=world.team.pk)
    with pytest.raises(TransitionNotAllowed):  # 409: dispatched, the team holds it now
        services.case_component_link(case_id=case.pk, actor=dispatcher, component="0101310115002")
    evidence = case.events.get(type=E.DISPATCHED).data["evidence"]
    assert (evidence["component"], evidence["team_department"]) == ("0101310115002", False)
