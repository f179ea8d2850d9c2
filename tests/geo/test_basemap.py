"""The optional local basemap: tiles read from an MBTiles file (TMS rows) and its layer on /map/."""

import sqlite3

import pytest

from geo import basemap
from tests.geodata import make_square_district

PNG = b"\x89PNG\r\n\x1a\nfake"


@pytest.fixture
def mbtiles(tmp_path, settings):
    path = tmp_path / "base.mbtiles"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        conn.execute("CREATE TABLE tiles (zoom_level INT, tile_column INT, tile_row INT, tile_data BLOB)")
        conn.executemany(
            "INSERT INTO metadata VALUES (?, ?)",
            [("format", "png"), ("minzoom", "10"), ("maxzoom", "17"), ("attribution", "内网底图")],
        )
        # XYZ z=2 x=1 y=0 (the northern row) is TMS row 3.
        conn.execute("INSERT INTO tiles VALUES (2, 1, 3, ?)", (PNG,))
    conn.close()
    settings.BASEMAP_MBTILES = str(path)
    settings.BASEMAP_URL = ""
    settings.BASEMAP_DATUM = "wgs84"
    return path


def test_tile_is_read_with_tms_row_flip(client, mbtiles):
    response = client.get("/tiles/basemap/2/1/0.png")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response.content == PNG
    assert client.get("/tiles/basemap/2/1/3.png").status_code == 404  # that row holds no tile


@pytest.mark.parametrize("path", ["/tiles/basemap/2/4/0.png", "/tiles/basemap/99/0/0.png", "/tiles/basemap/2/1/0.exe"])
def test_bad_addresses_are_404(client, mbtiles, path):
    assert client.get(path).status_code == 404


def test_no_mbtiles_configured_is_404(client, settings):
    settings.BASEMAP_MBTILES = ""
    assert client.get("/tiles/basemap/2/1/0.png").status_code == 404


def test_metadata(mbtiles):
    meta = basemap.mbtiles_metadata(str(mbtiles))
    assert (meta.ext, meta.min_zoom, meta.max_zoom, meta.attribution) == ("png", 10, 17, "内网底图")


def test_map_page_uses_mbtiles_basemap(client, db, mbtiles):
    make_square_district()
    html = client.get("/map/").content.decode()
    assert '"/tiles/basemap/{z}/{x}/{y}.png"' in html
    assert '"maxNativeZoom": 17' in html
    assert "\\u5185\\u7f51\\u5e95\\u56fe" in html  # the file's own attribution, JSON-escaped
