import math

import mapbox_vector_tile
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import CellFactory, DistrictFactory


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


@pytest.fixture
def cells(db):
    district = DistrictFactory()
    return [CellFactory(district=district, row_i=r, col_i=c) for r in range(3) for c in range(3)]


def test_cell_tile_returns_mvt_with_the_cells_by_id(client, cells):
    lon, lat = cells[4].center.x, cells[4].center.y
    x, y = tile_of(lon, lat, 16)
    response = client.get(f"/tiles/cells/16/{x}/{y}.pbf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.mapbox-vector-tile"
    layer = mapbox_vector_tile.decode(response.content)["cells"]
    assert cells[4].pk in {f["id"] for f in layer["features"]}
    # trimmed to what the maps use: the id (the wall's shading key), once, as the feature id
    assert all(f["properties"] == {} for f in layer["features"])


def test_low_zoom_tile_is_empty(client, cells):
    x, y = tile_of(cells[0].center.x, cells[0].center.y, 10)
    response = client.get(f"/tiles/cells/10/{x}/{y}.pbf")
    assert response.status_code == 200 and response.content == b""


def test_tile_outside_data_is_empty(client, cells):
    response = client.get("/tiles/cells/16/0/0.pbf")
    assert response.status_code == 200 and response.content == b""


@pytest.mark.parametrize("path", ["/tiles/cells/16/70000/1.pbf", "/tiles/cells/23/0/0.pbf", "/tiles/cells/3/1/8.pbf"])
def test_out_of_range_tile_is_a_clear_400(client, db, path):
    response = client.get(path)
    assert response.status_code == 400
    assert "超出" in response.json()["detail"]


def test_tile_is_one_query_then_served_from_the_cache(client, cells):
    x, y = tile_of(cells[0].center.x, cells[0].center.y, 15)
    with CaptureQueriesContext(connection) as queries:
        client.get(f"/tiles/cells/15/{x}/{y}.pbf")
    # The tile after SET LOCAL (no parallel workers), in one round trip.
    (sql,) = [q["sql"] for q in queries.captured_queries]
    assert sql.startswith("SET LOCAL max_parallel_workers_per_gather = 0; ") and "ST_AsMVT" in sql
    with CaptureQueriesContext(connection) as queries:
        again = client.get(f"/tiles/cells/15/{x}/{y}.pbf")
    assert again.status_code == 200 and [q for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]] == []


def test_tile_is_revalidated_by_etag(client, cells):
    x, y = tile_of(cells[4].center.x, cells[4].center.y, 16)
    first = client.get(f"/tiles/cells/16/{x}/{y}.pbf")
    assert first["ETag"] and "max-age=3600" in first["Cache-Control"]
    again = client.get(f"/tiles/cells/16/{x}/{y}.pbf", headers={"If-None-Match": first["ETag"]})
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == first["ETag"]
    other = client.get(f"/tiles/cells/16/{x + 1}/{y}.pbf", headers={"If-None-Match": first["ETag"]})
    assert other.status_code == 200 and other["ETag"] != first["ETag"]


def _features_by_id(content: bytes) -> dict[int, dict]:
    return {f["id"]: f for f in mapbox_vector_tile.decode(content)["cells"]["features"]}


def _tile_units(lon, lat, *, z: int, x: int, y: int):
    """WGS-84 → Web Mercator → this tile's units, y down (as the tile stores them)."""
    import numpy as np

    from geo.selectors import TILE_EXTENT

    n = TILE_EXTENT * 2**z
    tx = (np.asarray(lon) + 180) / 360 * n - x * TILE_EXTENT
    ty = (1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * n - y * TILE_EXTENT
    return tx, ty


def _ring_area(ring) -> float:
    """The surveyor's formula: > 0 for an MVT exterior ring (clockwise in tile units, y down)."""
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True)) / 2


@pytest.mark.parametrize("z", [13, 16, 18])
def test_cell_outlines_are_where_web_mercator_puts_them(client, db, z):
    import numpy as np
    import shapely

    from tests.factories import square_utm, utm_to_wgs84

    district = DistrictFactory()
    whole = CellFactory(district=district, row_i=4, col_i=4)
    # a cell cut by a community boundary: the square less its south-east half (drawn by ST_AsMVTGeom)
    square = square_utm(500, 500, 100)
    (x0, y0, x1, y1) = square.bounds
    cut = CellFactory(
        district=district,
        row_i=4,
        col_i=5,
        geom=f"SRID=4326;{utm_to_wgs84(shapely.MultiPolygon([shapely.Polygon([(x0, y0), (x0, y1), (x1, y1)])])).wkt}",
        area_m2=5_000.0,
    )
    for cell in (whole, cut):
        x, y = tile_of(cell.center.x, cell.center.y, z)
        tile = mapbox_vector_tile.decode(
            client.get(f"/tiles/cells/{z}/{x}/{y}.pbf").content, default_options={"y_coord_down": True}
        )
        (shown,) = [f["geometry"] for f in tile["cells"]["features"] if f["id"] == cell.pk]
        ring = shown["coordinates"][0]
        assert shown["type"] == "Polygon" and _ring_area(ring) > 0
        exact = np.array(cell.geom.coords[0][0][:-1])
        ex, ey = _tile_units(exact[:, 0], exact[:, 1], z=z, x=x, y=y)
        # Every corner within the tile and its buffer is shown within a unit of its exact place (rounding);
        # any other vertex is where ST_AsMVTGeom clipped the cut cell at the buffer's edge. A whole cell is
        # never clipped: it reaches at most one cell past the tile's edge.
        inside = (ex >= -16) & (ex <= 1040) & (ey >= -16) & (ey <= 1040)
        for cx, cy in zip(ex[inside], ey[inside], strict=True):
            assert min(np.hypot(cx - px, cy - py) for px, py in ring) <= 1.0
        for px, py in ring:
            assert np.hypot(ex - px, ey - py).min() <= 1.0 or (cell == cut and {px, py} & {-16, 1040})
        if cell == whole:
            assert len(set(map(tuple, ring))) == 4


def test_gcj02_tile_draws_cells_where_a_gcj02_basemap_shows_them(client, cells):
    import numpy as np

    from geo.coords import wgs84_to_gcj02
    from geo.selectors import TILE_EXTENT

    z = 13
    x, y = tile_of(cells[4].center.x, cells[4].center.y, z)
    wgs = _features_by_id(client.get(f"/tiles/cells/{z}/{x}/{y}.pbf").content)
    gcj = _features_by_id(client.get(f"/tiles/cells/{z}/{x}/{y}.pbf?datum=gcj02").content)
    both = set(gcj) & set(wgs)  # the grid is near the tile's edge: the shift moves some rows in or out
    assert both

    def tile_units(lon, lat):  # Web Mercator → this tile's units, y up (as decode() gives them)
        n = TILE_EXTENT * 2**z
        tx = (np.asarray(lon) + 180) / 360 * n - x * TILE_EXTENT
        ty = (1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * n - y * TILE_EXTENT
        return tx, TILE_EXTENT - ty

    by_id = {c.pk: c for c in cells}
    for pk in both:
        ring = np.array(by_id[pk].geom.coords[0][0])
        ex, ey = tile_units(*wgs84_to_gcj02(ring[:, 0], ring[:, 1]))  # every vertex where GCJ-02 puts it
        wx, _wy = tile_units(ring[:, 0], ring[:, 1])
        (shown,) = gcj[pk]["geometry"]["coordinates"]
        # TILE_EXTENT 1024: ~4.8 m per unit at z13. Within 1.5 units of the exact GCJ-02 position (rounding +
        # the linearisation), ~470 m (~98 units) east of the WGS-84 one.
        assert TILE_EXTENT == 1024
        assert min(p[0] for p in shown) == pytest.approx(ex.min(), abs=1.5)
        assert min(p[1] for p in shown) == pytest.approx(ey.min(), abs=1.5)
        assert 75 < ex.min() - wx.min() < 115


def _asgi_get(app, path: str, headers: list | None = None) -> tuple[int, dict, bytes]:
    from asgiref.sync import async_to_sync

    sent = []

    async def run():
        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": path, "headers": headers or [], "query_string": b""}
        await app(scope, receive, send)

    async_to_sync(run)()
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


def test_asgi_fast_path_answers_a_cached_tile_as_the_view_does(client, cells):
    from geo.tile_asgi import CellTileFastPath

    async def django_only(scope, receive, send):
        raise AssertionError("the fast path passed a cached tile on to Django")

    x, y = tile_of(cells[4].center.x, cells[4].center.y, 16)
    path = f"/tiles/cells/16/{x}/{y}.pbf"
    fast = CellTileFastPath(django_only)
    with pytest.raises(AssertionError):  # not cached yet: Django's turn
        _asgi_get(fast, path)
    view = client.get(path)  # renders and caches it
    status, headers, body = _asgi_get(fast, path)
    assert (status, body, headers["etag"]) == (200, view.content, view["ETag"])
    for name in ("Content-Type", "Cache-Control", "X-Content-Type-Options"):
        assert headers[name.lower()] == view[name]
    status, _, body = _asgi_get(fast, path, [(b"if-none-match", view["ETag"].encode())])
    assert (status, body) == (304, b"")


@pytest.mark.parametrize("proto", ["https", "http"])
def test_asgi_fast_path_adds_what_the_middleware_adds(client, cells, settings, proto):
    """HSTS on a request the proxy marks secure, the proxy's request id echoed, the same security headers as the
    view — from the same settings (gridmgmt.asgi_headers)."""
    from geo.tile_asgi import CellTileFastPath

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_SSL_REDIRECT = False

    async def django_only(scope, receive, send):
        raise AssertionError("the fast path passed a cached tile on to Django")

    x, y = tile_of(cells[4].center.x, cells[4].center.y, 16)
    path = f"/tiles/cells/16/{x}/{y}.pbf"
    view = client.get(path, headers={"X-Forwarded-Proto": proto, "X-Request-ID": "proxy-id-0001"})
    _, headers, _ = _asgi_get(
        CellTileFastPath(django_only),
        path,
        [(b"x-forwarded-proto", proto.encode()), (b"x-request-id", b"proxy-id-0001")],
    )
    names = ["Strict-Transport-Security", "X-Request-ID", "X-Content-Type-Options", "Referrer-Policy"]
    names += ["Cross-Origin-Opener-Policy", "X-Frame-Options"]
    assert {n: headers.get(n.lower()) for n in names} == {n: view.get(n) for n in names}
    assert headers["x-request-id"] == "proxy-id-0001"
    assert ("strict-transport-security" in headers) == (proto == "https")


@pytest.mark.django_db(transaction=True)
def test_asgi_fast_path_renders_and_caches_a_tile_not_cached_yet(client):
    from geo.tile_asgi import CellTileFastPath

    async def django_only(scope, receive, send):
        raise AssertionError("the fast path passed a tile on to Django")

    district = DistrictFactory()
    cells = [CellFactory(district=district, row_i=r, col_i=c) for r in range(3) for c in range(3)]
    x, y = tile_of(cells[4].center.x, cells[4].center.y, 16)
    path = f"/tiles/cells/16/{x}/{y}.pbf"
    fast = CellTileFastPath(django_only)
    with pytest.raises(AssertionError):  # no version stamp yet: Django makes it
        _asgi_get(fast, f"/tiles/cells/16/{x + 1}/{y}.pbf")
    client.get(f"/tiles/cells/16/{x + 1}/{y}.pbf")
    try:
        status, headers, body = _asgi_get(fast, path)  # rendered on the fast path's own connection
    finally:
        fast.close()
    assert status == 200 and cells[4].pk in {f["id"] for f in mapbox_vector_tile.decode(body)["cells"]["features"]}
    with CaptureQueriesContext(connection) as queries:
        view = client.get(path)  # now cached: the view reads it back
    assert queries.captured_queries == []
    assert (view.content, view["ETag"], view["Content-Type"]) == (body, headers["etag"], headers["content-type"])


def test_a_cell_edited_in_the_admin_is_not_served_from_an_old_tile(
    admin_client, cells, django_capture_on_commit_callbacks
):
    from django.contrib import admin
    from django.contrib.gis.geos import MultiPolygon

    from geo.models import GridCell

    x, y = tile_of(cells[4].center.x, cells[4].center.y, 16)
    path = f"/tiles/cells/16/{x}/{y}.pbf"
    before = admin_client.get(path).content
    cell = cells[4]
    cell.geom = MultiPolygon(cell.geom[0].buffer(-0.0002), srid=4326)  # shrunk by ~20 m each side
    request = admin_client.get("/admin/").wsgi_request
    with django_capture_on_commit_callbacks(execute=True):
        admin.site._registry[GridCell].save_model(request, cell, None, True)
    after = admin_client.get(path).content
    assert after != before
    assert after == admin_client.get(path).content  # cached again, under the new stamp


def test_asgi_fast_path_keeps_served_tiles_and_trusts_the_stamp_for_tile_version_seconds(client, cells, settings):
    from django.core.cache import cache

    from geo.selectors import GRID_VERSION_KEY, TileAddress, cell_tile_key, grid_version
    from geo.tile_asgi import CellTileFastPath

    async def django_only(scope, receive, send):
        raise AssertionError("the fast path passed the tile on to Django")

    settings.TILE_VERSION_SECONDS = 60
    x, y = tile_of(cells[4].center.x, cells[4].center.y, 16)
    path = f"/tiles/cells/16/{x}/{y}.pbf"
    view = client.get(path)  # rendered and cached in Redis
    fast = CellTileFastPath(django_only)
    assert _asgi_get(fast, path)[2] == view.content  # read from Redis, kept in the worker's memory
    cache.delete(cell_tile_key(version=grid_version(), datum="wgs84", tile=TileAddress(z=16, x=x, y=y)))
    assert _asgi_get(fast, path)[2] == view.content  # from memory: Redis no longer has it
    cache.delete(GRID_VERSION_KEY)  # a rebuild's new stamp is on its way
    assert _asgi_get(fast, path)[2] == view.content  # the stamp read is trusted for TILE_VERSION_SECONDS
    settings.TILE_VERSION_SECONDS = 0
    with pytest.raises(AssertionError):  # read again: no stamp, so Django answers (and makes one)
        _asgi_get(fast, path)


def test_tile_memory_drops_the_least_recently_used_past_its_size():
    from geo.tile_asgi import _TileMemory, tile_etag

    memory = _TileMemory(max_bytes=25)
    memory.put(("v", 16, 0, 0), b"a" * 10)
    memory.put(("v", 16, 0, 1), b"b" * 10)
    assert memory.get(("v", 16, 0, 0)) == (b"a" * 10, tile_etag(b"a" * 10).encode())  # now the most recent
    memory.put(("v", 16, 0, 2), b"c" * 10)
    assert memory.get(("v", 16, 0, 1)) is None
    assert [memory.get(("v", 16, 0, i)) is not None for i in (0, 2)] == [True, True]
    assert memory.size == 20


def test_tile_memory_holds_a_bounded_number_of_empty_tiles():
    from geo.tile_asgi import _TileMemory

    memory = _TileMemory(max_entries=3)
    for y in range(10):  # a crawl of addresses outside the grid: empty tiles
        memory.put(("v", 22, 0, y), b"")
    assert [memory.get(("v", 22, 0, y)) is not None for y in range(10)] == [False] * 7 + [True] * 3


def test_plain_cells_keep_a_clockwise_tile_ring_and_cut_cells_none(cells):
    from django.contrib.gis.geos import MultiPolygon, Polygon

    from geo.models import GridCell

    cut = cells[0]
    ring = list(cut.geom[0].exterior_ring.coords)
    midpoint = ((ring[0][0] + ring[1][0]) / 2, (ring[0][1] + ring[1][1]) / 2)
    cut.geom = MultiPolygon(Polygon([ring[0], midpoint, *ring[1:]]), srid=4326)  # 5 corners: not plain
    cut.save(update_fields=["geom"])
    small = cells[1]
    small.area_m2 = 8_000  # a strip of the cell, below TILE_PLAIN_CELL_M2
    small.save(update_fields=["area_m2"])
    with connection.cursor() as cur:
        cur.execute(
            "SELECT id, tile_ring IS NOT NULL, ST_IsPolygonCW(tile_ring), ST_Equals(tile_ring, ST_GeometryN(geom, 1))"
            " FROM geo_gridcell WHERE id = ANY(%s)",
            [[c.pk for c in cells]],
        )
        rows = {pk: rest for pk, *rest in cur.fetchall()}
    assert rows.pop(cut.pk) == [False, None, None]
    assert rows.pop(small.pk) == [False, None, None]
    assert set(map(tuple, rows.values())) == {(True, True, True)}
    assert GridCell.objects.filter(tile_ring__isnull=False).count() == 7
