"""Demo data generation on a tiny synthetic district (20 × 20 cells, 2 streets, 4 communities, 16 grids)."""

import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from io import StringIO
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Count
from django.test import override_settings

from geo.models import AdminArea, Camera, Component, GridCell, ResponsibilityGrid
from gridmgmt import demo
from gridmgmt.access import FIELD_ROLES
from gridmgmt.escalation import cases_escalate
from gridmgmt.models import Case, CaseEvent, CasePhoto, Category, PatrolTeam, User
from gridmgmt.rules import statuses_actionable
from gridmgmt.workcalendar import limit_add
from realtime.models import FeedEvent
from tests.geodata import make_square_district

pytestmark = pytest.mark.django_db

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2024, 6, 14, 15, 30, tzinfo=TZ)  # a Friday afternoon
SCALE = demo.DemoScale(cameras=40, components=60, teams=5, cases=600, days=30)
X0, Y0, N = 356_000, 3_452_000, 20  # UTM 51N, near Lujiazui; N × N cells of 100 m
DISTRICT = "319901"
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _square(x0: float, y0: float, x1: float, y1: float) -> MultiPolygon:
    poly = Polygon(((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)), srid=32651)
    poly.transform(4326)
    return MultiPolygon(poly, srid=4326)


def _area(code: str, name: str, level: str, parent, box) -> AdminArea:
    return AdminArea.objects.create(
        code=code, name=name, level=level, parent=parent, boundary=_square(*box), area_m2=0, is_synthetic=True
    )


def _build_tiny_district() -> AdminArea:
    """West/east streets, a community per quadrant, 5 × 5-cell responsibility grids, no team yet."""
    size = N * 100
    half = size // 2
    district = _area(DISTRICT, "测试区", "district", None, (X0, Y0, X0 + size, Y0 + size))
    streets = [
        _area(f"{DISTRICT}001", "东测试街道", "street", district, (X0, Y0, X0 + half, Y0 + size)),
        _area(f"{DISTRICT}002", "西测试镇", "street", district, (X0 + half, Y0, X0 + size, Y0 + size)),
    ]
    communities = {}
    for sx in range(2):
        for sy in range(2):
            box = (X0 + sx * half, Y0 + sy * half, X0 + (sx + 1) * half, Y0 + (sy + 1) * half)
            communities[sx, sy] = _area(
                f"{streets[sx].code}{sy + 1:03d}", f"社区{sx}{sy}", "community", streets[sx], box
            )
    grids = {}
    for gx in range(N // 5):
        for gy in range(N // 5):
            c = communities[gx * 5 // (N // 2), gy * 5 // (N // 2)]
            grids[gx, gy] = ResponsibilityGrid.objects.create(
                code=f"{DISTRICT}-RG-{gx}{gy}",
                name=f"责任网格{gx}{gy}",
                district=district,
                street=c.parent,
                community=c,
            )
    cells = []
    for col in range(N):
        for row in range(N):
            x0, y0 = X0 + col * 100, Y0 + size - (row + 1) * 100
            geom = _square(x0, y0, x0 + 100, y0 + 100)
            c = communities[col // (N // 2), (N - 1 - row) // (N // 2)]
            cells.append(
                GridCell(
                    code=f"{DISTRICT}{row:03d}{col:03d}", geom=geom, center=geom.point_on_surface, area_m2=10_000,
                    row=row, col=col, district=district, street=c.parent, community=c,
                    responsibility_grid=grids[col // 5, (N - 1 - row) // 5],
                )
            )  # fmt: skip
    GridCell.objects.bulk_create(cells)
    call_command("loaddata", "departments", "categories", "workcalendar", verbosity=0)
    return district


def _counts() -> dict[str, int]:
    models = (Camera, Component, PatrolTeam, User, Case, CaseEvent, CasePhoto, Category, ResponsibilityGrid)
    counts = {m.__name__: m.objects.count() for m in models}
    counts["skills"] = PatrolTeam.skills.through.objects.count()
    counts["event_photos"] = CaseEvent.photos.through.objects.count()
    counts["teamed_grids"] = ResponsibilityGrid.objects.filter(team__isnull=False).count()
    return counts


@pytest.fixture(scope="module")
def _module_data(django_db_setup, django_db_blocker, tmp_path_factory):
    """Generate once per module inside a transaction that is rolled back at the end.

    Each test's own `db` transaction nests in it as a savepoint, so tests still cannot leak into each other.
    """
    media = tmp_path_factory.mktemp("demo_media")
    with (
        django_db_blocker.unblock(),
        override_settings(MEDIA_ROOT=media, PASSWORD_HASHERS=FAST_HASHERS),
        transaction.atomic(),
    ):
        district = _build_tiny_district()
        steps = demo.generate_demo_data(district_code=DISTRICT, seed=7, scale=SCALE, now=NOW, out=lambda _: None)
        yield district, steps, media
        transaction.set_rollback(True)


@pytest.fixture
def tiny_district(_module_data, db) -> AdminArea:
    return _module_data[0]


@pytest.fixture
def generated(_module_data, db) -> list[demo.StepResult]:
    return _module_data[1]


@pytest.fixture
def media(_module_data) -> Path:
    return _module_data[2]


def _scalar(sql: str) -> int:
    with connection.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


def test_requested_counts(generated, tiny_district, media):
    assert {s.name: s.created for s in generated if s.name != "patrol login"} == {
        "photos": 30, "cameras": SCALE.cameras, "components": SCALE.components, "teams": SCALE.teams,
        "users": len(demo.DEMO_USERS), "cases": SCALE.cases, "speakers": min(SCALE.speakers, SCALE.cameras),
        "trackers": User.objects.filter(role=User.Role.PATROL).count(),
        "tracks": _scalar("SELECT count(*) FROM realtime_position"),
    }  # fmt: skip
    assert Camera.objects.filter(code__startswith=f"{DISTRICT}-CAM-").count() == SCALE.cameras
    assert Component.objects.count() == SCALE.components
    assert PatrolTeam.objects.count() == SCALE.teams
    assert Case.objects.count() == SCALE.cases
    assert len(list((media / demo.PHOTO_DIR).glob("*.jpg"))) == 30


def test_every_patrol_member_has_a_demo_tracker(generated):
    from realtime.models import Device

    patrol = User.objects.filter(role=User.Role.PATROL)
    trackers = Device.objects.filter(kind=Device.Kind.TRACKER, active=True)
    assert dict(trackers.values_list("identifier", "user_id")) == {f"demo-{u.username}": u.id for u in patrol}
    assert trackers.get(identifier="demo-patrol").user.username == "patrol"


def test_the_patrol_login_opens_on_a_team_with_tasks(generated):
    # A demo whose patrol phone shows an empty list teaches nothing: the login joins the busiest team.
    tasks = Case.objects.filter(status__in=statuses_actionable(roles=FIELD_ROLES)).exclude(team=None)
    busiest = tasks.values("team").annotate(n=Count("pk")).order_by("-n").first()
    login = User.objects.get(username="patrol")
    assert tasks.filter(team=login.team_id).count() >= min(3, busiest["n"])
    assert login.department_id == login.team.department_id


def test_points_lie_in_their_cells(generated):
    for table, col in (("geo_camera", "location"), ("geo_component", "location"), ("gridmgmt_case", "point")):
        outside = _scalar(
            f"SELECT count(*) FROM {table} t JOIN geo_gridcell c ON c.id = t.cell_id "
            f"WHERE NOT ST_Intersects(c.geom, t.{col})"
        )
        assert outside == 0, table
    assert Camera.objects.filter(cell__isnull=True).count() == 0


def test_cases_carry_their_cell_scope(generated, tiny_district):
    mismatched = _scalar(
        "SELECT count(*) FROM gridmgmt_case k JOIN geo_gridcell c ON c.id = k.cell_id "
        "WHERE k.community_id IS DISTINCT FROM c.community_id OR k.street_id IS DISTINCT FROM c.street_id "
        "OR k.district_id <> c.district_id OR k.responsibility_grid_id IS DISTINCT FROM c.responsibility_grid_id"
    )
    assert mismatched == 0
    codes = list(Case.objects.values_list("code", flat=True))
    assert len(set(codes)) == len(codes)


def test_case_codes_are_the_products(generated):
    """The product's format (services.intake.case_code: report day + a 7-digit serial from
    gridmgmt_case_code_seq), with serials in report order and the sequence moved past them."""
    cases = list(Case.objects.order_by("reported_at", "id").values_list("code", "reported_at"))
    for code, reported_at in cases:
        assert re.fullmatch(r"20\d{6}\d{7}", code), code
        assert code[:8] == f"{reported_at.astimezone(TZ):%Y%m%d}", code
    serials = [int(code[8:]) for code, _ in cases]
    assert serials == sorted(serials)
    assert _scalar("SELECT last_value FROM gridmgmt_case_code_seq") >= max(serials)


def test_teams_own_contiguous_grids_and_have_members(generated, tiny_district):
    assert not ResponsibilityGrid.objects.filter(team__isnull=True).exists()
    for team in PatrolTeam.objects.all():
        grids = list(ResponsibilityGrid.objects.filter(team=team))
        assert grids and all(g.street_id == team.street_id for g in grids)
        assert team.name.startswith(team.street.name) and "巡查队" in team.name
        members = User.objects.filter(team=team, role=User.Role.PATROL).exclude(username="patrol")
        assert 3 <= members.count() <= 5
        assert team.skills.count() >= 3
        # Last position inside one of its own grids' cells.
        inside = _scalar(
            f"SELECT count(*) FROM geo_gridcell c JOIN gridmgmt_patrolteam t ON t.id = {team.pk} "
            f"JOIN geo_responsibilitygrid g ON g.id = c.responsibility_grid_id AND g.team_id = t.id "
            f"WHERE ST_Intersects(c.geom, t.last_position::geometry)"
        )
        assert inside >= 1, team.code
        # Contiguous: the union of its grids' cells is one piece.
        parts = _scalar(
            "SELECT ST_NumGeometries(ST_Multi(ST_Union(ST_SnapToGrid(ST_Transform(c.geom, 32651), 0.01)))) "
            f"FROM geo_gridcell c JOIN geo_responsibilitygrid g ON g.id = c.responsibility_grid_id "
            f"WHERE g.team_id = {team.pk}"
        )
        assert parts == 1, team.code


def test_demo_logins(generated, tiny_district):
    users = {u.username: u for u in User.objects.filter(username__in=[d.username for d in demo.DEMO_USERS])}
    assert {u.role for u in users.values()} == set(User.Role.values)
    for u in users.values():
        assert u.check_password(demo.DEMO_PASSWORD)
        assert u.area_id == (None if u.role == User.Role.RESIDENT else tiny_district.pk)
    assert users["admin"].is_staff and users["admin"].is_superuser
    assert not users["dispatcher"].is_superuser
    assert users["patrol"].team is not None


def test_case_mix(generated):
    status = Counter(Case.objects.values_list("status", flat=True))
    finished = status["closed"] + status["archived"]
    assert finished > 0.8 * SCALE.cases
    assert status["voided"] > 0
    assert sum(v for k, v in status.items() if k not in {"closed", "archived", "voided"}) > 0
    assert status["archived"] > status["closed"]
    sources = Counter(Case.objects.values_list("source", flat=True))
    assert set(sources) == {"patrol", "inspector", "camera", "resident", "hotline", "assigned"}
    top = [c for c, _ in Counter(Case.objects.values_list("category__code", flat=True)).most_common(3)]
    assert "E0404" in top  # illegal parking dominates
    ratings = Counter(Case.objects.exclude(satisfaction=None).values_list("satisfaction", flat=True))
    assert ratings[4] + ratings[5] > 0.8 * sum(ratings.values())
    assert not Case.objects.filter(source="camera", camera__isnull=True).exists()
    assert not Case.objects.filter(status="dispatched", team__isnull=True).exists()
    assert Case.objects.filter(level__gt=0).exists()  # some breached their deadline and escalated


def test_events_replay_each_case(generated):
    cases = {c.pk: c for c in Case.objects.all()}
    events = defaultdict(list)
    for e in CaseEvent.objects.order_by("id"):
        events[e.case_id].append(e)
    assert set(events) == set(cases)
    for cid, evs in events.items():
        case = cases[cid]
        assert evs[0].type == "reported" and evs[0].from_status == "" and evs[0].to_status == "reported"
        for prev, ev in pairwise(evs):
            assert ev.from_status == prev.to_status, (case.code, prev.type, ev.type)
            assert ev.at >= prev.at, (case.code, prev.type, ev.type)
        assert evs[-1].to_status == case.status
        assert case.version == len(evs)
        assert evs[0].at == case.reported_at
        types = [e.type for e in evs]
        assert len(set(types) - {"handled", "check_failed", "escalated"}) == len(
            [t for t in types if t not in {"handled", "check_failed", "escalated"}]
        ), types  # one row per step; only rework repeats
        assert ("closed" in types or "voided" in types) == (case.closed_at is not None)  # as the workflow sets it
        assert ("rated" in types) == (case.satisfaction is not None)
        if case.status == "archived":
            assert types[-1] == "archived" and "check_passed" in types
        if case.status in {"dispatched", "handling", "handled", "checked", "closed", "archived"}:
            assert "dispatched" in types or "self_handled" in types
            assert case.team_id is not None
        if case.status in {"filed", "dispatched", "sent_back", "handling"}:  # a running stage clock
            assert case.deadline_at is not None and case.warn_at is not None
        for e in evs:
            assert e.district_id_copy == case.district_id
            assert e.street_id_copy == case.street_id
            assert e.community_id_copy == case.community_id
            assert e.team_id_copy in (None, case.team_id)
        if "dispatched" in types:  # a sent-back case has no team until it is dispatched again
            first = types.index("dispatched")
            assert all(e.team_id_copy == case.team_id for e in evs[first:] if e.type != "sent_back")


def test_event_ids_follow_time(generated):
    times = list(CaseEvent.objects.order_by("id").values_list("at", flat=True))
    assert times == sorted(times)


def test_photos_before_and_after(generated, media):
    for case in Case.objects.prefetch_related("photos", "events__photos"):
        kinds = Counter(p.kind for p in case.photos.all())
        handled = sum(1 for e in case.events.all() if e.type in {"handled", "self_handled"})
        assert kinds["before"] == 1 and kinds["after"] == handled, case.code
        for e in case.events.all():
            linked = [p.kind for p in e.photos.all()]
            expected = (
                ["before"] if e.type == "reported" else ["after"] if e.type in {"handled", "self_handled"} else []
            )
            assert linked == expected
    name = CasePhoto.objects.first().image.name
    assert (media / name).is_file()


def test_second_run_adds_no_rows(generated, tiny_district, media, settings):
    settings.MEDIA_ROOT = media
    before = _counts()
    steps = demo.generate_demo_data(district_code=DISTRICT, seed=7, scale=SCALE, now=NOW, out=lambda _: None)
    assert all(s.skipped for s in steps)
    assert demo.load_taxonomy().skipped
    assert _counts() == before


def test_demo_load_command_skips_when_done(generated, media, settings):
    settings.MEDIA_ROOT = media
    out = StringIO()
    call_command("demo_load", "--district", DISTRICT, "--skip-geography", stdout=out)
    text = out.getvalue()
    assert "skipped" in text and "created" not in text and "demo data ready" in text


def test_demo_deadlines_are_limit_adds(generated):
    """Every deadline in the demo is the working calendar's (gridmgmt.workcalendar.limit_add): the handling
    deadline from acceptance, the resident-facing promise from the dispatch deadline."""
    sample = (
        Case.objects.filter(status="handling", accepted_at__isnull=False, extension_pending=False)
        .exclude(events__type__in=["resumed", "extension_approved"])
        .select_related("category")[:40]
    )
    assert len(sample) >= 5
    for case in sample:
        c = case.category
        amount, unit = (
            (c.limit_urgent, c.urgent_limit_unit) if case.urgency == "urgent" else (c.limit_normal, c.limit_unit)
        )
        assert case.deadline_at == limit_add(start=case.accepted_at, amount=amount, unit=unit), case.code
        assert case.warn_at == limit_add(start=case.accepted_at, amount=amount * 0.75, unit=unit), case.code
        assert case.due_at == limit_add(start=case.dispatch_deadline_at, amount=amount, unit=unit), case.code
    # The calendar, not "9–17 on weekdays": New Year 2026 (Thu 1 – Sat 3 Jan) is off, Sun 4 Jan is worked (调休),
    # and the working periods are settings.WORK_PERIODS (09–12, 13–18).
    eve = datetime(2025, 12, 31, 17, 0, tzinfo=TZ)
    assert limit_add(start=eve, amount=2, unit="working_hours") == datetime(2026, 1, 4, 10, 0, tzinfo=TZ)


def test_every_demo_event_has_one_feed_row(generated):
    """The events are written by gridmgmt.events.events_write: one feed row each, with its envelope."""
    assert FeedEvent.objects.filter(case_event_id__isnull=False).count() == CaseEvent.objects.count()
    without_one = (
        "SELECT count(*) FROM gridmgmt_caseevent e "
        "WHERE (SELECT count(*) FROM realtime_feedevent f WHERE f.case_event_id = e.id) <> 1"
    )
    assert _scalar(without_one) == 0
    row = FeedEvent.objects.filter(type="case.created").order_by("seq").first()
    case = CaseEvent.objects.select_related("case").get(pk=row.case_event_id).case
    assert row.data["code"] == case.code and row.data["event"] == "reported" and row.data["case_id"] == case.pk
    seqs = list(
        FeedEvent.objects.filter(case_event_id__isnull=False).order_by("case_event_id").values_list("seq", flat=True)
    )
    assert seqs == sorted(seqs)  # the feed replays history in time order


def test_escalation_levels_are_the_rules(generated):
    """Levels come from gridmgmt.escalation: running it again at the demo's `now` raises nothing, and each
    case's level equals its ESCALATED events."""
    assert cases_escalate(now=NOW).count == 0
    escalations = Counter(CaseEvent.objects.filter(type="escalated").values_list("case_id", flat=True))
    for case_id, level in Case.objects.values_list("id", "level"):
        assert escalations.get(case_id, 0) == level
    assert Case.objects.filter(level__gt=0).exists()


def test_demo_banner_lists_faces_and_logins():
    out = StringIO()
    call_command("demo_banner", "--host", "0.0.0.0", "--port", "8123", stdout=out)
    text = out.getvalue()
    for path in ("/map/", "/wall/", "/dispatch/", "/patrol/", "/report/", "/admin/", "/api/schema/"):
        assert f"http://127.0.0.1:8123{path}" in text
    for u in demo.DEMO_USERS:
        assert u.username in text
    assert demo.DEMO_PASSWORD in text and "指挥中心大屏" in text
    assert "http://127.0.0.1:8123/track/osmand" in text and "demo-patrol" in text


def _fingerprint() -> list[tuple]:
    with connection.cursor() as cur:
        cur.execute(
            # Not the code: its serial comes from the product's sequence, which a rolled-back run still advances.
            "SELECT k.idempotency_key, k.category_id, k.source, k.status, k.urgency, ST_AsText(k.point), "
            "k.reported_at, k.deadline_at, k.due_at, k.team_id, k.satisfaction, k.level, "
            "(SELECT string_agg(e.type || '@' || e.at::text, ',' ORDER BY e.id) FROM gridmgmt_caseevent e "
            " WHERE e.case_id = k.id) "
            "FROM gridmgmt_case k ORDER BY k.idempotency_key"
        )
        return cur.fetchall()


def test_same_seed_same_cases(generated, tiny_district, media, settings):
    settings.MEDIA_ROOT = media
    first = _fingerprint()
    with transaction.atomic():
        with connection.cursor() as cur:
            # TRUNCATE (unlike DELETE) is allowed on the append-only history; the savepoint undoes it.
            # Pending deferred FK checks would block it, so run them first.
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cur.execute("TRUNCATE gridmgmt_case, gridmgmt_caseevent, gridmgmt_casephoto CASCADE")
            cur.execute("SET CONSTRAINTS ALL DEFERRED")
        # The same starting state: the histories were generated before the patrol login moved to the busiest team.
        first_team = PatrolTeam.objects.filter(district=tiny_district).order_by("code").first()
        User.objects.filter(username="patrol").update(team=first_team)
        demo.generate_cases(district=tiny_district, count=SCALE.cases, days=SCALE.days, seed=7, now=NOW)
        again = _fingerprint()
        transaction.set_rollback(True)
    assert again == first


def test_foreign_keys_hold(generated):
    # The module's data is rolled back, never committed: force the deferred FK checks COPY left pending.
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute("SET CONSTRAINTS ALL DEFERRED")


def test_point_in_cell_never_empty_even_for_a_sliver(db):
    """ST_GeneratePoints returns empty for some seeds on a sliver cell; the demo's point falls back onto it."""
    _district, cells = make_square_district(code="310199", n=1)
    c = cells[0]
    x0, y0, x1, _y1 = c.geom.extent
    c.geom = MultiPolygon(Polygon.from_bbox((x0, y0, x1, y0 + 1e-7)), srid=4326)  # 100 m × 1 cm
    c.save()
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT count(*) FILTER (WHERE ST_IsEmpty(ST_GeneratePoints(c.geom, 1, t.seed))),
                   count(*) FILTER (WHERE demo_point IS NULL OR NOT ST_Intersects(c.geom, demo_point))
            FROM geo_gridcell c, generate_series(1, 200) AS t(seed),
                 LATERAL (SELECT {demo.POINT_IN_CELL} AS demo_point) p
            WHERE c.id = %s
            """,
            [c.pk],
        )
        generate_empty, bad = cur.fetchone()
    assert generate_empty > 0  # the case the fallback exists for
    assert bad == 0


def test_demo_tracks_replay_and_coverage(generated, client):
    """The demo's teams walk their cells yesterday and today until NOW: a replay of a team and its 巡查覆盖率."""
    from gridmgmt import kpi

    day, yesterday = NOW.date(), NOW.date() - timedelta(days=1)
    # Every fix lies in a cell of its team's responsibility grids (a walk between neighbouring cells).
    outside = _scalar(
        """SELECT count(*) FROM realtime_position p WHERE NOT EXISTS (
               SELECT 1 FROM geo_gridcell c JOIN geo_responsibilitygrid rg ON rg.id = c.responsibility_grid_id
               WHERE rg.team_id = p.team_id AND ST_Covers(c.geom, p.point))"""
    )
    assert outside <= _scalar("SELECT count(*) FROM realtime_position") // 100
    teams = list(PatrolTeam.objects.order_by("code").values_list("pk", flat=True))
    rows = kpi.coverage_compute(team_ids=teams, first=yesterday, last=day)
    assert [(r.day, r.cells_covered > 0) for r in rows] == [(yesterday, True)] * 5 + [(day, True)] * 5
    assert all(0 < r.coverage <= 1 for r in rows)
    assert all(a.cells_covered >= b.cells_covered for a, b in zip(rows[:5], rows[5:], strict=True))  # a whole day
    # The replay of the patrol login's team: one track per member's tracker, in time order, on duty from 08:30.
    login = User.objects.get(username="patrol")
    client.force_login(User.objects.get(username="dispatcher"))
    r = client.get("/api/tracks/", {"team": login.team_id, "start": f"{yesterday}T00:00:00", "end": f"{day}T00:00:00"})
    features = r.json()["features"]
    members = User.objects.filter(team_id=login.team_id, role=User.Role.PATROL)
    assert sorted(f["properties"]["username"] for f in features) == sorted(m.username for m in members)
    for f in features:
        times = f["properties"]["times"]
        assert times == sorted(times) and len(f["geometry"]["coordinates"]) == 2  # morning and afternoon
        on = datetime.fromisoformat(f["properties"]["first_at"])
        assert datetime(2024, 6, 13, 8, 30, tzinfo=TZ) <= on <= datetime(2024, 6, 13, 8, 51, tzinfo=TZ)
    r = client.get("/api/attendance/", {"team": login.team_id, "start": str(yesterday), "end": str(day)})
    assert {a["day"] for a in r.json()} == {str(yesterday), str(day)}


def test_monthly_report_renders_for_the_demos_last_month(generated, client):
    """/stats/monthly/ defaults to last month (May 2024 for the demo's NOW); page, .xlsx and /api/kpis/ agree."""
    import io

    import openpyxl
    import time_machine

    # The module's rows are uncommitted: statistics from earlier tests' rolled-back rows (autovacuum saw only
    # dead tuples) would have the planner take these tables for empty and the KPI statement for minutes.
    # ANALYZE in this transaction counts its own rows.
    with connection.cursor() as cur:
        cur.execute("ANALYZE gridmgmt_case, gridmgmt_caseevent")
    client.force_login(User.objects.get(username="shift_leader"))
    with time_machine.travel(NOW, tick=False):
        page = client.get("/stats/monthly/", HTTP_ACCEPT_LANGUAGE="zh-hans")
        xlsx = client.get("/stats/monthly/", {"format": "xlsx"})
    api = client.get("/api/kpis/", {"start": "2024-05-01", "end": "2024-05-31", "group_by": "street"}).json()
    assert page.status_code == 200
    html = page.content.decode()
    assert "2024-05 月度考评" in html
    streets = [r for r in api["results"] if r["key"] is not None]
    assert sorted(r["name"] for r in streets) == ["东测试街道", "西测试镇"]
    assert all(r["received"] > 0 for r in streets)
    for r in streets:
        assert f"<td>{r['name']}</td><td>{r['received']}</td><td>{r['filed']}</td>" in html
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames == ["街道、镇", "部门"]
    rows = {row[1]: row for row in book["街道、镇"].iter_rows(min_row=3, values_only=True)}
    for r in streets:
        assert (rows[r["name"]][2], rows[r["name"]][14]) == (r["received"], r["on_time_closure_rate"])
