"""The admin's geometry widget works offline: vendored OpenLayers, no OpenStreetMap tiles."""

import pytest

from tests.e2e.conftest import screenshot
from tests.geodata import make_square_district

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_gridcell_change_page_map_widget(live_server_url, page, page_log, django_user_model):
    _district, cells = make_square_district()
    django_user_model.objects.create_superuser("admin", "admin@example.invalid", "demo1234")

    page.goto(f"{live_server_url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "demo1234")
    page.click("input[type=submit]")
    page.goto(f"{live_server_url}/admin/geo/gridcell/{cells[0].pk}/change/", wait_until="networkidle")

    # OLMapWidget draws on a canvas once ol.js has loaded and parsed the geometry.
    page.wait_for_selector("#id_geom_map canvas")
    assert page.evaluate("typeof ol") == "object"
    assert page.evaluate("geodjango_geom.map.getLayers().getArray()[0].constructor.name") != "TileLayer"
    assert page_log.outside() == []
    assert page_log.http_errors == []
    assert page_log.console_errors == [] and page_log.page_errors == []
    screenshot(page, "admin_gridcell_change")
