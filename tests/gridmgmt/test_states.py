"""One answer for a case's state wherever it is read: the deadline light at the deadline instant through
REST, the feed and the wall snapshot; "overdue" in the wall snapshot, the feed's KPI and /api/kpis/."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client

from gridmgmt import services
from gridmgmt.models import Case, User
from realtime import selectors as feed_selectors
from realtime.models import FeedEvent
from realtime.scopes import Scope
from tests.world import jpeg, world_build

S, R = Case.Status, User.Role


@pytest.fixture
def world(db):
    return world_build()


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _lights(world, case: Case) -> dict:
    """The case's light as REST, the feed (a +1 written now) and the wall snapshot give it."""
    services.case_support(case_id=case.pk, actor=None)
    feed = FeedEvent.objects.filter(data__code=case.code).order_by("-seq").first().data["light"]
    rest = _client(world.users[R.DISPATCHER]).get(f"/api/cases/{case.pk}/").json()["properties"]["light"]
    lon, lat = case.point.x, case.point.y
    bbox = f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"
    wall = _client(world.users[R.WALL]).get(f"/wall/snapshot.json?only=cases&bbox={bbox}").json()
    (row,) = [r for r in wall["cases"]["cases"] if r[2] == case.code]
    return {"rest": rest, "feed": feed, "wall": row[3]}


def test_the_light_at_the_deadline_instant_is_one_answer(world):
    lon, lat = world.centre()
    case, _ = services.case_report(
        source=Case.Source.PATROL, category_code=world.category.code, lon=lon, lat=lat, photos=[jpeg()]
    )
    case = services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER])
    deadline = case.deadline_at
    with time_machine.travel(deadline, tick=False):
        # On time at the deadline itself (as a step done at that instant counts on time), so yellow.
        assert _lights(world, case) == {"rest": "yellow", "feed": "yellow", "wall": "yellow"}
    with time_machine.travel(deadline + timedelta(microseconds=1), tick=False):
        assert _lights(world, case) == {"rest": "red", "feed": "red", "wall": "red"}


def test_overdue_is_the_same_figure_on_the_wall_in_the_feed_and_in_the_kpis(world):
    lon, lat = world.centre()
    made = []
    for _ in range(3):
        case, _ = services.case_report(
            source=Case.Source.PATROL, category_code=world.category.code, lon=lon, lat=lat, photos=[jpeg()]
        )
        made.append(services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER]))
    late, parked, _on_time = made
    services.case_park(case_id=parked.pk, actor=world.users[R.SHIFT_LEADER], reason="等待供电公司")
    past = late.deadline_at - timedelta(hours=2)
    Case.objects.filter(pk__in=[late.pk, parked.pk]).update(deadline_at=past, warn_at=past)

    wall = _client(world.users[R.WALL]).get("/wall/snapshot.json?only=kpis").json()["kpis"]
    feed = feed_selectors.kpi_for_scope(scope=Scope("all"))
    api = _client(world.users[R.WALL]).get("/api/kpis/").json()["stock"]
    # Three open; only the filed case past its deadline is overdue — the parked one is paused.
    assert (wall["open"], wall["overdue"]) == (3, 1)
    assert (feed["open"], feed["overdue"]) == (3, 1)
    assert (api["open"], api["overdue"]) == (3, 1)
