"""Case-domain reads: nearby duplicates, dispatch ranking (true metres, checked against brute force), lights."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.utils import timezone

from geo.models import ResponsibilityGrid
from gridmgmt import selectors, services, states
from gridmgmt.errors import InvalidInput
from gridmgmt.models import Case, CaseEvent, PatrolTeam
from tests.factories import CaseFactory, CategoryFactory, DistrictFactory, TeamFactory
from tests.world import world_build

S, E = Case.Status, CaseEvent.Type


@pytest.fixture
def world(db):
    return world_build()


def offset(lon: float, lat: float, east_m: float, north_m: float) -> Point:
    """A point `east_m`/`north_m` metres from (lon, lat) (local flat approximation, < 0.1 % off at 2 km)."""
    dlat = north_m / 110_574.0
    dlon = east_m / (111_320.0 * math.cos(math.radians(lat)))
    return Point(lon + dlon, lat + dlat, srid=4326)


def metres(a: Point, b: Point) -> float:
    with connection.cursor() as cur:
        cur.execute("SELECT ST_Distance(%s::geography, %s::geography)", [a.ewkt, b.ewkt])
        return cur.fetchone()[0]


def explain(sql: str, params, *, analyze: str) -> str:
    with connection.cursor() as cur:
        cur.execute(f"ANALYZE {analyze}")  # planner statistics as a live database has them
        cur.execute("EXPLAIN " + sql, params)
        return "\n".join(r[0] for r in cur.fetchall())


# --- duplicates ----------------------------------------------------------------------------------------------


def open_case(world, *, east=0.0, north=0.0, category=None, hours_ago=1.0, status=S.REPORTED, **kw) -> Case:
    lon, lat = world.centre()
    return CaseFactory(
        cell=world.cells[4],
        district=world.district,
        point=offset(lon, lat, east, north),
        category=category or world.category,
        status=status,
        reported_at=timezone.now() - timedelta(hours=hours_ago),
        **kw,
    )


def test_duplicates_nearest_first_within_radius_and_window(world):
    world.category.duplicate_radius_m, world.category.duplicate_window_hours = 250, 72
    world.category.save()
    near = open_case(world, east=40)
    middle = open_case(world, north=-120, status=S.HANDLING)
    far = open_case(world, east=200, north=100)  # 224 m
    open_case(world, east=260)  # outside the radius
    open_case(world, east=10, hours_ago=73)  # outside the window
    open_case(world, east=10, status=S.CLOSED)
    open_case(world, east=10, status=S.VOIDED)
    open_case(world, east=10, category=CategoryFactory(code="E0499"))
    lon, lat = world.centre()
    found = selectors.case_duplicates_find(category_code=world.category.code, lon=lon, lat=lat)
    assert [c.pk for c in found] == [near.pk, middle.pk, far.pk]
    here = Point(lon, lat, srid=4326)
    for case in found:
        assert case.distance_m == pytest.approx(metres(here, case.point), abs=0.01)
    assert found[0].distance_m == pytest.approx(40, abs=0.5)


def test_duplicates_window_is_around_at_and_exclude_and_limit(world):
    a = open_case(world, east=5, hours_ago=100)
    b = open_case(world, east=15, hours_ago=100)
    lon, lat = world.centre()
    code = world.category.code
    assert selectors.case_duplicates_find(category_code=code, lon=lon, lat=lat) == []
    at = timezone.now() - timedelta(hours=90)
    assert [c.pk for c in selectors.case_duplicates_find(category_code=code, lon=lon, lat=lat, at=at)] == [a.pk, b.pk]
    found = selectors.case_duplicates_find(category_code=code, lon=lon, lat=lat, at=at, exclude_id=a.pk)
    assert [c.pk for c in found] == [b.pk]
    assert len(selectors.case_duplicates_find(category_code=code, lon=lon, lat=lat, at=at, limit=1)) == 1


def test_duplicates_radius_and_window_are_per_category(world):
    tight = CategoryFactory(code="E0405", duplicate_radius_m=50, duplicate_window_hours=2)
    inside = open_case(world, east=30, category=tight, hours_ago=1)
    open_case(world, east=80, category=tight, hours_ago=1)
    open_case(world, east=10, category=tight, hours_ago=3)
    lon, lat = world.centre()
    assert [c.pk for c in selectors.case_duplicates_find(category_code="E0405", lon=lon, lat=lat)] == [inside.pk]
    wide = selectors.case_duplicates_find(category_code="E0405", lon=lon, lat=lat, radius_m=1000)
    assert len(wide) == 2  # staff search with a 1 km radius


@pytest.mark.parametrize(("code", "lon", "lat"), [("NOPE", 121.5, 31.23), ("E0404", "x", 31.2), ("E0404", 200, 31)])
def test_duplicates_bad_input_is_a_clear_error(world, code, lon, lat):
    with pytest.raises(InvalidInput):
        selectors.case_duplicates_find(category_code=code, lon=lon, lat=lat)


def test_duplicates_query_uses_the_geography_index(world):
    """On a realistic spread (3,000 open cases over 8 km, all inside the time window) the planner picks the
    expression index on point::geography for the metre radius."""
    lon, lat = world.centre()
    rng = random.Random(3)
    now = timezone.now()
    proto = open_case(world)
    Case.objects.bulk_create(
        Case(
            code=f"BULK{i:05d}",
            point=offset(lon, lat, rng.uniform(-4000, 4000), rng.uniform(-4000, 4000)),
            cell=proto.cell,
            district=proto.district,
            category=proto.category,
            source=Case.Source.PATROL,
            reported_at=now - timedelta(minutes=rng.uniform(0, 600)),
        )
        for i in range(3000)
    )
    for scope, by_cell in [(None, False), (Case.objects.filter(district=proto.district), False), (None, True)]:
        query = selectors.duplicates_query(
            category=proto.category, lon=lon, lat=lat, at=now, scope=scope, by_cell=by_cell
        )
        plan = explain(*query.query.sql_with_params(), analyze="gridmgmt_case")
        assert "case_point_geog" in plan, plan
    found = selectors.case_duplicates_find(category_code=proto.category.code, lon=lon, lat=lat, at=now, limit=50)
    assert found and all(c.distance_m <= 250 for c in found)
    assert [c.distance_m for c in found] == sorted(c.distance_m for c in found)


def test_merge_closes_the_duplicate_with_a_link_and_keeps_both_histories(world):
    lon, lat = world.centre()
    kw = dict(source=Case.Source.RESIDENT, category_code=world.category.code, lon=lon, lat=lat)
    first, _ = services.case_report(**kw, description="路边堆了建筑垃圾")
    second, _ = services.case_report(**kw, description="这里有一堆垃圾")
    found = selectors.case_duplicates_find(category_code=world.category.code, lon=lon, lat=lat, exclude_id=second.pk)
    assert [c.pk for c in found] == [first.pk]
    services.case_merge(case_id=second.pk, actor=world.users["dispatcher"], into_id=first.pk, note="重复上报")
    second.refresh_from_db()
    first.refresh_from_db()
    assert (second.status, second.duplicate_of_id) == (S.CLOSED, first.pk)
    assert first.status == S.REPORTED and first.supporters == 1
    assert list(second.events.values_list("type", flat=True)) == [E.REPORTED, E.MERGED]
    assert second.events.get(type=E.MERGED).data == {"duplicate_of": first.code}
    assert list(first.events.values_list("type", flat=True)) == [E.REPORTED]
    # A closed duplicate is no longer offered as a duplicate.
    assert [c.pk for c in selectors.case_duplicates_find(category_code=world.category.code, lon=lon, lat=lat)] == [
        first.pk
    ]


# --- dispatch ranking -------------------------------------------------------------------------------------------


def place(team: PatrolTeam, point: Point) -> PatrolTeam:
    team.last_position = point
    team.save(update_fields=["last_position"])
    return team


def brute_force(case: Case) -> list[tuple[int, float]]:
    """Every eligible team of the district by spheroid metres: no index, no KNN, no candidate pool."""
    with connection.cursor() as cur:
        cur.execute(
            """SELECT id, ST_Distance(last_position, %s::geography) AS d FROM gridmgmt_patrolteam
               WHERE district_id = %s AND status <> 'off_duty' AND last_position IS NOT NULL ORDER BY d, code""",
            [case.point.ewkt, case.district_id],
        )
        return cur.fetchall()


def degree_order(case: Case) -> list[int]:
    """What `<->` on SRID 4326 geometry would rank: planar degrees."""
    with connection.cursor() as cur:
        cur.execute(
            """SELECT id FROM gridmgmt_patrolteam WHERE district_id = %s AND status <> 'off_duty'
               AND last_position IS NOT NULL ORDER BY last_position::geometry <-> %s::geometry""",
            [case.district_id, case.point.ewkt],
        )
        return [r[0] for r in cur.fetchall()]


@pytest.fixture
def trap(world):
    """A case at the district centre and teams placed so that ranking by degrees is wrong: at 31°N a degree
    of longitude is ~95 km and a degree of latitude ~111 km, so a team 900 m east is "farther" in degrees
    than one 950 m north. Pairs like that at several scales, plus a random scatter."""
    case = open_case(world, status=S.FILED)
    lon, lat = case.point.x, case.point.y
    spots = [(900, 0), (0, 950), (0, -1000), (-1900, 0), (1400, 1400), (-30, 2000), (2050, 0)]
    rng = random.Random(7)
    spots += [(rng.uniform(-4000, 4000), rng.uniform(-4000, 4000)) for _ in range(12)]
    for i, (e, n) in enumerate(spots):
        place(TeamFactory(district=world.district, code=f"TR{i:02d}"), offset(lon, lat, e, n))
    PatrolTeam.objects.filter(pk__in=[world.team.pk, world.other_team.pk]).update(status=PatrolTeam.Status.OFF_DUTY)
    return case


def test_ranking_equals_brute_force_metres_where_degrees_get_it_wrong(trap):
    truth = brute_force(trap)
    assert degree_order(trap) != [t for t, _ in truth]  # the trap works: degrees rank differently
    got = selectors.dispatch_candidates(case=trap, limit=50)
    # No owner, no skills, no workload: the score is distance alone, so the order must be the metre order.
    assert [c.team.pk for c in got] == [t for t, _ in truth]
    for c, (_, d) in zip(got, truth, strict=True):
        assert c.distance_m == pytest.approx(d, abs=1e-6)
        assert c.score == pytest.approx(-min(d, 5000) / 100, abs=1e-3)
        assert not c.owns_grid and not c.skill and c.workload == 0


def test_small_knn_pool_still_finds_the_true_nearest(trap, world, monkeypatch):
    monkeypatch.setattr(selectors, "KNN_POOL_MIN", 3)  # only the 3 nearest are read from the index
    lon, lat = world.centre()
    rng = random.Random(11)
    for _ in range(10):
        trap.point = offset(lon, lat, rng.uniform(-3000, 3000), rng.uniform(-3000, 3000))
        best = selectors.dispatch_candidates(case=trap, limit=1)
        assert [c.team.pk for c in best] == [brute_force(trap)[0][0]]


def test_ranking_is_one_query(trap, django_assert_num_queries):
    with django_assert_num_queries(1):
        got = selectors.dispatch_candidates(case=trap, limit=10)
        _ = [(c.team.code, c.team.name, c.reasons) for c in got]
    assert len(got) == 10


def test_ranking_reads_the_knn_index_at_city_scale(trap, world):
    """600 located teams (a city's worth): the k nearest come from an ordered GiST scan on last_position,
    not a scan + sort of every team, and the answer still equals brute force."""
    lon, lat = trap.point.x, trap.point.y
    rng = random.Random(5)
    PatrolTeam.objects.bulk_create(
        PatrolTeam(
            code=f"CITY{i:04d}",
            name=f"队{i}",
            district=world.district,
            last_position=offset(lon, lat, rng.uniform(-15000, 15000), rng.uniform(-15000, 15000)),
        )
        for i in range(600)
    )
    plan = explain(*selectors.dispatch_candidates_sql(case=trap, limit=10), analyze="gridmgmt_patrolteam")
    knn = plan[plan.index("CTE knn") if "CTE knn" in plan else 0 :]
    assert "Index Scan using gridmgmt_patrolteam_last_position" in knn and "Order By: (last_position <->" in knn, plan
    got = selectors.dispatch_candidates(case=trap, limit=10)
    assert [c.team.pk for c in got] == [t for t, _ in brute_force(trap)[:10]]


def owned_world(world):
    case = open_case(world, status=S.FILED)
    grid = ResponsibilityGrid.objects.create(code="RG1", name="一号责任网格", district=world.district, team=world.team)
    Case.objects.filter(pk=case.pk).update(responsibility_grid=grid)
    case.refresh_from_db()
    return case


def test_owner_first_when_close_with_reasons(world):
    case = owned_world(world)
    lon, lat = case.point.x, case.point.y
    place(world.team, offset(lon, lat, 800, 0))
    place(world.other_team, offset(lon, lat, 100, 0))
    world.other_team.skills.add(world.category)
    CaseFactory.create_batch(3, cell=world.cells[0], district=world.district, team=world.team, status=S.HANDLING)
    first, second = selectors.dispatch_candidates(case=case)
    assert first.team == world.team and first.owns_grid and first.workload == 3
    assert first.distance_m == pytest.approx(800, abs=2) and second.distance_m == pytest.approx(100, abs=1)
    assert first.reasons == ["负责该责任网格", f"距离 {round(first.distance_m)} 米", "在办 3 件"]
    assert second.team == world.other_team and second.skill and not second.owns_grid
    assert second.reasons == [f"距离 {round(second.distance_m)} 米", "在办 0 件", "擅长该类别"]
    assert first.score == pytest.approx(40 - 8 - 15, abs=0.05)
    assert second.score == pytest.approx(15 - 1, abs=0.05)


def test_far_owner_loses_to_a_close_team_and_owner_is_always_in_the_pool(world, monkeypatch):
    case = owned_world(world)
    lon, lat = case.point.x, case.point.y
    place(world.team, offset(lon, lat, 0, 6000))
    place(world.other_team, offset(lon, lat, 0, 100))
    monkeypatch.setattr(selectors, "KNN_POOL_MIN", 1)  # the owner is not among the k nearest…
    got = selectors.dispatch_candidates(case=case, limit=1)
    assert [c.team for c in got] == [world.other_team]
    got = selectors.dispatch_candidates(case=case, limit=5)
    assert [c.team for c in got] == [world.other_team, world.team]  # …but is still a candidate
    # An owner with no known position is a candidate too, scored as 5 km away.
    PatrolTeam.objects.filter(pk=world.team.pk).update(last_position=None)
    owner = next(c for c in selectors.dispatch_candidates(case=case) if c.owns_grid)
    assert owner.distance_m is None and "位置未知" in owner.reasons


def test_off_duty_busy_and_other_districts(world):
    case = open_case(world, status=S.FILED)
    lon, lat = case.point.x, case.point.y
    place(world.team, offset(lon, lat, 100, 0))
    place(world.other_team, offset(lon, lat, 200, 0))
    elsewhere = place(TeamFactory(district=DistrictFactory()), offset(lon, lat, 10, 0))
    PatrolTeam.objects.filter(pk=world.team.pk).update(status=PatrolTeam.Status.OFF_DUTY)
    got = selectors.dispatch_candidates(case=case)
    assert [c.team for c in got] == [world.other_team]
    assert elsewhere not in [c.team for c in got]
    PatrolTeam.objects.filter(pk=world.other_team.pk).update(status=PatrolTeam.Status.BUSY)
    (busy,) = selectors.dispatch_candidates(case=case)
    assert "处置中" in busy.reasons and busy.score == pytest.approx(-2 - 10, abs=0.05)


# --- lights -----------------------------------------------------------------------------------------------------


def test_lights_green_yellow_red_and_none(world):
    now = timezone.now()
    start, deadline = now - timedelta(hours=1), now + timedelta(hours=3)
    warn = start + (deadline - start) * 0.75  # now + 2 h
    case = open_case(world, status=S.HANDLING, stage_started_at=start, deadline_at=deadline, warn_at=warn)
    at = {
        "green": now,
        "yellow": warn,
        "red": deadline + timedelta(seconds=1),
    }
    for light, moment in at.items():
        assert states.case_light(case=case, now=moment) == light
        assert states.cases_with_light(Case.objects.filter(pk=case.pk), moment).get().light == light
    assert states.case_light(case=case, now=deadline) == "yellow"  # the deadline itself is not yet a breach
    for status in (S.PARKED, S.CLOSED, S.HANDLED, S.REPORTED):
        case.status = status
        case.save(update_fields=["status"])
        late = deadline + timedelta(days=3)
        assert states.case_light(case=case, now=late) == "none"
        assert states.cases_with_light(Case.objects.filter(pk=case.pk), now=late).get().light == "none"
