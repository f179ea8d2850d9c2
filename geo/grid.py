"""Unit-grid generation in metric space (UTM 51N), vectorised with shapely 2. No database here.

Rule for clipped pieces (documented in README, "Grid rules"):
- Squares are aligned to multiples of `size` in EPSG:32651, so grids of neighbouring runs line up.
- Each square is clipped to every region (community, else district) it overlaps: a cell never
  crosses a region boundary, and one square may yield pieces in several regions.
- A piece under `sliver_m2` (default 50 m², 0.5 % of a cell) is merged into the piece of the same
  region it shares the longest edge with, when the merged area stays ≤ `max_m2` (10,050 m²); otherwise
  it remains a cell of its own. No area is dropped, so cells cover the region with no gaps.
- Codes number cells west→east, then north→south, within their region.
"""

from dataclasses import dataclass

import numpy as np
import shapely
from shapely import Geometry

CELL_MAX_M2 = 10_050.0
SLIVER_M2 = 50.0
PRECISION_M = 1e-6


@dataclass(frozen=True)
class Region:
    key: int  # e.g. the AdminArea id the pieces will belong to
    code: str  # code prefix of its cells
    geom: Geometry  # in the metric CRS


@dataclass
class GridPieces:
    region_idx: np.ndarray  # index into the regions list
    row: np.ndarray  # 0 = northernmost row of the bounding grid
    col: np.ndarray  # 0 = westernmost column
    geom: np.ndarray  # shapely (Multi)Polygons, metric CRS
    area: np.ndarray  # m²
    code: np.ndarray  # str


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal part of each geometry (intersections may yield lines/points), as MultiPolygons."""
    parts, idx = shapely.get_parts(geoms, return_index=True)
    is_poly = shapely.get_type_id(parts) == 3  # Polygon
    is_poly &= shapely.area(parts) > 0
    out = np.full(len(geoms), None, dtype=object)
    if is_poly.any():
        targets, dense = np.unique(idx[is_poly], return_inverse=True)
        out[targets] = shapely.multipolygons(parts[is_poly], indices=dense)
    return out


def squares_covering(bounds: tuple[float, float, float, float], size: float, parts_bounds: np.ndarray | None = None):
    """The size×size squares, aligned to multiples of `size`, covering `bounds`; returns (squares, row, col).

    With `parts_bounds` (n×4), only squares inside some part's bounding box are made: for an irregular
    district cut into communities that is less than half of the full bounding grid."""
    minx, miny, maxx, maxy = bounds
    x0, y1 = np.floor(minx / size) * size, np.ceil(maxy / size) * size
    ncols = int(np.ceil((maxx - x0) / size))
    nrows = int(np.ceil((y1 - miny) / size))
    if parts_bounds is None:
        row, col = np.divmod(np.arange(nrows * ncols), ncols)
    else:
        parts_bounds = parts_bounds[~np.isnan(parts_bounds).any(axis=1)]  # empty parts have NaN bounds
        c0 = np.floor((parts_bounds[:, 0] - x0) / size).astype(np.int64)
        c1 = np.ceil((parts_bounds[:, 2] - x0) / size).astype(np.int64)
        r0 = np.floor((y1 - parts_bounds[:, 3]) / size).astype(np.int64)
        r1 = np.ceil((y1 - parts_bounds[:, 1]) / size).astype(np.int64)
        flat = np.concatenate(
            [(r * ncols + np.arange(a, b)) for ra, rb, a, b in zip(r0, r1, c0, c1, strict=True) for r in range(ra, rb)]
        )
        row, col = np.divmod(np.unique(flat), ncols)
    xmin = x0 + col * size
    ymax = y1 - row * size
    return shapely.box(xmin, ymax - size, xmin + size, ymax), row, col


def _snapped(regions: list[Region]) -> np.ndarray:
    # Snap to a 1 µm grid: boundaries that went through a 4326 round trip sit 1e-9 m off the 100 m lines,
    # which would otherwise cut needle-thin, invalid slivers off the squares.
    return shapely.set_precision(np.array([r.geom for r in regions], dtype=object), PRECISION_M)


def grid_bounds(regions: list[Region]) -> tuple[float, float, float, float]:
    """The bounds that fix row/col numbering; pass them to grid_generate when generating in batches."""
    return tuple(shapely.total_bounds(_snapped(regions)))


def grid_generate(
    *,
    regions: list[Region],
    size: float = 100.0,
    sliver_m2: float = SLIVER_M2,
    max_m2: float = CELL_MAX_M2,
    bounds: tuple[float, float, float, float] | None = None,
) -> GridPieces:
    """Pieces for `regions`. Regions are independent (no cell crosses one, codes restart per region), so a
    district can be generated in batches of regions: give each batch the whole district's `bounds` and rows
    and columns come out the same as in one run."""
    region_geoms = _snapped(regions)
    shapely.prepare(region_geoms)
    if bounds is None:
        bounds = tuple(shapely.total_bounds(region_geoms))
    squares, row, col = squares_covering(bounds, size, shapely.bounds(region_geoms))

    # Pairs (region, square) that overlap; whole squares inside a region are kept as they are.
    tree = shapely.STRtree(squares)
    r_idx, s_idx = tree.query(region_geoms, predicate="intersects")
    inside = shapely.contains(region_geoms[r_idx], squares[s_idx])
    geoms = np.empty(len(r_idx), dtype=object)
    if inside.any():
        n_in = int(inside.sum())
        geoms[inside] = shapely.multipolygons(squares[s_idx[inside]], indices=np.arange(n_in))
    edge = ~inside
    # Squares that merely touch a region along an edge (most of them, on aligned blocks) yield no area.
    edge[edge] = shapely.relate_pattern(region_geoms[r_idx[edge]], squares[s_idx[edge]], "T********")
    if edge.any():
        cut = shapely.intersection(region_geoms[r_idx[edge]], squares[s_idx[edge]], grid_size=PRECISION_M)
        geoms[edge] = _polygonal(cut)
    keep = np.array([g is not None for g in geoms], dtype=bool)
    r_idx, s_idx, geoms = r_idx[keep], s_idx[keep], geoms[keep]
    area = shapely.area(geoms)

    r_idx, s_idx, geoms, area = _merge_slivers(r_idx, s_idx, geoms, area, sliver_m2=sliver_m2, max_m2=max_m2)

    # West→east, then north→south, within each region: sort by (region, row, col).
    rows, cols = row[s_idx], col[s_idx]
    order = np.lexsort((cols, rows, r_idx))
    r_idx, rows, cols, geoms, area = r_idx[order], rows[order], cols[order], geoms[order], area[order]
    codes = _codes(r_idx, [r.code for r in regions])
    return GridPieces(region_idx=r_idx, row=rows, col=cols, geom=geoms, area=area, code=codes)


def _merge_slivers(r_idx, s_idx, geoms, area, *, sliver_m2: float, max_m2: float):
    small = area < sliver_m2
    if not small.any():
        return r_idx, s_idx, geoms, area
    big_idx = np.flatnonzero(~small)
    small_idx = np.flatnonzero(small)
    tree = shapely.STRtree(geoms[big_idx])
    sq, bg = tree.query(geoms[small_idx], predicate="intersects")
    a, b = small_idx[sq], big_idx[bg]
    same_region = r_idx[a] == r_idx[b]
    a, b = a[same_region], b[same_region]
    shared = shapely.length(shapely.intersection(shapely.boundary(geoms[a]), shapely.boundary(geoms[b])))
    ok = shared > 0
    a, b, shared = a[ok], b[ok], shared[ok]
    # For each sliver, its neighbour with the longest shared edge.
    order = np.lexsort((-shared, a))
    a, b = a[order], b[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = a[1:] != a[:-1]
    a, b = a[first], b[first]
    # Accept merges while the target stays under the cap (slivers taken largest-first per target).
    order = np.lexsort((-area[a], b))
    a, b = a[order], b[order]
    starts = np.ones(len(a), dtype=bool)
    starts[1:] = b[1:] != b[:-1]
    group = np.cumsum(starts) - 1
    cum = np.cumsum(area[a])
    group_base = np.concatenate([[0.0], cum])[np.flatnonzero(starts)][group]
    accepted = area[b] + (cum - group_base) <= max_m2
    a, b = a[accepted], b[accepted]
    if len(a):
        targets, inverse = np.unique(b, return_inverse=True)
        for t_i, t in enumerate(targets):  # only the few cells that receive a sliver
            geoms[t] = _as_multi(shapely.union_all([geoms[t], *geoms[a[inverse == t_i]]]))
        area[targets] = shapely.area(geoms[targets])
    keep = np.ones(len(geoms), dtype=bool)
    keep[a] = False
    return r_idx[keep], s_idx[keep], geoms[keep], area[keep]


def _as_multi(geom: Geometry) -> Geometry:
    if shapely.get_type_id(geom) == 3:
        return shapely.multipolygons([geom])
    return geom


def _codes(r_idx: np.ndarray, region_codes: list[str]) -> np.ndarray:
    """Serial within each region (already sorted), zero-padded to at least 3 digits."""
    n = len(r_idx)
    starts = np.ones(n, dtype=bool)
    starts[1:] = r_idx[1:] != r_idx[:-1]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    serial = np.arange(n) - group_start + 1
    counts = np.bincount(r_idx, minlength=len(region_codes))
    width = np.maximum(3, np.char.str_len(counts.astype(str)))
    return np.array(
        [f"{region_codes[r]}{s:0{width[r]}d}" for r, s in zip(r_idx.tolist(), serial.tolist(), strict=True)],
        dtype=object,
    )
