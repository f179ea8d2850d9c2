"""/stats/ and its monthly report as the server renders them: who may open them, the heat map's cells,
scoping, and bad input (the figures themselves: tests/gridmgmt/api/test_kpi_export.py, test_demo.py)."""

import pytest

from gridmgmt.models import User
from tests.faces.test_pages import config_of
from tests.geo.test_offline_pages import assert_offline
from tests.gridmgmt.api.conftest import api_world_build, report

R = User.Role
pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings):
    settings.BASEMAP_URL = ""
    settings.BASEMAP_MBTILES = ""
    return api_world_build()


def as_user(client, user):
    client.force_login(user)
    return client


def test_stats_page_for_staff_only(client, world):
    assert client.get("/stats/").status_code == 302  # to the login
    assert as_user(client, world.users[R.PATROL]).get("/stats/").status_code == 403
    response = as_user(client, world.users[R.SHIFT_LEADER]).get("/stats/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200
    html = response.content.decode()
    assert_offline(html)
    assert "vendor/echarts/echarts.min.js" in html
    config = config_of(html)
    assert config["api"] == "/api/kpis/"
    groups = [g for g, _ in config["groups"]]
    assert groups == ["street", "community", "department", "team", "person", "grid", "district"]
    assert [c["key"] for c in config["columns"]][:3] == ["key", "name", "received"]


def test_heat_counts_cases_per_cell_in_scope(client, world):
    report(world)
    report(world)
    ((lat, lon, n),) = as_user(client, world.users[R.DISPATCHER]).get("/stats/heat.json").json()["points"]
    lon_c, lat_c = world.centre()
    assert (round(lat, 5), round(lon, 5), n) == (round(lat_c, 5), round(lon_c, 5), 2)
    assert as_user(client, world.users["far_dispatcher"]).get("/stats/heat.json").json() == {"points": []}


def test_heat_bad_dates_are_400(client, world):
    response = as_user(client, world.users[R.DISPATCHER]).get("/stats/heat.json", {"start": "yesterday"})
    assert response.status_code == 400
    assert response.json()["field"] == "start"


@pytest.mark.parametrize("params", [{"month": "2026-13"}, {"month": "26-1"}, {"format": "pdf"}])
def test_monthly_bad_input_is_400_with_a_message(client, world, params):
    response = as_user(client, world.users[R.SHIFT_LEADER]).get("/stats/monthly/", params)
    assert response.status_code == 400
    assert "gm-message" in response.content.decode()


def test_monthly_english(client, world):
    report(world)
    response = as_user(client, world.users[R.SHIFT_LEADER]).get(
        "/stats/monthly/", {"month": "2026-10"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200
    assert "monthly evaluation" in response.content.decode().lower()


def test_heat_points_are_shifted_for_a_gcj02_basemap_only(client, world, settings):
    from geo.coords import wgs84_to_gcj02

    report(world)
    settings.BASEMAP_DATUM = "gcj02"
    ((lat, lon, n),) = as_user(client, world.users[R.DISPATCHER]).get("/stats/heat.json").json()["points"]
    glon, glat = wgs84_to_gcj02(*world.centre())
    assert (round(lat, 5), round(lon, 5), n) == (round(float(glat), 5), round(float(glon), 5), 1)


def test_area_choices_are_the_users_streets(client, world):
    from geo.models import AdminArea
    from tests.factories import DistrictFactory

    street = DistrictFactory(code="310115001", name="陆家嘴街道", level=AdminArea.Level.STREET, parent=world.district)
    DistrictFactory(code="310101001", name="外滩街道", level=AdminArea.Level.STREET, parent=world.other_district)
    html = as_user(client, world.users[R.DISPATCHER]).get("/stats/").content.decode()
    assert f'<option value="{street.pk}">陆家嘴街道</option>' in html and "外滩街道" not in html
