"""Notifications over the feed: scope user:<id> delivers `notification.created` to that user only."""

import pytest

from gridmgmt import services
from gridmgmt.models import Notification, User
from realtime.scopes import Scope, scope_allowed, scopes_default
from tests.realtime.conftest import screen_open

pytestmark = pytest.mark.django_db(transaction=True)
R = User.Role


def test_a_dispatch_reaches_the_team_members_own_scope(live, streets):
    patrol = streets.users["patrol"]
    phone = screen_open(live, patrol)
    assert phone.subscribe(f"user:{patrol.id}")["t"] == "subscribed"
    wall = screen_open(live, streets.users["wall"])
    assert wall.subscribe("all")["t"] == "subscribed"

    case = streets.report("a")
    desk = streets.users["street_a"]
    services.case_file(case_id=case.pk, actor=desk)
    services.case_dispatch(case_id=case.pk, actor=desk, team_id=streets.world.team.pk)

    events = phone.wait_events(lambda evs: any(e["type"] == "notification.created" for e in evs))
    note = Notification.objects.get(user=patrol, case=case)
    (got,) = [e for e in events if e["type"] == "notification.created"]
    assert got["data"] == {
        "id": note.id,
        "kind": "dispatched",
        "case_id": case.id,
        "code": case.code,
        "title": f"新任务 {case.code}",
        "text": note.text,
        "created_at": note.created_at.isoformat(),
        "unread": 1,
    }
    assert got["scope"] == f"user:{patrol.id}"
    # The wall hears of the dispatch but never of anyone's notification.
    seen = wall.wait_events(lambda evs: any(e["data"].get("event") == "dispatched" for e in evs))
    assert "notification.created" not in {e["type"] for e in seen}


def test_only_the_user_may_hold_their_scope(live, streets):
    patrol, wall = streets.users["patrol"], streets.users["wall"]
    other = screen_open(live, streets.users["other_patrol"])
    assert other.subscribe(f"user:{patrol.id}")["t"] == "error"
    unrestricted = screen_open(live, wall)
    refused = unrestricted.subscribe(f"user:{patrol.id}")
    assert (refused["t"], refused["code"]) == ("error", "not_found")
    assert unrestricted.subscribe(f"user:{wall.id}")["t"] == "subscribed"


def test_every_staff_and_patrol_user_has_their_inbox_by_default(streets):
    for key in ("wall", "street_a", "patrol"):
        user = User.objects.select_related("area").get(pk=streets.users[key].pk)
        assert Scope("user", user.id) in scopes_default(user=user)
        assert scope_allowed(user=user, scope=Scope("user", user.id))
    resident = streets.users["resident"]
    assert scopes_default(user=resident) == []
    assert not scope_allowed(user=resident, scope=Scope("user", streets.users["patrol"].id))
