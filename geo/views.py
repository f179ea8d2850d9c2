from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.cache import get_conditional_response
from django.utils.translation import gettext as _

from geo import basemap, district_map, folium_offline, selectors, tile_asgi


def map_page(request: HttpRequest) -> HttpResponse:
    """Full-window district map: boundary (GeoJSON) and unit cells (vector tiles); ?district=<code>."""
    code = request.GET.get("district") or None
    district = district_map.district_for_map(code=code)
    if district is None:
        if code:
            message = _("找不到代码为 %(code)s 的区。") % {"code": code}
        else:
            message = _("数据库中还没有区级行政区域,请先导入边界(manage.py boundaries_import)。")
        return render(request, "geo/map_missing.html", {"message": message}, status=404)
    parts = folium_offline.render_parts(district_map.build_district_map(district))
    context = {
        "district": district,
        "district_name": district_map.display_name(district),
        "map": parts,
        "min_zoom": selectors.CELL_TILE_MIN_ZOOM,
    }
    return render(request, "geo/map.html", context)


def basemap_tile(request: HttpRequest, z: int, x: int, y: int, ext: str) -> HttpResponse:
    """One tile of the local MBTiles basemap (settings.BASEMAP_MBTILES)."""
    path = settings.BASEMAP_MBTILES
    if not path or ext not in basemap.CONTENT_TYPES or not 0 <= z <= 22 or not (0 <= x < 1 << z and 0 <= y < 1 << z):
        raise Http404
    data = basemap.mbtiles_tile(path, z=z, x=x, y=y)
    if data is None:
        raise Http404
    response = HttpResponse(data, content_type=basemap.CONTENT_TYPES[basemap.mbtiles_metadata(path).ext])
    if data[:2] == b"\x1f\x8b":  # vector MBTiles store gzipped tiles
        response["Content-Encoding"] = "gzip"
    response["Cache-Control"] = "public, max-age=86400"
    return response


def cell_tile(request: HttpRequest, z: int, x: int, y: int) -> HttpResponse:
    """Unit cells as a Mapbox Vector Tile, rendered by PostGIS (ST_AsMVT)."""
    try:
        tile = selectors.tile_address_parse(z=z, x=x, y=y)
    except selectors.TileOutOfRange as exc:
        return JsonResponse({"detail": str(exc)}, status=400, json_dumps_params={"ensure_ascii": False})
    # ?datum=gcj02: the cells where a GCJ-02 basemap shows them (the wall's and the map's URL carry it when
    # BASEMAP_DATUM=gcj02: geo.district_map.cell_tile_url_template).
    datum = "gcj02" if request.GET.get("datum") == "gcj02" else "wgs84"
    data = selectors.cell_tile_cached(tile=tile, datum=datum)
    # Cells change only on a grid rebuild; let browsers and proxies keep tiles for a while, then revalidate
    # with the tile's ETag (a 304 carries no body).
    etag = tile_asgi.tile_etag(data)  # the same as the ASGI fast path's (geo/tile_asgi.py)
    response = get_conditional_response(request, etag=etag) or HttpResponse(
        data, content_type="application/vnd.mapbox-vector-tile"
    )
    response["ETag"] = etag
    response["Cache-Control"] = "public, max-age=3600"
    return response
