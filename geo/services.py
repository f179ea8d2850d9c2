"""Writes of the spatial domain. Keyword-only, typed; set-based (COPY / one SQL statement), never a save() per row."""

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import numpy as np
import shapely
from django.core.cache import cache
from django.db import connection, transaction
from psycopg.copy import QueuedLibpqWriter
from pyproj import Transformer

from geo.coords import DATUM_TO_WGS84, transform_geometry
from geo.grid import CELL_MAX_M2, SLIVER_M2, Region, grid_bounds, grid_generate
from geo.models import UTM_SRID, AdminArea, GridCell, ResponsibilityGrid, Speaker
from geo.selectors import GRID_VERSION_KEY, cell_locate

BUNDLED_BOUNDARIES = Path(__file__).resolve().parent / "data" / "shanghai_boundaries_gcj02.geojson"
_TO_WGS84 = Transformer.from_crs(UTM_SRID, 4326, always_xy=True)
_TO_UTM = Transformer.from_crs(4326, UTM_SRID, always_xy=True)

Progress = Callable[[str, int, int], None]


def _no_progress(step: str, done: int, total: int) -> None:
    pass


def _to_utm(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(_TO_UTM.transform(xy[:, 0], xy[:, 1])))


def _to_wgs84(geoms):
    return shapely.transform(geoms, lambda xy: np.column_stack(_TO_WGS84.transform(xy[:, 0], xy[:, 1])))


def _multi(geom):
    return shapely.multipolygons([geom]) if shapely.get_type_id(geom) == 3 else geom


@dataclass
class BoundariesResult:
    created: int
    updated: int


@transaction.atomic
def boundaries_import(*, path: Path = BUNDLED_BOUNDARIES, datum: str = "gcj02") -> BoundariesResult:
    """Import city/district boundaries (adcode, name, level) from GeoJSON, converting the datum to WGS-84.

    Idempotent: rows are matched by code and updated in place.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    to_wgs84 = DATUM_TO_WGS84[datum]
    features = sorted(data["features"], key=lambda f: (f["properties"]["level"] != "city", f["properties"]["adcode"]))
    created = updated = 0
    city: AdminArea | None = None
    for feature in features:  # 17 features: one row each is the clear way here
        props = feature["properties"]
        geom = transform_geometry(shapely.geometry.shape(feature["geometry"]), to_wgs84)
        if not geom.is_valid:  # the datum shift can pinch a vertex of third-party data
            geom = shapely.make_valid(geom)
        geom = _multi(geom)
        level = AdminArea.Level.CITY if props["level"] == "city" else AdminArea.Level.DISTRICT
        area, was_created = AdminArea.objects.update_or_create(
            code=props["adcode"],
            defaults={
                "name": props["name"],
                "level": level,
                "parent": None if level == AdminArea.Level.CITY else city,
                "boundary": geom.wkt,
                "area_m2": float(_to_utm(geom).area),
            },
        )
        if level == AdminArea.Level.CITY:
            city = area
        created += was_created
        updated += not was_created
    return BoundariesResult(created=created, updated=updated)


@dataclass
class SynthResult:
    streets: int
    communities: int
    skipped: bool = False


def _block_regions(geom_utm, *, block_m: float):
    """Grid-aligned block_m squares clipped to geom_utm; returns (pieces, row, col) in north-west order."""
    from geo.grid import _polygonal, squares_covering

    squares, row, col = squares_covering(geom_utm.bounds, block_m)
    shapely.prepare(geom_utm)
    hit = shapely.intersects(geom_utm, squares)
    pieces = _polygonal(shapely.intersection(geom_utm, squares[hit]))
    ok = np.array([p is not None for p in pieces])
    # Vertices every 100 m: the cells' edges then share the block's vertices exactly in WGS-84 too
    # (a straight UTM line is not straight in lon/lat, so long edges would drift by a fraction of a mm).
    return _polygonal(shapely.segmentize(pieces[ok], 100.0)), row[hit][ok], col[hit][ok]


_SYNTHETIC_NAMES = {  # level → (name, name_en), formatted with the parent area and the 1-based index
    AdminArea.Level.STREET: ("演示街镇{i:02d}", "Demo town {i:02d}"),
    AdminArea.Level.COMMUNITY: ("{parent.name}第{i}社区", "{parent.name_en} community {i}"),
}


def _synthetic_area(parent: AdminArea, level: str, index: int, *, wgs, utm) -> AdminArea:
    """The unsaved demo area number `index` below `parent`: boundary `wgs` (WGS 84), area measured on `utm`."""
    name, name_en = (pattern.format(parent=parent, i=index) for pattern in _SYNTHETIC_NAMES[level])
    return AdminArea(
        code=f"{parent.code}{index:03d}",
        name=name,
        name_en=name_en,
        level=level,
        parent=parent,
        boundary=wgs.wkt,
        area_m2=float(utm.area),
        is_synthetic=True,
    )


@transaction.atomic
def areas_synthesize(*, district_code: str, street_km: float = 6.0, community_km: float = 1.0) -> SynthResult:
    """Demo only: grid-aligned synthetic streets/towns and communities (flagged is_synthetic).

    Real boundaries come from `gis_import areas`. Blocks align with the 100 m grid, so no cell crosses them.
    """
    district = AdminArea.objects.get(code=district_code, level=AdminArea.Level.DISTRICT)
    if AdminArea.objects.filter(parent=district).exists():
        return SynthResult(streets=0, communities=0, skipped=True)
    geom_utm = _to_utm(shapely.from_wkb(bytes(district.boundary.wkb)))
    streets, _, _ = _block_regions(geom_utm, block_m=street_km * 1000)
    street_rows = []
    community_rows = []
    for s_i, street_geom in enumerate(streets, start=1):
        street_rows.append(
            _synthetic_area(district, AdminArea.Level.STREET, s_i, wgs=_to_wgs84(street_geom), utm=street_geom)
        )
        comms, _, _ = _block_regions(street_geom, block_m=community_km * 1000)
        community_rows.append(comms)
    AdminArea.objects.bulk_create(street_rows)
    rows = []
    for street, comms in zip(street_rows, community_rows, strict=True):
        wgs = _to_wgs84(comms)
        for c_i, (utm_geom, wgs_geom) in enumerate(zip(comms, wgs, strict=True), start=1):
            rows.append(_synthetic_area(street, AdminArea.Level.COMMUNITY, c_i, wgs=_multi(wgs_geom), utm=utm_geom))
    AdminArea.objects.bulk_create(rows, batch_size=1000)
    return SynthResult(streets=len(street_rows), communities=len(rows))


@dataclass
class GridBuildResult:
    cells: int
    area_m2: float
    district_area_m2: float
    skipped: bool = False


def _regions_for(district: AdminArea) -> tuple[list[Region], dict[int, tuple[int | None, int | None]]]:
    """Cells are clipped to communities where they exist (a cell never crosses one), else to the district."""
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT c.id, c.code, s.id, ST_AsBinary(ST_Transform(c.boundary, %s))
            FROM geo_adminarea c JOIN geo_adminarea s ON s.id = c.parent_id
            WHERE c.level = 'community' AND s.parent_id = %s ORDER BY c.code
            """,
            [UTM_SRID, district.id],
        )
        rows = cur.fetchall()
        if not rows:
            cur.execute(
                "SELECT id, code, NULL, ST_AsBinary(ST_Transform(boundary, %s)) FROM geo_adminarea WHERE id = %s",
                [UTM_SRID, district.id],
            )
            rows = cur.fetchall()
    regions = [Region(key=r[0], code=r[1], geom=shapely.from_wkb(bytes(r[3]))) for r in rows]
    parents = {r[0]: ((r[2], r[0]) if r[2] is not None else (None, None)) for r in rows}
    return regions, parents


def grid_build(
    *,
    district_code: str,
    size: float = 100.0,
    sliver_m2: float = SLIVER_M2,
    rebuild: bool = False,
    progress: Progress = _no_progress,
) -> GridBuildResult:
    """Cover a district with `size` m square cells (UTM 51N), clipped to its communities, coded and stored by COPY."""
    district = AdminArea.objects.get(code=district_code, level=AdminArea.Level.DISTRICT)
    existing = GridCell.objects.filter(district=district)
    if existing.exists() and not rebuild:
        return GridBuildResult(cells=existing.count(), area_m2=0.0, district_area_m2=district.area_m2, skipped=True)
    progress("regions", 0, 1)
    regions, parents = _regions_for(district)
    bounds = grid_bounds(regions)

    def batch_text(batch: list[Region]) -> tuple[int, float, str]:
        pieces = grid_generate(regions=batch, size=size, sliver_m2=sliver_m2, max_m2=CELL_MAX_M2, bounds=bounds)
        if not len(pieces.code):
            return 0, 0.0, ""
        wgs = _to_wgs84(pieces.geom)
        bad = ~shapely.is_valid(wgs)
        if bad.any():  # a sub-millimetre feature can fold in the projection; repair rather than refuse
            wgs[bad] = [_multi(shapely.make_valid(g).buffer(0)) for g in wgs[bad]]
        centers = _to_wgs84(shapely.point_on_surface(pieces.geom))
        keys = [batch[i].key for i in pieces.region_idx.tolist()]
        null = "\\N"
        columns = (
            pieces.code.tolist(),
            _ewkb_hex_4326(wgs),
            _ewkb_hex_4326(centers),
            map(repr, pieces.area.tolist()),
            map(str, pieces.row.tolist()),
            map(str, pieces.col.tolist()),
            [str(district.id)] * len(keys),
            [null if parents[k][0] is None else str(parents[k][0]) for k in keys],
            [null if parents[k][1] is None else str(parents[k][1]) for k in keys],
        )
        # COPY text format, joined by hand: the values are codes, hex and numbers (nothing to escape).
        text = "".join(f"{line}\n" for line in map("\t".join, zip(*columns, strict=True)))
        return len(keys), float(pieces.area.sum()), text

    # A pipeline over batches of whole regions (regions are independent, see grid_generate): two threads
    # generate and encode batches (shapely and pyproj release the GIL) while the COPY writer streams the
    # finished ones, in order, so PostgreSQL ingests from the first batch on instead of idling.
    batches = _region_batches(regions, parts=12)
    cells, area = 0, 0.0

    def texts():
        nonlocal cells, area
        for i, (n, a, text) in enumerate(pool.map(batch_text, batches)):
            cells, area = cells + n, area + a
            progress("generate+store", i + 1, len(batches))
            if text:
                yield text

    with transaction.atomic(), ThreadPoolExecutor(max_workers=2) as pool:
        if rebuild:
            _cells_delete(district_id=district.id)
        text_copy(table="geo_gridcell", columns=GRID_COPY_COLUMNS, texts=texts())
        transaction.on_commit(grid_version_bump)  # the cached cell tiles show the old grid
    return GridBuildResult(cells=cells, area_m2=area, district_area_m2=district.area_m2)


def grid_version_bump() -> None:
    """A new grid version stamp: every cached cell tile (geo.selectors.cell_tile_cached) is stale."""
    cache.set(GRID_VERSION_KEY, uuid4().hex[:16], timeout=None)


def _region_batches(regions: list[Region], *, parts: int) -> list[list[Region]]:
    """Regions in `parts` batches of about equal area, keeping their order (codes sort by region)."""
    if not regions:
        return []
    weights = np.cumsum([r.geom.area for r in regions])
    cuts = np.unique(np.searchsorted(weights, weights[-1] * np.arange(1, parts) / parts))
    return [[regions[i] for i in idx] for idx in np.split(np.arange(len(regions)), cuts) if len(idx)]


GRID_COPY_COLUMNS = ("code", "geom", "center", "area_m2", "row", "col", "district_id", "street_id", "community_id")


def _ewkb_hex_4326(geoms: np.ndarray) -> list[str]:
    """Hex EWKB with SRID 4326, as PostGIS reads it in COPY. Splicing the SRID into little-endian WKB is
    several times cheaper than shapely.set_srid, which copies every geometry first."""
    wkb = shapely.to_wkb(geoms, hex=True, byte_order=1, include_srid=False)
    # byte 0: order; bytes 1–4: type, little-endian, whose top byte gets the SRID flag 0x20; then the SRID.
    return ["01" + h[2:8] + "20E6100000" + h[10:] for h in wkb.tolist()]


class GridInUse(Exception):
    pass


def _cells_delete(*, district_id: int) -> None:
    """Set-based delete for a rebuild; refused while cases point at the cells (their history must stay valid)."""
    from gridmgmt.models import Case

    if Case.objects.filter(district_id=district_id).exists():
        raise GridInUse("该区已有案件引用网格,不能重建 (cases reference these cells; rebuild refused)")
    with connection.cursor() as cur:
        for table in ("geo_camera", "geo_component"):
            cur.execute(
                f"UPDATE {table} t SET cell_id = NULL FROM geo_gridcell c"
                " WHERE t.cell_id = c.id AND c.district_id = %s",
                [district_id],
            )
        cur.execute("DELETE FROM geo_gridcell WHERE district_id = %s", [district_id])


def text_copy(*, table: str, columns: Iterable[str], texts: Iterable[str]) -> None:
    """COPY tab-separated text chunks into a table; a writer thread sends while the next chunk is made."""
    cols = ", ".join(f'"{c}"' for c in columns)
    with connection.cursor() as wrapper:
        raw = wrapper.cursor  # Django's wrapper does not pass `writer` through
        with raw.copy(f"COPY {table} ({cols}) FROM STDIN", writer=QueuedLibpqWriter(raw)) as copy:
            for text in texts:
                copy.write(text)


@dataclass
class RespGridResult:
    grids: int
    skipped: bool = False


@transaction.atomic
def respgrids_synthesize(*, district_code: str, block_cells: int = 5) -> RespGridResult:
    """Demo only: group cells into responsibility grids of block_cells × block_cells within each community.

    One INSERT … SELECT … GROUP BY and one UPDATE: the grouping happens in PostGIS.
    """
    district = AdminArea.objects.get(code=district_code, level=AdminArea.Level.DISTRICT)
    if ResponsibilityGrid.objects.filter(district=district).exists():
        return RespGridResult(grids=0, skipped=True)
    with connection.cursor() as cur:
        cur.execute(
            """
            WITH blocks AS (
                SELECT c.id, c.district_id, c.street_id, c.community_id,
                       coalesce(a.code, d.code) AS parent_code, coalesce(a.name, d.name) AS parent_name,
                       c.row / %(b)s AS brow, c.col / %(b)s AS bcol, c.geom
                FROM geo_gridcell c
                JOIN geo_adminarea d ON d.id = c.district_id
                LEFT JOIN geo_adminarea a ON a.id = c.community_id
                WHERE c.district_id = %(d)s
            ), grouped AS (
                SELECT district_id, street_id, community_id, parent_code, parent_name, brow, bcol,
                       row_number() OVER (PARTITION BY parent_code ORDER BY brow, bcol) AS serial,
                       ST_Multi(ST_Union(geom)) AS geom
                FROM blocks GROUP BY district_id, street_id, community_id, parent_code, parent_name, brow, bcol
            )
            INSERT INTO geo_responsibilitygrid (code, name, district_id, street_id, community_id, geom)
            SELECT parent_code || 'R' || lpad(serial::text, 2, '0'), parent_name || '责任网格' || serial,
                   district_id, street_id, community_id, geom
            FROM grouped
            """,
            {"b": block_cells, "d": district.id},
        )
        count = cur.rowcount
    _respgrid_link_cells(district_id=district.id)
    return RespGridResult(grids=count)


def _respgrid_link_cells(*, district_id: int) -> None:
    # A cell belongs to the grid of its community whose union covers the cell's representative point.
    with connection.cursor() as cur:
        cur.execute(
            """
            UPDATE geo_gridcell c SET responsibility_grid_id = r.id
            FROM geo_responsibilitygrid r
            WHERE c.district_id = %s AND r.district_id = c.district_id
              AND r.community_id IS NOT DISTINCT FROM c.community_id
              AND r.geom && c.center AND ST_Covers(r.geom, c.center)
            """,
            [district_id],
        )


def speaker_locate(*, speaker: Speaker) -> Speaker:
    """Put a speaker in the cell (and district) its location falls in, by the one locate rule
    (geo.selectors.cell_locate: a point on an edge goes to the smallest code); outside every cell: none.
    The caller saves it (the admin form, the demo)."""
    ref = cell_locate(lon=speaker.location.x, lat=speaker.location.y)
    speaker.cell_id = ref.id if ref else None
    speaker.district_id = ref.district_id if ref else None
    return speaker
