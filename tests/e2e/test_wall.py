"""The wall in a real Chromium, and every face's map on a GCJ-02 basemap.

- A case reported while the wall is open shades its cell (the tiles' cell id meets the snapshot's counts),
  the legend is there, and a click on a case opens its card.
- With BASEMAP_DATUM=gcj02 and a WMTS-style BASEMAP_URL (a tile stub served by this test, the way Tianditu
  deployments publish theirs), a case, a camera and a team sit on the basemap pixel of their GCJ-02 position,
  the page's conversion agrees with geo/coords.py, and a point clicked on the report page's map is stored
  within 1 m of the WGS-84 point the basemap shows there.
"""

from __future__ import annotations

import io
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from geo.coords import gcj02_to_wgs84, wgs84_to_gcj02
from gridmgmt import services
from gridmgmt.models import Case
from tests.e2e.conftest import login, record, screenshot, uvicorn_serving
from tests.world import world_build

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world():
    return world_build()


def wall_context(browser, url: str, viewport=(1920, 1080)):
    context = browser.new_context(
        locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": viewport[0], "height": viewport[1]}
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    login(page, url, "wall")
    page.close()
    return context


def test_wall_shades_a_reported_cell_shows_the_legend_and_opens_a_case_card(browser, live_server_url, world):
    from datetime import timedelta

    from django.contrib.gis.geos import Point
    from django.utils import timezone

    from tests.factories import CaseFactory

    lon4, lat4 = world.centre(4)
    on_time = CaseFactory(
        cell=world.cells[4],
        point=Point(lon4 + 0.0004, lat4 + 0.0003, srid=4326),  # beside the report to come, not under it
        category=world.category,
        status=Case.Status.FILED,
        deadline_at=timezone.now() + timedelta(days=3),
        warn_at=timezone.now() + timedelta(days=2),
    )
    context = wall_context(browser, live_server_url)
    page = context.new_page()
    log = record(page)
    page.goto(f"{live_server_url}/wall/", wait_until="networkidle")
    page.wait_for_function("window.gridmgmtWall && window.gridmgmtWall.ready === true")
    cell = world.cells[4]
    lon, lat = world.centre(4)
    page.evaluate(f"window.gridmgmtMap.setView([{lat}, {lon}], 16, {{animate: false}})")

    # A resident reports in that cell while the wall is open: the feed brings it, the counts follow.
    case, _ = services.case_report(source=Case.Source.RESIDENT, category_code="E0404", lon=lon, lat=lat)
    page.wait_for_function(f"window.gridmgmtWall.caseMarkers.has({case.code!r})")
    shaded = f"""() => {{
        const s = window.gridmgmtWall;
        if (!s.cells[{cell.pk}] || s.cells[{cell.pk}][0] !== 2) return false;  // the new report counted
        return Object.values(s.cellLayer._vectorTiles).some((tile) => {{
            const f = (tile._features || {{}})[{cell.pk}];
            return f && f.feature.options.fill === true;
        }});
    }}"""
    page.wait_for_function(shaded)
    assert page.evaluate(f"window.gridmgmtWall.cells[{cell.pk}]") == [2, 0]

    # Zoomed out, the two cluster: the worst timed light (green), and a badge for the one with no clock —
    # an unfiled report never turns a cluster green nor hides behind it.
    page.evaluate("window.gridmgmtMap.setZoom(13, {animate: false})")
    cluster = page.locator('.gm-case-cluster span[data-light="green"]')
    cluster.wait_for()
    assert cluster.inner_text().split() == ["2", "1"]
    page.evaluate(f"window.gridmgmtMap.setView([{lat}, {lon}], 16, {{animate: false}})")
    page.locator(f'.gm-case-dot[data-case="{on_time.code}"][data-light="green"]').wait_for()

    legend = page.locator("#legend")
    assert legend.is_visible()
    text = legend.inner_text()
    for words in ("图例", "网格着色", "已超时", "临近时限", "时限内", "未计时", "摄像头", "巡查队伍", "街镇"):
        assert words in text, words
    assert "视野内在办案件" in page.locator("#viewport-note").inner_text()
    assert "今日" in page.locator(".gm-kpi-period").inner_text()

    page.locator(f'.gm-case-dot[data-case="{case.code}"]').click()
    card = page.locator("#case-card")
    card.wait_for(state="visible")
    page.wait_for_function(
        "document.querySelector('#card-body dl') !== null"
        " && document.querySelector('#card-title').textContent.includes('·')"
    )
    assert case.code in page.locator("#card-title").inner_text()
    assert "未计时" in card.inner_text() and "已上报" in card.inner_text() and "null" not in card.inner_text()
    screenshot(page, "wall_cell_legend_card")
    page.click("#card-close")
    assert card.is_hidden()

    # Its deadline breached, the escalation pass lifts it a level: the dot and the alert panel show it live.
    from gridmgmt import escalation
    from gridmgmt.models import User

    services.case_file(case_id=case.pk, actor=world.users[User.Role.DISPATCHER])
    services.case_dispatch(case_id=case.pk, actor=world.users[User.Role.DISPATCHER], team_id=world.team.pk)
    assert escalation.cases_escalate(now=timezone.now() + timedelta(days=30)).count >= 1
    page.locator(f'.gm-case-dot[data-case="{case.code}"][data-light="red"]:not([data-level="0"])').wait_for()
    page.locator(f'#alerts li[data-kind="escalated"][data-case="{case.code}"]').wait_for()
    assert log.outside() == [] and log.page_errors == [] and log.http_errors == []
    context.close()


# --- GCJ-02 ------------------------------------------------------------------------------------------


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (256, 256), (40, 60, 80)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def tile_stub():
    """An intranet WMTS server as far as the browser can tell: any GetTile answers a grey PNG."""
    png = _png()
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()


WMTS = (
    "/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}"
)


@pytest.fixture(scope="module")
def gcj02_server_url(live_server_url, tile_stub, tmp_path_factory):
    """A second server on the same test database, with a GCJ-02 WMTS basemap."""
    with uvicorn_serving(
        tmp_path_factory, name="uvicorn-gcj02", BASEMAP_URL=tile_stub[0] + WMTS, BASEMAP_DATUM="gcj02"
    ) as url:
        yield url


def world_pixel(lon: float, lat: float, z: int) -> tuple[float, float]:
    """Web Mercator pixel of (lon, lat) at zoom z (256-pixel tiles)."""
    n = 256 * 2**z
    x = (lon + 180) / 360 * n
    y = (1 - math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) / math.pi) / 2 * n
    return x, y


def basemap_pixel(page, lon: float, lat: float, z: int) -> tuple[float, float]:
    """Where on the page the basemap shows the GCJ-02 point (lon, lat): read off the stub tile under it."""
    x, y = world_pixel(lon, lat, z)
    tx, ty = int(x // 256), int(y // 256)
    tile = page.locator(f'img.leaflet-tile[src*="TILEMATRIX={z}&TILEROW={ty}&TILECOL={tx}"]')
    tile.wait_for(state="attached")
    address = f"TILEMATRIX={z}&TILEROW={ty}&TILECOL={tx}"
    page.wait_for_function(
        f"[...document.querySelectorAll('img.leaflet-tile')]"
        f".some((i) => i.src.includes('{address}') && i.complete && i.naturalWidth)"
    )
    box = tile.bounding_box()
    return box["x"] + (x - tx * 256) * box["width"] / 256, box["y"] + (y - ty * 256) * box["height"] / 256


def marker_point(page, selector: str) -> tuple[float, float]:
    """The point a divIcon marker stands on: its Leaflet icon's top-left corner (the wall's icons have no size
    and no anchor; CSS centres what they draw on it)."""
    script = "(s) => { const r = document.querySelector(s).closest('.leaflet-marker-icon').getBoundingClientRect();"
    script += " return [r.left, r.top]; }"
    # Where it stays: a marker the cluster layer has just added may still be sliding out of its cluster
    # (markercluster's CSS transition), so read until two reads 100 ms apart agree.
    box, previous = page.evaluate(script, selector), None
    for _ in range(30):
        if box == previous:
            break
        page.wait_for_timeout(100)
        box, previous = page.evaluate(script, selector), box
    return box[0], box[1]


def test_every_wall_layer_lines_up_with_a_gcj02_wmts_basemap(browser, gcj02_server_url, tile_stub, world):
    from tests.factories import CameraFactory, CaseFactory

    cell = world.cells[4]
    lon, lat = cell.center.x + 0.0002, cell.center.y - 0.0001
    case = CaseFactory(cell=cell, category=world.category, point=f"SRID=4326;POINT({lon} {lat})")
    camera = CameraFactory(cell=world.cells[2])
    tlon, tlat = world.centre(6)
    world.team.last_position = f"SRID=4326;POINT({tlon} {tlat})"
    world.team.save()

    context = wall_context(browser, gcj02_server_url)
    page = context.new_page()
    log = record(page)
    page.goto(f"{gcj02_server_url}/wall/", wait_until="networkidle")
    page.wait_for_function("window.gridmgmtWall && window.gridmgmtWall.ready === true")
    assert page.evaluate("window.gridmgmtMap.options.crs.code") == "GCJ02"

    # The page's conversion is geo/coords.py's, both ways.
    for plon, plat in [(121.5440, 31.2304), (121.47, 31.23), (116.39, 39.91), (2.35, 48.85)]:
        js = page.evaluate(f"L.CRS.GCJ02.wgs84ToGcj02({plon}, {plat})")
        assert js == pytest.approx(list(wgs84_to_gcj02(plon, plat)), abs=1e-9)
        back = page.evaluate(f"L.CRS.GCJ02.gcj02ToWgs84({js[0]}, {js[1]})")
        assert back == pytest.approx(list(gcj02_to_wgs84(*js)), abs=1e-9)
        assert back == pytest.approx([plon, plat], abs=1e-8)

    z = 17
    page.evaluate(f"window.gridmgmtMap.setView([{lat}, {lon}], {z}, {{animate: false}})")
    page.wait_for_function(f"window.gridmgmtWall.caseMarkers.has({case.code!r})")
    page.wait_for_selector(f'.gm-cam[data-camera="{camera.code}"]', state="attached")
    page.wait_for_selector('.gm-team[data-team="PT-A"]', state="attached")
    # ~0.5 m per pixel here; the GCJ-02 shift is ~470 m (~700 px): a marker off by the datum is far away.
    for selector, (plon, plat) in [
        (f'.gm-case-dot[data-case="{case.code}"]', (lon, lat)),
        (f'.gm-cam[data-camera="{camera.code}"]', world.centre(2)),
        ('.gm-team[data-team="PT-A"]', (tlon, tlat)),
    ]:
        expected = basemap_pixel(page, *wgs84_to_gcj02(plon, plat), z)
        shown = marker_point(page, selector)
        assert shown == pytest.approx(expected, abs=1.5), selector
    # The cell tiles are asked for shifted (tests/geo/test_tiles.py checks the shift), the basemap from the stub.
    cell_tiles = log.matching("/tiles/cells/")
    assert cell_tiles and all("datum=gcj02" in u for u in cell_tiles)
    assert any("SERVICE=WMTS" in p and f"TILEMATRIX={z}" in p for p in tile_stub[1])
    assert log.page_errors == [] and log.http_errors == []
    screenshot(page, "wall_gcj02")
    context.close()


def test_a_point_clicked_on_a_gcj02_basemap_is_stored_in_wgs84(browser, gcj02_server_url, world):
    from tests.e2e.test_faces import jpeg_file

    plon, plat = cell_point = world.centre(4)
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{gcj02_server_url}/report/", wait_until="networkidle")
    page.wait_for_function("window.gridmgmtMap !== undefined")
    z = 18
    page.evaluate(f"window.gridmgmtMap.setView([{plat}, {plon}], {z}, {{animate: false}})")
    # Click the basemap where it draws the WGS-84 point (lon, lat), that is at its GCJ-02 position.
    x, y = basemap_pixel(page, *wgs84_to_gcj02(plon, plat), z)
    page.mouse.click(x, y)
    page.wait_for_function("document.getElementById('loc-status').textContent.length > 0")
    page.set_input_files("#photo", jpeg_file())
    page.select_option("#category", "E0404")
    page.fill("#description", "井盖缺失")
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])")
    case = Case.objects.get(source=Case.Source.RESIDENT)
    stored = case.point
    # Metres between the stored point and the one shown, on the local tangent plane.
    dx = (stored.x - cell_point[0]) * 111_320 * math.cos(math.radians(plat))
    dy = (stored.y - cell_point[1]) * 110_574
    assert math.hypot(dx, dy) < 1.0, (dx, dy)
    context.close()
