"""A tiny square district with its unit cells, built directly in degrees (no projection library needed)."""

import math

from django.contrib.gis.geos import MultiPolygon, Polygon

from geo.models import AdminArea, GridCell

M_PER_DEG_LAT = 110_574.0


def make_square_district(
    *,
    code: str = "310115",
    name: str = "浦东新区",
    name_en: str = "Pudong New Area",
    lon: float = 121.5,
    lat: float = 31.23,
    n: int = 3,
):
    """A district n × n 100 m cells wide, south-west corner at (lon, lat), with its cells.

    Degrees per 100 m are taken at `lat`, which is exact enough for display tests.
    """
    dlat = 100 / M_PER_DEG_LAT
    dlon = 100 / (111_320.0 * math.cos(math.radians(lat)))

    def box(x0: float, y0: float, x1: float, y1: float) -> MultiPolygon:
        return MultiPolygon(Polygon.from_bbox((x0, y0, x1, y1)), srid=4326)

    district = AdminArea.objects.create(
        code=code,
        name=name,
        name_en=name_en,
        level=AdminArea.Level.DISTRICT,
        boundary=box(lon, lat, lon + n * dlon, lat + n * dlat),
        area_m2=n * n * 10_000.0,
    )
    cells = []
    for row in range(n):  # rows count southwards
        for col in range(n):
            x0, y0 = lon + col * dlon, lat + (n - 1 - row) * dlat
            geom = box(x0, y0, x0 + dlon, y0 + dlat)
            cells.append(
                GridCell(
                    code=f"{code}001001{row:02d}{col:02d}",
                    geom=geom,
                    center=geom.centroid,
                    area_m2=10_000.0,
                    row=row,
                    col=col,
                    district=district,
                )
            )
    GridCell.objects.bulk_create(cells)
    return district, cells
