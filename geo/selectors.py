"""Reads of the spatial domain. Spatial work happens in PostGIS; these functions only shape the queries."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from uuid import uuid4

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

_CELL_TILE_SQL = """
WITH bounds AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS merc),
     box AS (SELECT merc, ST_Transform(merc, 4326) AS wgs FROM bounds),
     mvtgeom AS (
        SELECT c.id,
               ST_AsMVTGeom(ST_Transform(c.geom, 3857), box.merc, %(extent)s, %(buffer)s, true) AS geom,
               c.code
        FROM geo_gridcell c, box
        WHERE c.geom && box.wgs
     )
SELECT ST_AsMVT(mvtgeom, 'cells', %(extent)s, 'geom', 'id') FROM mvtgeom
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


def cell_tile_mvt(*, tile: TileAddress) -> bytes:
    """Unit cells of one XYZ tile as a Mapbox Vector Tile (layer `cells`), rendered by ST_AsMVT."""
    if tile.z < CELL_TILE_MIN_ZOOM:
        return b""
    # One tile is a few thousand cells at most: the planner's estimate for ST_AsMVTGeom makes it start
    # parallel workers, whose start-up (each loads PostGIS) costs more than the whole serial render
    # (z13, 1,840 cells: 20 ms parallel, 7 ms serial).
    with serial_queries(), connection.cursor() as cur:
        cur.execute(
            _CELL_TILE_SQL, {"z": tile.z, "x": tile.x, "y": tile.y, "extent": TILE_EXTENT, "buffer": TILE_BUFFER}
        )
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


def cell_tile_cached(*, tile: TileAddress) -> bytes:
    """cell_tile_mvt through the shared cache, keyed by the grid's version (one cache read when warm: no
    database access at all)."""
    if tile.z < CELL_TILE_MIN_ZOOM:
        return b""
    key = f"geo:cell-tile:{grid_version()}:{tile.z}/{tile.x}/{tile.y}"
    data = cache.get(key)
    if data is None:
        data = cell_tile_mvt(tile=tile)
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
