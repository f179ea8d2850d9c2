"""Who was where: track replay (/api/tracks/), attendance (/api/attendance/) and 巡查覆盖率 (/api/kpis/coverage/,
gridmgmt.kpi.coverage_compute, the wall's KPI) on the real PostGIS, from fixes written by the position service.

The world: 3 × 3 cells (row 0 is the north row: cells 0 1 2); team 甲队 owns cells 0–5, 乙队 cells 6–8. The patrol
member's tracker walks 09:00–09:04 along row 0 (cells 0 → 1 → 2), is silent for 31 minutes, then sends one fix in
cell 4 at 09:35. Unbroken, the line from cell 2 to cell 4 would touch cell 5 at its corner: the silence breaks it.
"""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client

from geo.models import AdminArea, GridCell, ResponsibilityGrid
from gridmgmt import kpi
from gridmgmt.models import User
from realtime import positions
from realtime.models import Device
from tests.factories import UserFactory
from tests.world import world_build

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 18, 0, tzinfo=SH)


@pytest.fixture
def world():
    with time_machine.travel(NOW, tick=False):
        w = world_build()
        for code, team, cells in (("RG-A", w.team, w.cells[:6]), ("RG-B", w.other_team, w.cells[6:])):
            grid = ResponsibilityGrid.objects.create(code=code, name=code, district=w.district, team=team)
            GridCell.objects.filter(pk__in=[c.pk for c in cells]).update(responsibility_grid=grid)
        patrol = w.users[User.Role.PATROL]
        device = Device.objects.create(user=patrol, kind=Device.Kind.TRACKER, identifier="demo-patrol")
        start = datetime(2026, 11, 24, 9, 0, tzinfo=SH)
        walk = [w.centre(0), w.cells[0].center.coords, w.centre(1), w.centre(2), w.centre(2)]
        # 09:00 cell 0, 09:01 cell 0, 09:02 cell 1, 09:03 cell 2, 09:04 cell 2 … 09:35 cell 4.
        fixes = [positions.Fix(lon=x, lat=y, at=start + timedelta(minutes=i)) for i, (x, y) in enumerate(walk)]
        fixes.append(positions.Fix(lon=w.centre(4)[0], lat=w.centre(4)[1], at=start + timedelta(minutes=35)))
        positions.partitions_create([DAY])
        assert positions.positions_append(device_id=device.pk, user_id=patrol.pk, team_id=w.team.pk, fixes=fixes) == 6
        yield w


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_coverage_counts_the_cells_a_broken_track_passed(world):
    rows = kpi.coverage_compute(team_ids=[world.team.pk, world.other_team.pk], first=DAY, last=DAY + timedelta(days=1))
    got = [(r.day, r.name, r.cells, r.cells_covered, r.coverage) for r in rows]
    assert got == [
        (DAY, "甲队", 6, 4, 4 / 6),
        (DAY, "乙队", 3, 0, 0.0),
        (DAY + timedelta(days=1), "甲队", 6, 0, 0.0),
        (DAY + timedelta(days=1), "乙队", 3, 0, 0.0),
    ]
    assert kpi.coverage_total(rows[:2]) == 4 / 9


def test_coverage_api_and_its_scope(world, django_assert_max_num_queries):
    dispatcher = _client(world.users[User.Role.DISPATCHER])  # bound to no area: every team
    with django_assert_max_num_queries(8):
        r = dispatcher.get("/api/kpis/coverage/", {"start": "2026-11-24", "end": "2026-11-24"})
    assert r.status_code == 200, r.content
    assert r.json()["results"] == [
        {
            "day": "2026-11-24",
            "team_id": world.team.pk,
            "name": "甲队",
            "cells": 6,
            "cells_covered": 4,
            "coverage": 4 / 6,
        },
        {
            "day": "2026-11-24",
            "team_id": world.other_team.pk,
            "name": "乙队",
            "cells": 3,
            "cells_covered": 0,
            "coverage": 0.0,
        },
    ]
    assert r.json()["total"] == 4 / 9
    assert (
        dispatcher.get("/api/kpis/coverage/", {"start": "2026-11-01", "end": "2026-12-24"}).json()["code"]
        == "period_too_long"
    )
    # A patrol member follows nobody: no team, and a named team is a 404.
    patrol = _client(world.users[User.Role.PATROL])
    assert patrol.get("/api/kpis/coverage/", {"start": "2026-11-24"}).json()["results"] == []
    assert patrol.get("/api/kpis/coverage/", {"team": world.team.pk}).status_code == 404


def test_track_replay_one_feature_per_device_broken_at_the_silence(world, django_assert_max_num_queries):
    c = _client(world.users[User.Role.DISPATCHER])
    with django_assert_max_num_queries(8):
        r = c.get("/api/tracks/", {"team": world.team.pk, "start": "2026-11-24T00:00:00", "end": "2026-11-25T00:00:00"})
    assert r.status_code == 200, r.content
    (feature,) = r.json()["features"]
    assert feature["geometry"]["type"] == "MultiLineString"
    first, second = feature["geometry"]["coordinates"]
    assert len(first) == 5 and len(second) == 2  # a lone fix is a line of two equal vertices
    assert second[0] == second[1] == [round(v, 6) for v in world.centre(4)]
    p = feature["properties"]
    t0 = int(datetime(2026, 11, 24, 9, 0, tzinfo=SH).timestamp())
    assert p["times"] == [t0, t0 + 60, t0 + 120, t0 + 180, t0 + 240, t0 + 2100, t0 + 2100]
    assert (p["device"], p["username"], p["team"], p["fixes"]) == ("demo-patrol", "patrol", world.team.pk, 6)
    # The member alone gives the same track; a period without fixes none.
    member = c.get(
        "/api/tracks/",
        {"member": world.users[User.Role.PATROL].pk, "start": "2026-11-24T00:00:00", "end": "2026-11-25T00:00:00"},
    )
    assert member.json()["features"][0]["properties"]["times"] == p["times"]
    assert c.get("/api/tracks/", {"team": world.other_team.pk, "start": "2026-11-24T00:00:00"}).json()["features"] == []


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({}, 400, "required"),
        ({"team": "x"}, 400, "invalid"),
        ({"team": 1, "start": "yesterday"}, 400, "bad_datetime"),
        ({"team": 1, "start": "2026-11-24T10:00:00", "end": "2026-11-24T09:00:00"}, 400, "bad_period"),
        ({"team": 1, "start": "2026-11-01T00:00:00", "end": "2026-11-24T00:00:00"}, 400, "period_too_long"),
        ({"team": 999999}, 404, "not_found"),
    ],
)
def test_track_bad_input_is_a_clear_4xx(world, query, status, code):
    if query.get("team") == 1:
        query = {**query, "team": world.team.pk}
    r = _client(world.users[User.Role.DISPATCHER]).get("/api/tracks/", query)
    assert r.status_code == status, r.content
    assert r.json()["code"] == code and r.json()["detail"]


def test_tracks_are_scoped_by_area(world):
    district = world.district
    street_b = AdminArea.objects.create(
        code=f"{district.code}002",
        name="乙街道",
        level=AdminArea.Level.STREET,
        parent=district,
        boundary=district.boundary,
        area_m2=1,
    )
    world.other_team.street = street_b
    world.other_team.save(update_fields=["street"])
    outsider = UserFactory(username="disp_b", role=User.Role.DISPATCHER, area=street_b)
    c = _client(outsider)
    assert c.get("/api/tracks/", {"team": world.team.pk}).status_code == 404
    assert c.get("/api/tracks/", {"member": world.users[User.Role.PATROL].pk}).status_code == 404
    assert c.get("/api/attendance/", {"team": world.team.pk}).status_code == 404
    assert c.get("/api/tracks/", {"team": world.other_team.pk}).status_code == 200
    assert _client(world.users[User.Role.PATROL]).get("/api/tracks/", {"team": world.team.pk}).status_code == 404


def test_attendance_on_at_the_first_fix_off_at_the_last(world):
    r = _client(world.users[User.Role.SHIFT_LEADER]).get(
        "/api/attendance/", {"team": world.team.pk, "start": "2026-11-24"}
    )
    assert r.status_code == 200, r.content
    (row,) = r.json()
    x0, y0 = world.centre(0)
    x4, y4 = world.centre(4)
    assert row["day"] == "2026-11-24" and row["username"] == "patrol" and row["team_id"] == world.team.pk
    assert row["on_at"] == "2026-11-24T09:00:00+08:00" and row["off_at"] == "2026-11-24T09:35:00+08:00"
    assert (round(row["on_lon"], 7), round(row["on_lat"], 7)) == (round(x0, 7), round(y0, 7))
    assert (round(row["off_lon"], 7), round(row["off_lat"], 7)) == (round(x4, 7), round(y4, 7))
    assert (row["fixes"], row["minutes"]) == (6, 4)  # the 31-minute silence is not counted


def test_the_wall_shows_todays_coverage(world):
    cache.clear()  # the figure is cached (this worktree's own Redis); a rerun must compute it again
    with time_machine.travel(NOW, tick=False):
        r = _client(world.users[User.Role.WALL]).get("/wall/snapshot.json", {"only": "kpis"})
    assert r.status_code == 200
    assert r.json()["kpis"]["coverage"] == 4 / 9
