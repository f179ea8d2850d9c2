"""Links that open a phone's map app on a point ("导航 / navigate").

The point is stored in WGS-84. The `geo:` URI (RFC 5870; Android hands it to whichever map app the phone
has) takes WGS-84. AMap's and Baidu's app links are read in GCJ-02 here (AMap `dev=0`: "the coordinates
are already offset"; Baidu `coord_type=gcj02`), so the conversion is done once, on the server, by
`geo.coords.wgs84_to_gcj02` — the browser never converts. All links are app schemes: nothing on the page
points at an outside web site.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from django.utils.translation import gettext as _

from geo.coords import wgs84_to_gcj02

# 6 decimals ≈ 0.1 m: finer than any phone's fix.
_DECIMALS = 6


def _deg(value: float) -> str:
    return f"{value:.{_DECIMALS}f}"


def navigation_links(*, lon: float, lat: float, label: str) -> list[dict]:
    """The links a face shows under "导航": [{"name", "label", "href"}], the phone's own map app first.
    `label` names the destination in the map app (the case code and address, say)."""
    glon, glat = wgs84_to_gcj02(lon, lat)
    wlat, wlon = _deg(lat), _deg(lon)
    amap = urlencode(
        {"dlat": _deg(glat), "dlon": _deg(glon), "dname": label, "dev": "0", "t": "0"},
        quote_via=quote,
    )
    baidu = urlencode(
        {
            "destination": f"latlng:{_deg(glat)},{_deg(glon)}|name:{label}",
            "coord_type": "gcj02",
            "mode": "driving",
            "src": "gridmgmt",
        },
        quote_via=quote,
    )
    return [
        {"name": "geo", "label": _("手机地图"), "href": f"geo:{wlat},{wlon}?q={wlat},{wlon}({quote(label)})"},
        {"name": "amap", "label": _("高德地图"), "href": f"amapuri://route/plan/?{amap}"},
        {"name": "baidu", "label": _("百度地图"), "href": f"baidumap://map/direction?{baidu}"},
    ]
