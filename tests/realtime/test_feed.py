"""The feed log in the database: what the triggers write, in which order, and what a rollback leaves."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from geo.models import Camera
from gridmgmt.errors import InvalidInput, RoleNotAllowed
from gridmgmt.services import case_file
from realtime import selectors
from realtime.models import FeedEvent
from realtime.scopes import Scope, scope_allowed, scope_parse
from realtime.services import camera_status_set, team_position_report, team_status_set
from tests.realtime.conftest import streets_build

pytestmark = pytest.mark.django_db


@pytest.fixture
def streets():
    return streets_build()


def test_case_events_enter_the_feed_with_their_scope_keys_and_state(streets):
    case = streets.report("b")
    case_file(case_id=case.id, actor=streets.world.users["dispatcher"])
    rows = list(FeedEvent.objects.filter(data__code=case.code))
    assert [r.type for r in rows] == ["case.created", "case.updated"]
    assert rows[0].seq < rows[1].seq
    filed = rows[1]
    assert (filed.district_id, filed.street_id, filed.team_id) == (case.district_id, streets.street_b.id, None)
    assert filed.data["event"] == "filed" and filed.data["status"] == "filed"
    assert filed.data["light"] == "green" and filed.data["deadline_at"]
    assert "reporter_phone" not in filed.data and "reporter_name" not in filed.data


def test_a_rolled_back_write_leaves_no_feed_row(streets):
    before = FeedEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        streets.report("a")
        raise RuntimeError
    assert FeedEvent.objects.count() == before


def test_feed_read_is_per_scope_in_seq_order(streets):
    a1, b1, a2 = streets.report("a"), streets.report("b"), streets.report("a")
    rows = selectors.feed_read(scope=Scope("street", streets.street_a.id), after=0)
    assert [r.json.count(a1.code) + 2 * r.json.count(a2.code) for r in rows] == [1, 2]
    assert b1.code not in "".join(r.json for r in rows)
    assert len(selectors.feed_read(scope=Scope("all"), after=rows[0].seq)) == 2
    assert selectors.feed_head(scope=Scope("street", streets.street_b.id)) < rows[1].seq


def test_positions_at_most_one_per_5_s_and_never_older_than_the_stored_one(streets):
    patrol = streets.users["patrol"]
    now = timezone.now()
    lon, lat = streets.world.centre(0)
    assert team_position_report(actor=patrol, lon=lon, lat=lat, at=now - timedelta(seconds=20))
    assert not team_position_report(actor=patrol, lon=lon, lat=lat, at=now - timedelta(seconds=17))
    assert not team_position_report(actor=patrol, lon=lon, lat=lat, at=now - timedelta(seconds=30))  # older
    assert team_position_report(actor=patrol, lon=lon + 0.001, lat=lat, at=now - timedelta(seconds=15))
    rows = list(FeedEvent.objects.filter(type="team.position").order_by("seq"))
    assert len(rows) == 2 and rows[-1].data["lon"] == round(lon + 0.001, 6)
    assert rows[-1].team_id == streets.world.team.id and rows[-1].street_id == streets.street_a.id
    with pytest.raises(RoleNotAllowed):
        team_position_report(actor=streets.users["street_a"], lon=lon, lat=lat)
    with pytest.raises(InvalidInput):
        team_position_report(actor=patrol, lon="x", lat=lat)


def test_coalescing_keeps_the_newest_position_of_each_team(streets):
    w = streets.world
    patrol, other = streets.users["patrol"], streets.users["other_patrol"]
    now = timezone.now()
    lon, lat = w.centre(0)
    for seconds in (50, 40, 30):
        team_position_report(actor=patrol, lon=lon, lat=lat + seconds / 1e5, at=now - timedelta(seconds=seconds))
    team_position_report(actor=other, lon=lon, lat=lat, at=now - timedelta(seconds=35))
    rows = selectors.rows_coalesce(selectors.feed_read(scope=Scope("all"), after=0))
    teams = [(r.team_id, r.seq) for r in rows if r.type == "team.position"]
    assert len(teams) == 2
    assert FeedEvent.objects.get(seq=dict(teams)[w.team.id]).data["lat"] == round(lat + 30 / 1e5, 6)


def test_team_and_camera_status_changes_are_logged(streets):
    w = streets.world
    team_status_set(actor=streets.users["patrol"], team_id=w.team.id, status="busy")
    with pytest.raises(InvalidInput):
        team_status_set(actor=streets.users["patrol"], team_id=w.other_team.id, status="busy")  # not visible
    camera = Camera.objects.create(code="CAM1", name="一号", location=w.cells[4].center, cell=w.cells[4])
    camera_status_set(camera_id=camera.id, status="offline")
    camera_status_set(camera_id=camera.id, status="offline")  # no change, no row
    rows = list(FeedEvent.objects.filter(type__in=["team.status", "camera.status"]).order_by("seq"))
    assert [(r.type, r.data["status"]) for r in rows] == [("team.status", "busy"), ("camera.status", "offline")]
    assert rows[1].street_id == streets.street_b.id and rows[1].district_id == w.district.id


def test_the_feed_is_append_only(streets):
    streets.report("a")
    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE realtime_feedevent SET type = 'x'")


def test_scope_rules(streets):
    u, w = streets.users, streets.world
    assert scope_parse(text="all") == Scope("all")
    assert scope_parse(text="street:12") == Scope("street", 12)
    for bad in ("", "all:1", "street:", "street:x", "city:1", None, 12, "team:" + "9" * 50):
        with pytest.raises(InvalidInput):
            scope_parse(text=bad)
    assert scope_allowed(user=u["wall"], scope=Scope("all"))
    assert scope_allowed(user=u["wall"], scope=Scope("district", w.district.id))
    assert not scope_allowed(user=u["wall"], scope=Scope("street", w.district.id))  # wrong level = not found
    assert scope_allowed(user=u["street_a"], scope=Scope("street", streets.street_a.id))
    assert not scope_allowed(user=u["street_a"], scope=Scope("district", w.district.id))
    assert not scope_allowed(user=u["resident"], scope=Scope("street", streets.street_a.id))
    assert scope_allowed(user=u["patrol"], scope=Scope("team", w.team.id))
    assert not scope_allowed(user=u["patrol"], scope=Scope("team", w.other_team.id))


def test_prune_drops_only_an_old_prefix(streets):
    from io import StringIO

    from django.core.management import call_command

    month_ago = timezone.now() - timedelta(days=30)
    streets.report("a", at=month_ago)
    recent = streets.report("b")
    late_old = streets.report("a", at=month_ago)  # logged after a recent one: stays, or it would be a hole
    call_command("realtime_prune", "--days", "7", stdout=StringIO())
    codes = list(FeedEvent.objects.order_by("seq").values_list("data__code", flat=True))
    assert codes == [recent.code, late_old.code]
    assert selectors.feed_floor() == FeedEvent.objects.order_by("seq").first().seq
