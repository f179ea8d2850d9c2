"""An OpenLayers map widget for the admin that needs nothing from the internet.

Django's OpenLayersWidget/OSMWidget load ol.js from a public CDN and draw OpenStreetMap tiles. This one loads
the vendored OpenLayers (the version Django 5.2 links) and draws no basemap unless one is configured on
the intranet. OLMapWidget.js falls back to OSM when `base_layer` is falsy, so "no basemap" is an empty
vector layer, not null.
"""

from django.conf import settings
from django.contrib.gis.forms.widgets import OSMWidget


def admin_basemap_url() -> str:
    """A tile URL template for the admin map, or "" for none.

    Only a WGS-84 basemap is used: drawing on a GCJ-02 basemap would store geometry ~500 m off.
    """
    if (getattr(settings, "BASEMAP_DATUM", "") or "wgs84").lower() != "wgs84":
        return ""
    from geo import folium_offline

    basemap = folium_offline.configured_basemap()
    return basemap.url if basemap else ""


class OfflineMapWidget(OSMWidget):
    template_name = "geo/widgets/openlayers_offline.html"
    # An empty new geometry opens on Pudong rather than on (0, 0).
    default_lon = 121.54
    default_lat = 31.22
    default_zoom = 11

    class Media:
        extend = False  # drop the parent's CDN links
        css = {"all": ("vendor/ol/ol.css", "gis/css/ol3.css")}
        js = ("vendor/ol/ol.js", "gis/js/OLMapWidget.js")

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["basemap_url"] = admin_basemap_url()
        return context
