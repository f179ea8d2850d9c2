"""Pages and the static files they reference point at nothing outside this server (no browser needed).

The browser tests prove it at run time; these catch a CDN link as soon as a template or a folium class
gains one, in a few milliseconds, including pages no browser test opens.
"""

import re
from pathlib import Path
from urllib.parse import urlsplit

import folium
import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

from geo import folium_offline
from geo.widgets import OfflineMapWidget
from tests.geodata import make_square_district

LOCAL_HOSTS = {"127.0.0.1", "localhost", "testserver"}
# Namespace names, not resources: browsers never fetch them.
NAMESPACE_URLS = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink", "http://www.w3.org/1999/xhtml"}

ABSOLUTE_URL = re.compile(r"""(?:https?:)?//[^\s"'<>()\\`]+""", re.IGNORECASE)
# Where a URL makes the browser fetch something: attributes, CSS url(), @import.
FETCHING = re.compile(
    r"""(?:\b(?:src|href|action|poster|data)\s*=\s*["']?|url\(\s*["']?|@import\s+["'])((?:https?:)?//[^\s"')]+)""",
    re.IGNORECASE,
)
STATIC_REF = re.compile(r"""(?:src|href)\s*=\s*["'](""" + re.escape(settings.STATIC_URL) + r"""[^"'?#]+)""")
CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)""")


def outside_urls(text: str) -> list[str]:
    """Absolute or protocol-relative URLs to a host other than this server.

    In HTML every `http(s)://` counts, even in a plain link: an intranet page should not send people out.
    A bare `//` counts only where it fetches (attribute, url(), @import), as JS comments also start with //.
    """
    found = [u for u in ABSOLUTE_URL.findall(text) if u.lower().startswith(("http:", "https:"))]
    found += FETCHING.findall(text)
    return sorted({u for u in found if u.rstrip("/") not in NAMESPACE_URLS and urlsplit(u).hostname not in LOCAL_HOSTS})


def static_file(url_path: str) -> Path:
    found = finders.find(url_path.removeprefix(settings.STATIC_URL))
    assert found, f"{url_path} is referenced but not found by the static files finders"
    return Path(found)


def assert_offline(html: str) -> None:
    assert outside_urls(html) == []
    for ref in sorted(set(STATIC_REF.findall(html))):
        path = static_file(ref)
        if path.suffix not in {".css", ".js"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        # In JS only url(...) is checked: libraries carry attribution links for sources we never create.
        fetched = CSS_URL.findall(text)
        outside = [
            u for u in fetched if u.startswith(("http:", "https:", "//")) and urlsplit(u).hostname not in LOCAL_HOSTS
        ]
        assert outside == [], f"{ref} fetches from outside: {outside}"
        if path.suffix == ".css":  # relative url()s must exist, or the browser logs 404s
            for rel in CSS_URL.findall(text):
                if rel.startswith(("data:", "#", "/")):
                    continue
                target = (path.parent / rel.split("?")[0].split("#")[0]).resolve()
                assert target.exists(), f"{ref} refers to missing {rel}"


@pytest.fixture(autouse=True)
def _no_basemap(settings):
    settings.BASEMAP_URL = ""
    settings.BASEMAP_MBTILES = ""
    settings.BASEMAP_DATUM = "wgs84"


@pytest.fixture
def district(db):
    return make_square_district()


@pytest.fixture
def admin_client_zh(admin_client):
    admin_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    return admin_client


def test_outside_urls_finds_what_it_should():
    assert outside_urls('<script src="https://cdn.example.com/x.js">') == ["https://cdn.example.com/x.js"]
    assert outside_urls('<link href="//cdn.example.com/x.css">') == ["//cdn.example.com/x.css"]
    assert outside_urls("a{background:url(//tiles.example.com/a.png)}") == ["//tiles.example.com/a.png"]
    assert outside_urls('<a href="http://127.0.0.1:8000/map/">') == []
    assert outside_urls('<svg xmlns="http://www.w3.org/2000/svg">') == []
    assert outside_urls("// a comment in inline JS") == []


def test_every_folium_class_we_use_links_only_vendored_files():
    folium_offline.install()
    for cls in folium_offline.VENDORED:
        for _name, url in [*cls.default_js, *cls.default_css]:
            assert url.startswith(settings.STATIC_URL + "vendor/"), (cls.__name__, url)
            static_file(url)


def test_install_does_not_mutate_folium_shared_lists():
    # folium.Map.default_js starts as folium.folium._default_js; install() rebinds, never edits it.
    assert folium.folium._default_js[0][1].startswith("https://")
    assert folium.Map.default_js is not folium.folium._default_js


def test_home(client, db):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "城市网格化管理" in html and 'href="/map/"' in html and 'href="/admin/"' in html
    for face in ("/wall/", "/dispatch/", "/patrol/", "/report/"):
        assert f'href="{face}"' in html  # every face links once its URL exists
    assert_offline(html)


def test_map_page(client, district):
    response = client.get("/map/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "浦东新区单元网格地图" in html
    assert "L.vectorGrid.protobuf(\n                '/tiles/cells/{z}/{x}/{y}.pbf'" in html
    assert re.search(r'"geometry": \{"coordinates": \[\[\[', html)  # the boundary, as GeoJSON from PostGIS
    assert '"maxZoom": 19' in html
    assert_offline(html)


def test_map_page_picks_district_by_code(client, district):
    assert client.get("/map/?district=310115").status_code == 200
    response = client.get("/map/?district=999999")
    assert response.status_code == 404
    assert "找不到代码为 999999 的区" in response.content.decode()


def test_map_page_without_any_district_says_what_to_do(client, db):
    response = client.get("/map/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "boundaries_import" in html
    assert_offline(html)


def test_map_page_with_basemap_url_adds_that_layer(client, district, settings):
    settings.BASEMAP_URL = "/intranet-tiles/{z}/{x}/{y}.png"
    html = client.get("/map/").content.decode()
    assert 'L.tileLayer(\n                "/intranet-tiles/{z}/{x}/{y}.png"' in html


def test_map_page_on_gcj02_basemap_uses_the_gcj02_crs_and_keeps_data_wgs84(client, district, settings):
    wgs = client.get("/map/").content.decode()
    settings.BASEMAP_DATUM = "gcj02"
    gcj = client.get("/map/").content.decode()
    lon = lambda html: float(re.search(r'"coordinates": \[\[\[+([\d.]+)', html).group(1))  # noqa: E731
    # The boundary stays WGS-84 in the page: the map's CRS (static/js/gcj02-crs.js) shifts every layer alike.
    assert lon(gcj) == lon(wgs)
    assert "crs: L.CRS.EPSG3857" in wgs and "gcj02-crs.js" not in wgs
    assert "crs: L.CRS.GCJ02" in gcj and "/static/js/gcj02-crs.js" in gcj
    assert gcj.index("gcj02-crs.js") < gcj.index("crs: L.CRS.GCJ02")  # defined before the map is made
    assert "datum=gcj02" in gcj  # vector tiles, drawn past the CRS, are shifted by their endpoint
    assert_offline(gcj)


def test_admin_login_page(client, db):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert_offline(response.content.decode())


def test_admin_gridcell_change_page_has_offline_map_widget(admin_client_zh, district):
    _district, cells = district
    response = admin_client_zh.get(f"/admin/geo/gridcell/{cells[0].pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/vendor/ol/ol.js" in html and "cdn.jsdelivr.net" not in html
    assert "new ol.layer.Vector({source: new ol.source.Vector()})" in html  # no basemap
    assert "ol.source.OSM" not in html
    assert_offline(html)


def test_admin_widget_uses_wgs84_basemap_only(settings):
    widget = OfflineMapWidget()
    settings.BASEMAP_URL = "/intranet-tiles/{z}/{x}/{y}.png"
    assert widget.get_context("geom", None, {})["basemap_url"] == settings.BASEMAP_URL
    settings.BASEMAP_DATUM = "gcj02"  # drawing on a shifted basemap would store shifted geometry
    assert widget.get_context("geom", None, {})["basemap_url"] == ""


@pytest.mark.parametrize(
    "model",
    [
        "geo/adminarea",
        "geo/gridcell",
        "geo/responsibilitygrid",
        "geo/camera",
        "geo/component",
        "gridmgmt/department",
        "gridmgmt/category",
        "gridmgmt/patrolteam",
        "gridmgmt/user",
        "gridmgmt/case",
        "gridmgmt/caseevent",
        "realtime/feedevent",
    ],
)
def test_admin_changelists_and_add_pages_render_offline(admin_client_zh, district, model):
    response = admin_client_zh.get(f"/admin/{model}/")
    assert response.status_code == 200
    assert_offline(response.content.decode())
    add = admin_client_zh.get(f"/admin/{model}/add/")
    # Events, the feed and cases are view-only (a case is made by intake and moved by the services).
    assert add.status_code == (403 if model in ("gridmgmt/case", "gridmgmt/caseevent", "realtime/feedevent") else 200)
    if add.status_code == 200:
        assert_offline(add.content.decode())


def test_caseevent_admin_is_read_only(admin_client_zh, district):
    from django.contrib import admin

    from gridmgmt.models import CaseEvent

    model_admin = admin.site._registry[CaseEvent]
    request = admin_client_zh.get("/admin/").wsgi_request
    assert model_admin.has_view_permission(request)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


@pytest.mark.parametrize("url", ["/admin/geo/gridcell/", "/admin/gridmgmt/case/", "/admin/geo/adminarea/"])
def test_admin_changelists_do_not_load_boundaries(admin_client_zh, district, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert admin_client_zh.get(url).status_code == 200
    assert [q["sql"] for q in queries.captured_queries if '"boundary"' in q["sql"]] == []


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/report/", None),
        ("/report/track/20260101-0000001", None),
        ("/accounts/login/", None),
        ("/patrol/", "patrol"),
        ("/wall/", "wall"),
        ("/dispatch/", "dispatcher"),
    ],
)
def test_faces_render_offline(client, district, path, role):
    from tests.factories import UserFactory

    if role:
        client.force_login(UserFactory(username=f"offline-{role}", role=role))
    response = client.get(path)
    assert response.status_code == 200
    assert_offline(response.content.decode())


def test_feedevent_admin_is_read_only_and_searchable(admin_client_zh, district):
    assert admin_client_zh.get("/admin/realtime/feedevent/?q=abc").status_code == 200
    assert admin_client_zh.get("/admin/realtime/feedevent/?q=12").status_code == 200
    assert admin_client_zh.post("/admin/realtime/feedevent/add/", {}).status_code == 403
