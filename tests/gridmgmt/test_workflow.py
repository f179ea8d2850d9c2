"""The case workflow as a state machine: every transition for every role (allowed and refused), the full
flow with one event per step, branches, and two people acting on one case at once."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.http import Http404

from geo.models import Component
from gridmgmt import rules, services
from gridmgmt.errors import DomainError, InvalidInput, OutsideServiceArea, RoleNotAllowed, TransitionNotAllowed
from gridmgmt.models import Case, CaseEvent, CasePhoto, Category, User
from tests.factories import CaseEventFactory, CaseFactory, CategoryFactory
from tests.world import jpeg, world_build

S, E, R = Case.Status, CaseEvent.Type, User.Role
TZ = ZoneInfo("Asia/Shanghai")
ROLES = [R.RESIDENT, R.PATROL, R.DISPATCHER, R.INSPECTOR, R.SHIFT_LEADER, R.WALL, R.ADMIN]


@pytest.fixture
def world(db):
    return world_build()


def report(world, **kw) -> Case:
    lon, lat = world.centre()
    args = dict(source=Case.Source.PATROL, category_code=world.category.code, lon=lon, lat=lat, photos=[jpeg()])
    args.update(kw)
    case, created = services.case_report(**args)
    assert created
    return case


# --- intake --------------------------------------------------------------------------------------------


def test_report_locates_stores_ids_and_defaults(world):
    case = report(world, reporter=world.users[R.PATROL], description="人行道堆放建筑垃圾")
    cell = world.cells[4]
    assert (case.cell_id, case.district_id, case.status) == (cell.id, world.district.id, S.REPORTED)
    assert case.department == world.category.default_department
    assert case.urgency == Case.Urgency.NORMAL
    assert len(case.code) == 15 and case.code.isdigit()
    assert case.photos.get().kind == CasePhoto.Kind.BEFORE
    event = case.events.get()
    assert (event.type, event.to_status, event.district_id_copy) == (E.REPORTED, S.REPORTED, world.district.id)
    assert list(event.photos.all()) == list(case.photos.all())


def test_point_on_shared_edge_goes_to_one_cell_deterministically(world):
    a, b = world.cells[0], world.cells[1]  # neighbours in row 0
    shared = a.geom.intersection(b.geom)
    lon, lat = shared.centroid.x, shared.centroid.y
    cells = {report(world, lon=lon, lat=lat).cell_id for _ in range(3)}
    assert len(cells) == 1 and cells <= {a.id, b.id}


def test_idempotent_report_returns_first_case(world):
    lon, lat = world.centre()
    kw = dict(source=Case.Source.RESIDENT, category_code="E0404", lon=lon, lat=lat, idempotency_key="k-1")
    first, created = services.case_report(**kw)
    again, created_again = services.case_report(**kw)
    assert created and not created_again and first.pk == again.pk
    assert Case.objects.count() == 1 and CaseEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("kw", "error", "field"),
    [
        (dict(lon=120.0, lat=30.0), OutsideServiceArea, "location"),  # Hangzhou Bay: not ours
        (dict(lon=None, lat=None), InvalidInput, "location"),
        (dict(lon="abc", lat="31.2"), InvalidInput, "location"),
        (dict(lon=181, lat=31.2), InvalidInput, "location"),
        (dict(lon=121.5, lat=-91), InvalidInput, "location"),
        (dict(lon=float("nan"), lat=31.2), InvalidInput, "location"),
        (dict(category_code="X9999"), InvalidInput, "category"),
        (dict(category_code="E04"), InvalidInput, "category"),  # a major class is not reportable
        (dict(source="fax"), InvalidInput, "source"),
        (dict(urgency="whenever"), InvalidInput, "urgency"),
        (
            dict(photos=[jpeg(), SimpleUploadedFile("x.jpg", b"not an image", content_type="image/jpeg")]),
            InvalidInput,
            "photos",
        ),
    ],
)
def test_bad_reports_are_refused_and_write_nothing(world, kw, error, field):
    with pytest.raises(error) as exc:
        report(world, **kw)
    assert exc.value.field == field and str(exc.value.message)
    assert Case.objects.count() == 0 and CaseEvent.objects.count() == 0 and CasePhoto.objects.count() == 0


def test_outside_message_is_translated(world):
    from django.utils import translation

    with translation.override("zh-hans"), pytest.raises(OutsideServiceArea) as zh:
        report(world, lon=120.0, lat=30.0)
    assert "不在服务范围" in str(zh.value.message)


# --- the full flow -------------------------------------------------------------------------------------


def test_full_flow_one_event_per_step(world):
    u = world.users
    case = report(world, source=Case.Source.RESIDENT, reporter=u[R.RESIDENT])
    steps = [
        (lambda: services.case_file(case_id=case.pk, actor=u[R.DISPATCHER]), S.FILED),
        (lambda: services.case_dispatch(case_id=case.pk, actor=u[R.DISPATCHER], team_id=world.team.pk), S.DISPATCHED),
        (lambda: services.case_accept(case_id=case.pk, actor=u[R.PATROL]), S.HANDLING),
        (lambda: services.case_handle(case_id=case.pk, actor=u[R.PATROL], photos=[jpeg()]), S.HANDLED),
        (lambda: services.case_check(case_id=case.pk, actor=u[R.INSPECTOR], passed=False, note="未清理"), S.HANDLING),
        (lambda: services.case_handle(case_id=case.pk, actor=u[R.PATROL], photos=[jpeg()]), S.HANDLED),
        (lambda: services.case_check(case_id=case.pk, actor=u[R.INSPECTOR], passed=True), S.CHECKED),
        (lambda: services.case_close(case_id=case.pk, actor=u[R.SHIFT_LEADER]), S.CLOSED),
        (lambda: services.case_rate(case_id=case.pk, actor=u[R.RESIDENT], satisfaction=5), S.CLOSED),
        (lambda: services.case_archive(case_id=case.pk, actor=u[R.SHIFT_LEADER]), S.ARCHIVED),
    ]  # fmt: skip
    for i, (step, expected) in enumerate(steps, start=2):
        assert step().status == expected
        assert case.events.count() == i
    events = list(case.events.values_list("type", "from_status", "to_status"))
    assert [e[0] for e in events] == [
        E.REPORTED, E.FILED, E.DISPATCHED, E.ACCEPTED, E.HANDLED, E.CHECK_FAILED, E.HANDLED, E.CHECK_PASSED,
        E.CLOSED, E.RATED, E.ARCHIVED,
    ]  # fmt: skip
    # The timeline chains: each step starts where the previous one ended.
    assert all(prev[2] == nxt[1] for prev, nxt in pairwise(events))
    case.refresh_from_db()
    assert (case.rework_count, case.satisfaction, case.version) == (1, 5, 10)
    assert case.photos.filter(kind=CasePhoto.Kind.AFTER).count() == 2


# --- every transition × every role --------------------------------------------------------------------


def _case_in(world, status: str, **kw) -> Case:
    now = datetime.now(TZ)
    fields = dict(
        cell=world.cells[4],
        district=world.district,
        category=world.category,
        status=status,
        team=world.team,
        reporter=world.users[R.RESIDENT],
        deadline_at=now + timedelta(hours=4),
        due_at=now + timedelta(days=1),
    )
    fields.update(kw)
    case = CaseFactory(**fields)
    CaseEventFactory(case=case, type=E.REPORTED, to_status=S.REPORTED)
    if kw.get("urges_open"):
        CaseEventFactory(case=case, type=E.URGED, from_status=status, to_status=status, data={"party": "team"})
    if status == S.PARKED:
        CaseEventFactory(case=case, type=E.PARKED, from_status=S.HANDLING, to_status=S.PARKED)
        Case.objects.filter(pk=case.pk).update(parked_at=now)
    return case


def _calls(world, into: Case | None = None):
    team, other = world.team.pk, world.other_team.pk
    return {
        "file": lambda c, a: services.case_file(case_id=c.pk, actor=a),
        "void": lambda c, a: services.case_void(case_id=c.pk, actor=a, reason="现场无此问题"),
        "dispatch": lambda c, a: services.case_dispatch(case_id=c.pk, actor=a, team_id=team),
        "accept": lambda c, a: services.case_accept(case_id=c.pk, actor=a),
        "send_back": lambda c, a: services.case_send_back(case_id=c.pk, actor=a, reason="不属于本队"),
        "arbitrate": lambda c, a: services.case_arbitrate(case_id=c.pk, actor=a, team_id=team, note="网格归属甲队"),
        "handle": lambda c, a: services.case_handle(case_id=c.pk, actor=a, photos=[jpeg()]),
        "self_handle": lambda c, a: services.case_self_handle(case_id=c.pk, actor=a, photos=[jpeg()]),
        "check_pass": lambda c, a: services.case_check(case_id=c.pk, actor=a, passed=True),
        "check_fail": lambda c, a: services.case_check(case_id=c.pk, actor=a, passed=False, note="未整改到位"),
        "close": lambda c, a: services.case_close(case_id=c.pk, actor=a),
        "rate": lambda c, a: services.case_rate(case_id=c.pk, actor=a, satisfaction=4),
        "reopen": lambda c, a: services.case_reopen(case_id=c.pk, actor=a, reason="问题仍在"),
        "archive": lambda c, a: services.case_archive(case_id=c.pk, actor=a),
        "extension_request": lambda c, a: services.case_extension_request(case_id=c.pk, actor=a, hours=4, reason="需"),
        "extension_approve": lambda c, a: services.case_extension_decide(case_id=c.pk, actor=a, approve=True),
        "extension_reject": lambda c, a: services.case_extension_decide(case_id=c.pk, actor=a, approve=False),
        "park": lambda c, a: services.case_park(case_id=c.pk, actor=a, reason="需多部门协调"),
        "resume": lambda c, a: services.case_resume(case_id=c.pk, actor=a),
        "merge": lambda c, a: services.case_merge(case_id=c.pk, actor=a, into_id=into.pk),
        "publish": lambda c, a: services.case_publish(case_id=c.pk, actor=a),
        "urge": lambda c, a: services.case_urge(case_id=c.pk, actor=a, note="请今天处理完"),
        "urge_answer": lambda c, a: services.case_urge_answer(case_id=c.pk, actor=a, note="已安排", rule="urge_answer"),
        "urge_answer_team": lambda c, a: services.case_urge_answer(
            case_id=c.pk, actor=a, note="已安排", rule="urge_answer_team"
        ),
        "reassign": lambda c, a: services.case_reassign(case_id=c.pk, actor=a, team_id=other, reason="人手不足"),
        "recall": lambda c, a: services.case_recall(case_id=c.pk, actor=a, reason="派错"),
        "component_link": lambda c, a: services.case_component_link(case_id=c.pk, actor=a, component=_component(world)),
        "reclassify": lambda c, a: services.case_reclassify(case_id=c.pk, actor=a, category=_other(world), reason="改"),
    }  # fmt: skip


def _component(world) -> str:
    """The code of a component in the world's centre cell (to link a case to)."""
    if not Component.objects.filter(code="0101000001").exists():
        cell = world.cells[4]
        Component.objects.create(code="0101000001", major_class="01", location=cell.center, cell=cell)
    return "0101000001"


def _other(world) -> str:
    """The code of a second category of the world's major class (to reclassify into)."""
    if not Category.objects.filter(code="E0405").exists():
        CategoryFactory(code="E0405", name="占道经营", parent=world.category.parent)
    return "E0405"


def _extra(action: str) -> dict:
    return {
        "extension_approve": {"extension_pending": True},
        "extension_reject": {"extension_pending": True},
        "publish": {"source": Case.Source.HOTLINE},  # residents' own reports are public already
        "urge_answer": {"urges_open": 1},
        "urge_answer_team": {"urges_open": 1},  # an urge awaits its answer (_case_in writes the URGED event)
    }.get(action, {})


def _snapshot(case: Case):
    case.refresh_from_db()
    return case.status, case.version, case.team_id, case.events.count(), CaseEvent.objects.count()


# Who may do what — written out, not read from gridmgmt.rules, so changing a rule must change this table.
# Columns: resident, patrol, dispatcher, inspector, shift leader, wall, admin.
ALLOWED = {
    "file": "..D.L.A",
    "void": "..D.L.A",
    "merge": "..D.L.A",
    "dispatch": "..D.L.A",
    "arbitrate": "....L.A",
    "accept": ".P.....",
    "send_back": ".P.....",
    "handle": ".P.....",
    "extension_request": ".P.....",
    "self_handle": ".P.....",
    "check_pass": "...I..A",
    "check_fail": "...I..A",
    "close": "....L.A",
    "rate": "R.D.L.A",
    "reopen": "R...L.A",
    "archive": "....L.A",
    "extension_approve": "....L.A",
    "extension_reject": "....L.A",
    "publish": "..D.L.A",
    "park": "....L.A",
    "resume": "....L.A",
    "urge": "....L.A",
    "urge_answer": "..D....",
    "urge_answer_team": ".P.....",
    "reassign": "..D.L.A",
    "recall": "..D.L.A",
    "reclassify": "..D.L.A",
    "component_link": "..D.L.A",
}
MATRIX = [(action, role, row[i] != ".") for action, row in ALLOWED.items() for i, role in enumerate(ROLES)]


def test_matrix_covers_every_rule():
    assert set(ALLOWED) == set(rules.RULES) == set(rules.BUTTONS)


@pytest.mark.parametrize(("action", "role", "allowed"), MATRIX)
def test_transition_by_role(world, action, role, allowed):
    rule = rules.RULES[action]
    status = sorted(rule.sources)[0]
    case = _case_in(world, status, **_extra(action))
    actor = world.users[role]
    into = _case_in(world, S.FILED) if action == "merge" else None
    before = _snapshot(case)
    call = _calls(world, into)[action]
    listed = {a["name"] for a in rules.case_actions_allowed(case=case, user=actor)}
    assert (action in listed) == allowed  # what the faces are offered is what the service accepts
    if allowed:
        result = call(case, actor)
        events = case.events.order_by("-id")
        assert events.first().type == rule.event
        assert case.events.count() == before[3] + 1
        assert result.version == before[1] + 1
    else:
        with pytest.raises((RoleNotAllowed, Http404)):
            call(case, actor)
        assert _snapshot(case) == before


STATE_MATRIX = [
    (action, status)
    for action, rule in rules.RULES.items()
    for status in S.values
    if status not in rule.sources and action != "merge"
]


@pytest.mark.parametrize(("action", "status"), STATE_MATRIX)
def test_transition_from_wrong_state_is_409_and_writes_nothing(world, action, status):
    rule = rules.RULES[action]
    role = sorted(rule.roles)[0] if R.ADMIN not in rule.roles else R.ADMIN
    case = _case_in(world, status, **_extra(action))
    before = _snapshot(case)
    with pytest.raises(TransitionNotAllowed) as exc:
        _calls(world)[action](case, world.users[role])
    assert exc.value.status == 409 and str(exc.value.message)
    assert _snapshot(case) == before


# --- branches ------------------------------------------------------------------------------------------


def test_void_needs_reason(world):
    case = report(world)
    with pytest.raises(InvalidInput):
        services.case_void(case_id=case.pk, actor=world.users[R.DISPATCHER], reason="  ")
    assert services.case_void(case_id=case.pk, actor=world.users[R.DISPATCHER], reason="重复").status == S.VOIDED


def test_send_backs_then_arbitration_forces_owner(world):
    u = world.users
    case = report(world)
    services.case_file(case_id=case.pk, actor=u[R.DISPATCHER])
    for _ in range(rules.MAX_SEND_BACKS):
        services.case_dispatch(case_id=case.pk, actor=u[R.DISPATCHER], team_id=world.team.pk)
        services.case_send_back(case_id=case.pk, actor=u[R.PATROL], reason="不属于本队")
    with pytest.raises(TransitionNotAllowed) as exc:
        services.case_dispatch(case_id=case.pk, actor=u[R.DISPATCHER], team_id=world.team.pk)
    assert exc.value.code == "needs_arbitration"
    with pytest.raises(RoleNotAllowed):
        services.case_arbitrate(case_id=case.pk, actor=u[R.DISPATCHER], team_id=world.team.pk, note="归甲队")
    services.case_arbitrate(case_id=case.pk, actor=u[R.SHIFT_LEADER], team_id=world.team.pk, note="网格归属甲队")
    with pytest.raises(TransitionNotAllowed):
        services.case_send_back(case_id=case.pk, actor=u[R.PATROL], reason="还是不归我们")
    assert services.case_accept(case_id=case.pk, actor=u[R.PATROL]).status == S.HANDLING


def test_only_the_dispatched_team_may_act(world):
    u = world.users
    case = report(world)
    services.case_file(case_id=case.pk, actor=u[R.DISPATCHER])
    services.case_dispatch(case_id=case.pk, actor=u[R.DISPATCHER], team_id=world.team.pk)
    with pytest.raises(Http404):  # another team's case is out of its scope
        services.case_accept(case_id=case.pk, actor=u["other_patrol"])


def test_dispatch_records_ownership_evidence(world):
    from geo.models import ResponsibilityGrid

    grid = ResponsibilityGrid.objects.create(code="RG-1", name="一号网格", district=world.district, team=world.team)
    world.cells[4].responsibility_grid = grid
    world.cells[4].save(update_fields=["responsibility_grid"])
    case = report(world)
    services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER])
    services.case_dispatch(case_id=case.pk, actor=world.users[R.DISPATCHER], team_id=world.team.pk)
    evidence = case.events.get(type=E.DISPATCHED).data["evidence"]
    assert evidence["responsibility_grid"] == "RG-1" and evidence["grid_owner"] is True
    assert evidence["cell"] == world.cells[4].code


def test_self_handle_goes_to_inspector(world):
    case = report(world, reporter=world.users[R.PATROL])
    handled = services.case_self_handle(case_id=case.pk, actor=world.users[R.PATROL], photos=[jpeg()])
    assert (handled.status, handled.team_id) == (S.HANDLED, world.team.pk)
    assert services.case_check(case_id=case.pk, actor=world.users[R.INSPECTOR], passed=True).status == S.CHECKED


def test_handle_requires_after_photo(world):
    case = _case_in(world, S.HANDLING)
    with pytest.raises(InvalidInput) as exc:
        services.case_handle(case_id=case.pk, actor=world.users[R.PATROL], photos=[])
    assert exc.value.code == "after_photo_required"
    assert case.events.count() == 1 and not CasePhoto.objects.exists()


def test_hotline_close_needs_reply(world):
    case = _case_in(world, S.CHECKED, source=Case.Source.HOTLINE)
    with pytest.raises(InvalidInput):
        services.case_close(case_id=case.pk, actor=world.users[R.SHIFT_LEADER])
    closed = services.case_close(case_id=case.pk, actor=world.users[R.SHIFT_LEADER], hotline_reply="已清理完毕")
    assert closed.hotline_reply == "已清理完毕" and closed.replied_at is not None


def test_rating_once_and_in_range(world):
    case = _case_in(world, S.CLOSED)
    for bad in (0, 6, "x"):
        with pytest.raises(InvalidInput):
            services.case_rate(case_id=case.pk, actor=world.users[R.RESIDENT], satisfaction=bad)
    services.case_rate(case_id=case.pk, actor=world.users[R.RESIDENT], satisfaction=3)
    with pytest.raises(TransitionNotAllowed):
        services.case_rate(case_id=case.pk, actor=world.users[R.RESIDENT], satisfaction=5)


@time_machine.travel(datetime(2026, 11, 24, 10, 0, tzinfo=TZ), tick=False)
def test_accept_starts_handling_clock_on_working_calendar(world):
    case = _case_in(world, S.DISPATCHED)
    accepted = services.case_accept(case_id=case.pk, actor=world.users[R.PATROL])
    # 4 working hours from Tuesday 10:00 with the 12–13 lunch break: 15:00; yellow at 75% = 3 h → 14:00.
    assert accepted.deadline_at == datetime(2026, 11, 24, 15, 0, tzinfo=TZ)
    assert accepted.warn_at == datetime(2026, 11, 24, 14, 0, tzinfo=TZ)


def test_extension_approved_moves_deadline(world):
    with time_machine.travel(datetime(2026, 11, 24, 10, 0, tzinfo=TZ), tick=False):
        case = _case_in(world, S.DISPATCHED)
        services.case_accept(case_id=case.pk, actor=world.users[R.PATROL])
        services.case_extension_request(case_id=case.pk, actor=world.users[R.PATROL], hours=4, reason="需调机械")
        with pytest.raises(TransitionNotAllowed):
            services.case_extension_request(case_id=case.pk, actor=world.users[R.PATROL], hours=2, reason="再延")
        decided = services.case_extension_decide(case_id=case.pk, actor=world.users[R.SHIFT_LEADER], approve=True)
    # 15:00 + 4 working hours = 18:00 + 1 h next morning.
    assert decided.deadline_at == datetime(2026, 11, 25, 10, 0, tzinfo=TZ)
    assert not decided.extension_pending


def test_park_and_resume_pause_the_clock(world):
    with time_machine.travel(datetime(2026, 11, 24, 10, 0, tzinfo=TZ), tick=False):
        case = _case_in(world, S.DISPATCHED)
        services.case_accept(case_id=case.pk, actor=world.users[R.PATROL])
        services.case_park(case_id=case.pk, actor=world.users[R.SHIFT_LEADER], reason="需产权单位确认")
    with time_machine.travel(datetime(2026, 11, 24, 12, 30, tzinfo=TZ), tick=False):
        resumed = services.case_resume(case_id=case.pk, actor=world.users[R.SHIFT_LEADER])
    assert resumed.status == S.HANDLING
    assert resumed.deadline_at == datetime(2026, 11, 24, 17, 30, tzinfo=TZ)
    assert resumed.events.order_by("-id").first().data["paused_seconds"] == 9000


def test_merge_closes_with_link_and_keeps_histories(world):
    target = report(world)
    dup = report(world)
    merged = services.case_merge(case_id=dup.pk, actor=world.users[R.DISPATCHER], into_id=target.pk)
    target.refresh_from_db()
    assert (merged.status, merged.duplicate_of_id, target.supporters) == (S.CLOSED, target.pk, 1)
    assert dup.events.count() == 2 and target.events.count() == 1
    with pytest.raises(InvalidInput):
        services.case_merge(case_id=report(world).pk, actor=world.users[R.DISPATCHER], into_id=dup.pk)


def test_support_adds_one_event(world):
    case = report(world)
    services.case_support(case_id=case.pk, actor=None)
    case.refresh_from_db()
    assert case.supporters == 1 and case.events.filter(type=E.SUPPORTED).count() == 1


def test_stale_version_refused(world):
    case = _case_in(world, S.FILED)
    with pytest.raises(TransitionNotAllowed) as exc:
        services.case_dispatch(
            case_id=case.pk, actor=world.users[R.DISPATCHER], team_id=world.team.pk, expected_version=case.version + 7
        )
    assert exc.value.code == "stale"


# --- concurrency ----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_one_wins():
    world = world_build()
    second = User.objects.create_user("dispatcher2", password="x", role=R.DISPATCHER)
    case = report(world)
    services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER])
    barrier = threading.Barrier(2)
    outcomes: list = []

    def act(actor, team):
        try:
            barrier.wait(timeout=10)
            services.case_dispatch(case_id=case.pk, actor=actor, team_id=team.pk)
            outcomes.append("ok")
        except DomainError as exc:
            outcomes.append(exc.status)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=act, args=(world.users[R.DISPATCHER], world.team)),
        threading.Thread(target=act, args=(second, world.other_team)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes, key=str) == [409, "ok"]
    assert case.events.filter(type=E.DISPATCHED).count() == 1


def test_auto_dispatch_is_off_by_default_and_dispatches_top_team_when_on(world):
    from django.contrib.gis.geos import Point

    lon, lat = world.centre()
    world.team.last_position = Point(lon + 0.01, lat, srid=4326)
    world.other_team.last_position = Point(lon + 0.0005, lat, srid=4326)  # ~50 m away: ranked first
    world.team.save(update_fields=["last_position"])
    world.other_team.save(update_fields=["last_position"])
    case = report(world)
    assert services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER]).status == S.FILED

    world.category.auto_dispatch = True
    world.category.save(update_fields=["auto_dispatch"])
    auto = report(world)
    filed = services.case_file(case_id=auto.pk, actor=world.users[R.DISPATCHER])
    assert (filed.status, filed.team_id) == (S.DISPATCHED, world.other_team.pk)
    assert list(auto.events.values_list("type", flat=True)) == [E.REPORTED, E.FILED, E.DISPATCHED]
    assert auto.events.get(type=E.DISPATCHED).data["evidence"]["team"] == world.other_team.code
