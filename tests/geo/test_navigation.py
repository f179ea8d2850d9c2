"""The "导航" links: the geo: URI in WGS-84, the AMap and Baidu app links in GCJ-02 (converted on the server)."""

import pytest

from geo import coords
from geo.navigation import navigation_links


def test_wgs84_to_gcj02_matches_the_published_pair():
    # wandergis/coordtransform (test/app.js): wgs84togcj02(116.404, 39.915) → [116.41024449916938, 39.91640428150164]
    lon, lat = coords.wgs84_to_gcj02(116.404, 39.915)
    assert lon == pytest.approx(116.41024449916938, abs=1e-9)
    assert lat == pytest.approx(39.91640428150164, abs=1e-9)


def test_links_carry_wgs84_for_geo_and_gcj02_for_the_map_apps():
    links = navigation_links(lon=116.404, lat=39.915, label="20261128 浦东大道(东)")
    assert links == [
        {
            "name": "geo",
            "label": "手机地图",
            "href": "geo:39.915000,116.404000?q=39.915000,116.404000"
            "(20261128%20%E6%B5%A6%E4%B8%9C%E5%A4%A7%E9%81%93%28%E4%B8%9C%29)",
        },
        {
            "name": "amap",
            "label": "高德地图",
            "href": "amapuri://route/plan/?dlat=39.916404&dlon=116.410244"
            "&dname=20261128%20%E6%B5%A6%E4%B8%9C%E5%A4%A7%E9%81%93%28%E4%B8%9C%29&dev=0&t=0",
        },
        {
            "name": "baidu",
            "label": "百度地图",
            "href": "baidumap://map/direction?destination=latlng%3A39.916404%2C116.410244%7Cname%3A20261128%20"
            "%E6%B5%A6%E4%B8%9C%E5%A4%A7%E9%81%93%28%E4%B8%9C%29&coord_type=gcj02&mode=driving&src=gridmgmt",
        },
    ]


def test_outside_china_the_map_apps_get_the_point_unchanged():
    links = {link["name"]: link["href"] for link in navigation_links(lon=2.2945, lat=48.8584, label="x")}
    assert links["amap"] == "amapuri://route/plan/?dlat=48.858400&dlon=2.294500&dname=x&dev=0&t=0"
