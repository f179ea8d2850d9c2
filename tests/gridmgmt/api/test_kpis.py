"""GET /api/kpis/: gridmgmt.kpi over the user's visible cases, with the period's dates included."""

import pytest
from django.utils import timezone

from gridmgmt.models import User
from tests.gridmgmt.api.conftest import report

R = User.Role


def kpis(world, who, **params):
    return world.client(who).get("/api/kpis/", params)


def test_today_counts_by_day_and_out_of_scope_sees_nothing(world, django_assert_max_num_queries):
    first = report(world, R.PATROL)
    report(world, R.PATROL)
    world.client(R.DISPATCHER).post(f"/api/cases/{first['id']}/file/", {"note": "属实"}, format="json")
    today = timezone.localdate().isoformat()
    with django_assert_max_num_queries(3):
        response = kpis(world, R.DISPATCHER, start=today, end=today, group_by="day")
    assert response.status_code == 200
    body = response.json()
    assert (body["start"], body["end"], body["group_by"]) == (today, today, "day")
    (row,) = body["results"]
    assert (row["key"], row["received"], row["filed"], row["closed"]) == (today, 2, 1, 0)
    assert row["on_time_closure_rate"] is None  # nothing closed: no rate, not 0 %

    (far,) = kpis(world, "far_dispatcher", start=today, end=today).json()["results"]
    assert (far["received"], far["filed"]) == (0, 0)


def test_default_period_is_this_month(world):
    body = kpis(world, R.SHIFT_LEADER).json()
    today = timezone.localdate()
    assert (body["start"], body["end"]) == (today.replace(day=1).isoformat(), today.isoformat())


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2026-11-30", "end": "2026-11-01"}, "end"),
        ({"start": "2024-01-01", "end": "2026-01-01"}, "end"),
        ({"start": "30/11/2026"}, "start"),
        ({"group_by": "planet"}, "group_by"),
    ],
)
def test_bad_periods_and_groups_are_400_with_the_field(world, params, field):
    response = kpis(world, R.DISPATCHER, **params)
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_anonymous_is_refused(world):
    assert world.client(None).get("/api/kpis/").status_code == 401
