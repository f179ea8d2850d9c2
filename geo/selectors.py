"""Reads of the spatial domain. Spatial work happens in PostGIS; these functions only shape the queries."""

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from uuid import uuid4

import numpy as np
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import BooleanField, FloatField, QuerySet
from django.db.models.expressions import RawSQL

from geo.models import Speaker

# Below this zoom a tile would hold tens of thousands of cells; the map shows areas instead.
CELL_TILE_MIN_ZOOM = 13
# 1024 units on a 256 px tile: 4 units a pixel, enough for 2× screens; the buffer (16 units, 4 px) only has
# to hide the cell outlines' joins at tile edges. Against 4096/64: z16 tiles ~15 % smaller (bench/tiles.py).
TILE_EXTENT = 1024
TILE_BUFFER = 16
# Rendered tiles are cached (the shared cache, so every worker sees them) under the grid's version stamp,
# which geo.services.grid_build replaces after a rebuild commits: old tiles are never served again and
# expire on their own.
GRID_VERSION_KEY = "geo:grid-version"
TILE_CACHE_SECONDS = 7 * 24 * 3600

# The tile SQL, hand-written: bench/tiles.py (README, "Cell tiles against tipg") measured a z13 tile of Pudong
# (1,848 cells) at ~40 ms in PostgreSQL when every cell went ST_Transform → ST_AsMVTGeom with `id` and `code`
# properties: ~5 ms of PROJ, ~25 ms of ST_AsMVTGeom's clipping and validation (wagyu) and ~10 ms of ST_AsMVT
# hashing one unique code and id per feature. Now ~4.4 ms (z14 1.0 ms, z15 0.4 ms, z16 0.17 ms):
# - one affine map per tile takes WGS-84 degrees straight to tile units (cell_tile_affine: Web Mercator
#   linearised at the tile's centre, ≤ 0.25 m off across a z13 tile, 1/20 of a unit), so no PROJ per vertex;
# - a "plain" cell — 4 corners and ≥ geo.models.TILE_PLAIN_CELL_M2, i.e. a 100 m square less at most a thin
#   strip, every side ≥ ~80 m (≥ 16 units at z13) — stays a valid ring when its corners are snapped to whole
#   units, so it skips ST_AsMVTGeom: its GridCell.tile_ring, kept by PostgreSQL already oriented for the y-down
#   map, is only mapped and snapped (exterior ring clockwise in tile units, y down, as MVT wants). It
#   is not clipped either: a cell on the tile's edge reaches at most one cell past it (MVT allows coordinates
#   outside the extent; renderers clip). That is 98 % of Pudong's cells; the rest, cut by community
#   boundaries, go through ST_AsMVTGeom as before (mapped to tile units with y up, the box being the tile);
# - the features carry the cell id once, as the MVT feature id, and nothing else: the maps draw outlines and
#   the wall shades a cell by its id (static/js/faces/wall.js), nothing reads a code from a tile.
# The cells are picked by the tile's box in degrees (for a GCJ-02 basemap: moved back by the shift at its
# centre, widened by `margin`), on the geom column's GiST index.
CELL_TILE_SQL = """
SELECT ST_AsMVT(mvtgeom, 'cells', %(extent)s, 'geom', 'id') FROM (
    SELECT c.id,
           CASE WHEN c.tile_ring IS NOT NULL
                THEN ST_SnapToGrid(ST_Affine(c.tile_ring, %(a)s, %(b)s, %(d)s, %(e)s, %(xoff)s, %(yoff)s), 1)
                ELSE ST_AsMVTGeom(ST_Affine(c.geom, %(a)s, %(b)s, %(d_up)s, %(e_up)s, %(xoff)s, %(yoff_up)s),
                                  ST_MakeEnvelope(0, 0, %(extent)s, %(extent)s), %(extent)s, %(buffer)s, true)
           END AS geom
    FROM geo_gridcell c
    WHERE c.geom && ST_MakeEnvelope(%(west)s, %(south)s, %(east)s, %(north)s, 4326)
) mvtgeom
"""


@contextmanager
def serial_queries() -> Iterator[None]:
    """A transaction whose queries run without parallel workers: for reads of a few milliseconds, which a
    web request makes while others run, starting workers costs more than it saves (SET LOCAL: this
    transaction only, so a pooled connection goes back unchanged)."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        yield


@dataclass(frozen=True)
class TileAddress:
    z: int
    x: int
    y: int


class TileOutOfRange(ValueError):
    pass


def tile_address_parse(*, z: int, x: int, y: int) -> TileAddress:
    if not 0 <= z <= 22:
        raise TileOutOfRange(f"缩放级别 z={z} 超出范围 0–22 (zoom out of range)")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise TileOutOfRange(f"瓦片坐标 x={x}, y={y} 超出 z={z} 的范围 0–{n - 1} (tile out of range)")
    return TileAddress(z=z, x=x, y=y)


def tile_center(tile: TileAddress) -> tuple[float, float]:
    """(lon, lat) of an XYZ tile's centre (Web Mercator)."""
    n = 1 << tile.z
    lon = (tile.x + 0.5) / n * 360.0 - 180.0
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (tile.y + 0.5) / n))))
    return lon, lat


@dataclass(frozen=True)
class DatumShift:
    """x' = a·x + b·y + xoff, y' = d·x + e·y + yoff (degrees): WGS-84 → the basemap's datum within one tile;
    (dlon, dlat) is the shift at the tile's centre."""

    a: float = 1.0
    b: float = 0.0
    d: float = 0.0
    e: float = 1.0
    xoff: float = 0.0
    yoff: float = 0.0
    dlon: float = 0.0
    dlat: float = 0.0


def tile_datum_shift(*, tile: TileAddress, datum: str) -> DatumShift:
    """How to move WGS-84 data onto a basemap of `datum` within this tile: for GCJ-02 its offset at the tile's
    centre and the offset's first derivatives there (geo.coords, by central differences), as one affine map.
    The offset itself varies by up to ~10 m across a z13 tile (its short sine terms) — half a pixel at every
    zoom, and a visible seam between tiles; linearised, what is left is ~1 m at a z13 tile's corner (1/20 px).
    The identity for WGS-84."""
    if datum != "gcj02":
        return DatumShift()
    from geo.coords import wgs84_to_gcj02

    lon, lat = tile_center(tile)
    h = 360.0 / (1 << tile.z) / 4  # a quarter of the tile's width
    lons = np.array([lon, lon + h, lon - h, lon, lon])
    lats = np.array([lat, lat, lat, lat + h, lat - h])
    glon, glat = wgs84_to_gcj02(lons, lats)
    dlon, dlat = glon - lons, glat - lats  # the offset at the centre and four neighbours
    dx_dlon, dy_dlon = (dlon[1] - dlon[2]) / (2 * h), (dlat[1] - dlat[2]) / (2 * h)
    dx_dlat, dy_dlat = (dlon[3] - dlon[4]) / (2 * h), (dlat[3] - dlat[4]) / (2 * h)
    a, b, d, e = 1 + dx_dlon, dx_dlat, dy_dlon, 1 + dy_dlat
    # The map sends the centre to centre + offset: xoff = lon + dlon − a·lon − b·lat (and the same for y).
    xoff = lon + dlon[0] - a * lon - b * lat
    yoff = lat + dlat[0] - d * lon - e * lat
    return DatumShift(
        a=float(a),
        b=float(b),
        d=float(d),
        e=float(e),
        xoff=float(xoff),
        yoff=float(yoff),
        dlon=float(dlon[0]),
        dlat=float(dlat[0]),
    )


@dataclass(frozen=True)
class TileAffine:
    """u = a·lon + b·lat + xoff, v = d·lon + e·lat + yoff: WGS-84 degrees → one tile's units (0…TILE_EXTENT,
    y down), with the datum shift folded in; and the tile's box in WGS-84 degrees that holds its cells."""

    a: float
    b: float
    d: float
    e: float
    xoff: float
    yoff: float
    west: float
    south: float
    east: float
    north: float


_MERCATOR_R = 6378137.0  # EPSG:3857's sphere


def cell_tile_affine(*, tile: TileAddress, datum: str = "wgs84") -> TileAffine:
    """The one affine map cell_tile_mvt applies to every vertex of a tile: the datum shift (tile_datum_shift,
    in degrees), then Web Mercator scaled to tile units. Mercator's x is linear in longitude; its y,
    ln tan(π/4 + φ/2), is linearised at the tile's centre (its derivative there is sec φ): the curvature leaves
    ≤ 0.25 m at a z13 tile's edge at Shanghai's latitude (1/20 of a unit), less at higher zooms."""
    n = 1 << tile.z
    units = TILE_EXTENT * n / (2 * math.pi * _MERCATOR_R)  # tile units per Mercator metre at this zoom
    lon_c, lat_c = tile_center(tile)
    kx = units * _MERCATOR_R * math.pi / 180  # units per degree of longitude
    ky = kx / math.cos(math.radians(lat_c))  # units per degree of latitude at the centre
    # u = kx·(lon − lon_c) + E/2, v = E/2 − ky·(lat − lat_c), after the shift (lon', lat') = S·(lon, lat) + t
    s = tile_datum_shift(tile=tile, datum=datum)
    half = TILE_EXTENT / 2
    north = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * tile.y / n))))
    south = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (tile.y + 1) / n))))
    # the data that lands in this tile: its box moved back by the shift at the centre, widened by ~30 m for
    # GCJ-02 (the shift varies ~10 m across a tile)
    margin = 0.0003 if datum == "gcj02" else 0.0
    return TileAffine(
        a=kx * s.a,
        b=kx * s.b,
        xoff=kx * (s.xoff - lon_c) + half,
        d=-ky * s.d,
        e=-ky * s.e,
        yoff=half - ky * (s.yoff - lat_c),
        west=tile.x / n * 360.0 - 180.0 - s.dlon - margin,
        east=(tile.x + 1) / n * 360.0 - 180.0 - s.dlon + margin,
        south=south - s.dlat - margin,
        north=north - s.dlat + margin,
    )


def cell_tile_params(*, tile: TileAddress, datum: str = "wgs84") -> dict[str, float]:
    """CELL_TILE_SQL's parameters for one tile (geo/tile_asgi.py runs the same query)."""
    m = cell_tile_affine(tile=tile, datum=datum)
    return {
        "extent": TILE_EXTENT,
        "buffer": TILE_BUFFER,
        "a": m.a,
        "b": m.b,
        "d": m.d,
        "e": m.e,
        "xoff": m.xoff,
        "yoff": m.yoff,
        # ST_AsMVTGeom's input: y up, its box the tile (0…extent)
        "d_up": -m.d,
        "e_up": -m.e,
        "yoff_up": TILE_EXTENT - m.yoff,
        "west": m.west,
        "south": m.south,
        "east": m.east,
        "north": m.north,
    }


def cell_tile_mvt(*, tile: TileAddress, datum: str = "wgs84") -> bytes:
    """Unit cells of one XYZ tile as a Mapbox Vector Tile (layer `cells`, each feature's id the cell's id),
    rendered by ST_AsMVT; `datum` "gcj02" draws them where a GCJ-02 basemap shows them (tile_datum_shift),
    the data staying WGS-84."""
    if tile.z < CELL_TILE_MIN_ZOOM:
        return b""
    # One tile is a few thousand cells at most: the planner's estimate for ST_AsMVTGeom makes it start
    # parallel workers, whose start-up (each loads PostGIS) costs more than the whole serial render
    # (z13, 1,840 cells: 20 ms parallel, 7 ms serial). SET LOCAL and the tile go as one simple query (Django's
    # psycopg cursors bind parameters client-side), which PostgreSQL runs as one implicit transaction: one
    # round trip instead of four (BEGIN, SET LOCAL, the tile, COMMIT), as serial_queries would take.
    with connection.cursor() as cur:
        cur.execute(
            "SET LOCAL max_parallel_workers_per_gather = 0; " + CELL_TILE_SQL, cell_tile_params(tile=tile, datum=datum)
        )
        cur.nextset()  # the tile's result, after SET's
        row = cur.fetchone()
    return bytes(row[0]) if row and row[0] else b""


def grid_version() -> str:
    """The grid's version stamp (a random token; a missing one is made anew, so a flushed cache can never bring
    back tiles of an older grid)."""
    version = cache.get(GRID_VERSION_KEY)
    if version is None:
        version = uuid4().hex[:16]
        if not cache.add(GRID_VERSION_KEY, version, timeout=None):  # another worker made it first
            version = cache.get(GRID_VERSION_KEY) or version
    return version


def cell_tile_key(*, version: str, datum: str, tile: TileAddress) -> str:
    """The shared cache's key of a rendered cell tile (geo/tile_asgi.py reads the same)."""
    return f"geo:cell-tile:{version}:{datum}:{tile.z}/{tile.x}/{tile.y}"


def cell_tile_cached(*, tile: TileAddress, datum: str = "wgs84") -> bytes:
    """cell_tile_mvt through the shared cache, keyed by the grid's version and the datum (one cache read when
    warm: no database access at all). geo/tile_asgi.py reads and writes the same keys for plain tiles."""
    if tile.z < CELL_TILE_MIN_ZOOM:
        return b""
    key = cell_tile_key(version=grid_version(), datum=datum, tile=tile)
    data = cache.get(key)
    if data is None:
        data = cell_tile_mvt(tile=tile, datum=datum)
        cache.set(key, data, TILE_CACHE_SECONDS)
    return data


@dataclass(frozen=True)
class CellRef:
    """What intake needs of the cell a point falls in: its ids, no geometry."""

    id: int
    code: str
    district_id: int
    street_id: int | None
    community_id: int | None
    responsibility_grid_id: int | None


_LOCATE_SQL = """
    SELECT id, code, district_id, street_id, community_id, responsibility_grid_id
    FROM geo_gridcell
    WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))
    ORDER BY code
    LIMIT 1
"""


def cell_locate(*, lon: float, lat: float) -> CellRef | None:
    """The unit cell holding a WGS-84 point. A point on a shared edge or corner belongs to the cell with the
    smallest code among those covering it, so every point maps to exactly one cell, deterministically.

    One index-assisted statement returning ids only, hand-written because it is measured: bench/intake.py
    times this function, the same lookup through the ORM (`GridCell.objects.filter(geom__covers=point)
    .order_by("code").values_list(...).first()`) and a raw prepared ST_Covers over the same 5,000 points in
    one run. Target ≤ 1.5× the raw query; on the shared 2-core machine (issue 8): this function 1.32–1.63×,
    the ORM version 5.7–11.7× (1.2–3.5 ms a lookup, nearly all of it query building). It runs on the
    driver's cursor, in the same connection and transaction, with Django's error translation but not its
    cursor wrapper (query logging and execute wrappers: 15 µs of a 0.12 ms lookup), so it does not show in
    `connection.queries`."""
    lon, lat = float(lon), float(lat)
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.cursor() as cur:
        cur.execute(_LOCATE_SQL, (lon, lat))
        row = cur.fetchone()
    return CellRef(*row) if row else None


_CELL_GEOM = "(SELECT geom FROM geo_gridcell WHERE id = %s)"
# Degrees that span at least 1 m east–west up to ~63° latitude: the bounding-box prefilter of speakers_near.
_DEG_PER_M = 1 / 50_000


def speakers_near(*, speakers: QuerySet[Speaker], cell_id: int, radius_m: float, limit: int) -> list[Speaker]:
    """The active speakers of `speakers` within `radius_m` metres of a cell (0: inside it), nearest first, at most
    `limit`, each with `distance_m`. One statement: a bounding-box `&&` on the spatial index of the location,
    then ST_DWithin / ST_Distance on geography (metres)."""
    within = RawSQL(
        f"geo_speaker.location && ST_Expand({_CELL_GEOM}, %s) "
        f"AND ST_DWithin(geo_speaker.location::geography, {_CELL_GEOM}::geography, %s)",
        [cell_id, radius_m * _DEG_PER_M, cell_id, radius_m],
        output_field=BooleanField(),
    )
    distance = RawSQL(
        f"ST_Distance(geo_speaker.location::geography, {_CELL_GEOM}::geography)", [cell_id], output_field=FloatField()
    )
    qs = speakers.filter(within, is_active=True).annotate(distance_m=distance).order_by("distance_m", "code")
    return list(qs[:limit])


@dataclass(frozen=True)
class GridQuality:
    cells: int
    cells_area_m2: float
    district_area_m2: float
    max_cell_m2: float
    invalid: int
    overlapping_pairs: int | None

    @property
    def area_ratio(self) -> float:
        return self.cells_area_m2 / self.district_area_m2 if self.district_area_m2 else 0.0


def grid_quality(*, district_id: int, overlaps: bool = True) -> GridQuality:
    """Areas measured in EPSG:32651; overlaps = neighbouring pairs sharing more than 0.01 m²."""
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT count(*), coalesce(sum(ST_Area(ST_Transform(c.geom, 32651))), 0),
                   coalesce(max(ST_Area(ST_Transform(c.geom, 32651))), 0),
                   count(*) FILTER (WHERE NOT ST_IsValid(c.geom)),
                   (SELECT ST_Area(ST_Transform(boundary, 32651)) FROM geo_adminarea WHERE id = %(d)s)
            FROM geo_gridcell c WHERE c.district_id = %(d)s
            """,
            {"d": district_id},
        )
        cells, total, largest, invalid, district_area = cur.fetchone()
    pairs = _overlapping_pairs(district_id=district_id) if overlaps else None
    return GridQuality(
        cells=cells,
        cells_area_m2=total,
        district_area_m2=district_area or 0.0,
        max_cell_m2=largest,
        invalid=invalid,
        overlapping_pairs=pairs,
    )


def _overlapping_pairs(*, district_id: int) -> int:
    """Pairs of cells whose interiors share more than 0.01 m². Analysis in shapely (STRtree + vectorised
    predicates): 4 s for Pudong, where the equivalent pairwise ST_Relate join took almost 5 minutes."""
    import shapely

    with connection.cursor() as cur:
        cur.execute(
            "SELECT ST_AsBinary(ST_Transform(geom, 32651)) FROM geo_gridcell WHERE district_id = %s", [district_id]
        )
        geoms = shapely.from_wkb([bytes(r[0]) for r in cur.fetchall()])
    if len(geoms) < 2:
        return 0
    a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    interior = shapely.relate_pattern(geoms[a], geoms[b], "T********")
    a, b = a[interior], b[interior]
    return int((shapely.area(shapely.intersection(geoms[a], geoms[b])) > 0.01).sum())
