"""The phone for inspectors and the field actions it offers (issue 10, item 4): an inspector lands on /patrol/
with the check queue (待核查) as the task list and the area's feed; a patrol member's phone offers extension requests
and self-handling because the server's allowed actions say so; "my reports" is a filter on the case list."""

import pytest
from django.test import Client

from gridmgmt import services
from gridmgmt.models import User
from tests.faces.test_pages import config_of
from tests.world import jpeg, world_build

pytestmark = pytest.mark.django_db
R = User.Role


@pytest.fixture
def world():
    return world_build()


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_an_inspector_lands_on_the_phone_with_the_check_queue(client, world):
    response = client.post("/accounts/login/", {"username": "inspector", "password": "demo1234"})
    assert response.status_code == 302 and response["Location"] == "/patrol/"
    html = client.get("/patrol/").content.decode()
    config = config_of(html)
    assert (config["tasks"], config["taskScope"]) == ("handled", "all")  # no area: every district's cases
    assert config["mine"] == "/api/cases/?mine=true&page_size=50"
    assert 'aria-selected="false">待核查 <span' in html
    # A patrol member's phone is unchanged; the desk stays open to the inspector.
    patrol = config_of(_client(world.users[R.PATROL]).get("/patrol/").content.decode())
    assert (patrol["tasks"], patrol["taskScope"]) == ("reported,dispatched,handling", f"team:{world.team.pk}")
    assert client.get("/dispatch/").status_code == 200


def test_the_phone_offers_extension_requests_and_self_handling(world):
    patrol = world.users[R.PATROL]
    lon, lat = world.centre(4)
    own, _ = services.case_report(source="patrol", category_code=world.category.code, lon=lon, lat=lat, reporter=patrol)
    work, _ = services.case_report(source="resident", category_code=world.category.code, lon=lon, lat=lat)
    services.case_file(case_id=work.pk, actor=world.users[R.DISPATCHER])
    services.case_dispatch(case_id=work.pk, actor=world.users[R.DISPATCHER], team_id=world.team.pk)
    services.case_accept(case_id=work.pk, actor=patrol)
    c = _client(patrol)
    names = lambda case: [a["name"] for a in c.get(f"/api/cases/{case.pk}/").json()["properties"]["actions"]]  # noqa: E731
    assert names(own) == ["self_handle"]
    assert names(work) == ["handle", "extension_request"]
    r = c.post(
        f"/api/cases/{work.pk}/extension-request/", {"hours": 4, "reason": "材料需要调运", "lon": lon, "lat": lat}
    )
    assert r.status_code == 200, r.content
    r = c.post(f"/api/cases/{own.pk}/self-handle/", {"photos": jpeg(), "note": "当场清理", "lon": lon, "lat": lat})
    assert r.status_code == 200, r.content
    assert r.json()["properties"]["status"] == "handled"
    # My reports: this user's own only.
    mine = c.get("/api/cases/", {"mine": "true"}).json()["features"]
    assert [f["properties"]["code"] for f in mine] == [own.code]
    assert _client(world.users[R.INSPECTOR]).get("/api/cases/", {"mine": "true"}).json()["features"] == []
