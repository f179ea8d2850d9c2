"""GIS import/export of the spatial layers (areas, cells, cameras, components) through geopandas/pyogrio.

Import is validate-then-write. Every feature is checked first and each problem is reported with the
feature's 1-based number, its code and a reason in Chinese with an English gloss. If any feature is bad,
nothing is written, unless `skip_invalid`: then the good features alone are written, in one transaction.
`make_valid` is never applied: an invalid geometry is a problem to report, not to repair silently.
Lookups are one query per referenced table, points are located in one PostGIS query, and rows are written
by COPY into a temporary table and one INSERT … SELECT (ON CONFLICT (code) DO UPDATE for `update`).

Formats: GeoJSON, GeoPackage (one layer, chosen with `source_layer`), ESRI Shapefile and, for the point
layers, CSV with lon/lat (or x/y) columns. Input CRS: whatever the file declares, or `srid`; it must have
an EPSG code. CGCS2000 (EPSG:4490) is taken as WGS-84 (they differ by centimetres). CSV has no CRS of its
own and is read as EPSG:4326 unless `srid` says otherwise. `datum` gcj02/bd09 undoes the Chinese map
offsets (geo.coords) after reprojection. Everything is stored in SRID 4326.

Shapefile column names are limited to 10 characters; the long names below are written short and read
back under either name (see SHP_COLUMNS).
"""

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from django.contrib.gis.db.models.functions import AsWKB
from django.core.exceptions import FieldDoesNotExist
from django.db import DatabaseError, connection, models, transaction
from django.db.models import F
from pyproj import CRS
from pyproj.exceptions import CRSError

from geo.coords import DATUM_TO_WGS84, WGS84_TO_DATUM, transform_geometry
from geo.models import CELL_MAX_AREA_M2, UTM_SRID, AdminArea, Camera, Component, GridCell
from gridmgmt.models import Category, Department

DATUMS = ("wgs84", "gcj02", "bd09")
WGS84_EQUIVALENT = {4326, 4490}  # CGCS2000 is WGS-84 within centimetres: relabel, don't transform
CELL_SIZE_M = 100.0

# Long column name → Shapefile name (DBF field names hold at most 10 characters).
SHP_COLUMNS = {
    "parent_code": "parent",
    "is_synthetic": "synthetic",
    "district_code": "district",
    "street_code": "street",
    "community_code": "community",
    "major_class": "major",
    "category_code": "category",
    "authority_code": "authority",
    "owner_code": "owner",
    "maintainer_code": "maintainer",
}
FORMATS = {  # name → (OGR driver, file suffixes)
    "geojson": ("GeoJSON", (".geojson", ".json")),
    "gpkg": ("GPKG", (".gpkg",)),
    "shp": ("ESRI Shapefile", (".shp",)),
    "csv": ("CSV", (".csv",)),
}
_ENCODING_HINT = " (如为 GBK 编码请加 --encoding gbk / for GBK text add --encoding gbk)"
CSV_XY_NAMES = (("lon", "lat"), ("x", "y"), ("lng", "lat"), ("longitude", "latitude"))

MESSAGES: dict[str, tuple[str, str]] = {
    # Whole-file problems (raised as GisIOError).
    "file_missing": ("文件不存在", "file not found"),
    "file_unreadable": ("无法读取文件", "cannot read the file"),
    "file_unwritable": ("无法写入文件", "cannot write the file"),
    "format_unknown": ("无法识别的文件格式", "unknown file format"),
    "layer_unknown": ("文件中没有该图层", "no such layer in the file"),
    "layer_ambiguous": ("文件包含多个图层, 请用 --layer 指定", "several layers in the file; choose one with --layer"),
    "layer_not_point": ("CSV 只能用于点图层", "CSV is only for point layers"),
    "crs_missing": ("坐标系未知 (没有 .prj 等信息), 请用 --srid 声明", "unknown CRS (no .prj); declare it with --srid"),
    "crs_no_epsg": ("坐标系没有 EPSG 代码, 请用 --srid 声明", "the CRS has no EPSG code; declare it with --srid"),
    "crs_bad_srid": ("无效的 EPSG 代码", "invalid EPSG code"),
    "datum_needs_lonlat": ("--datum 只适用于经纬度坐标", "--datum applies only to longitude/latitude data"),
    "columns_missing": ("缺少必需的列", "missing required columns"),
    "no_geometry": ("文件没有几何列", "the file has no geometry column"),
    "district_unknown": ("未知的区代码", "unknown district code"),
    "write_failed": ("写入数据库失败, 未写入任何数据", "database write failed; nothing written"),
    # Per-feature problems.
    "geometry_missing": ("几何缺失或为空", "missing or empty geometry"),
    "geometry_type": ("几何类型错误", "wrong geometry type"),
    "geometry_invalid": ("几何无效", "invalid geometry"),
    "lonlat_range": ("经纬度超出范围", "lon/lat out of range"),
    "transform_failed": ("坐标无法转换", "coordinates cannot be transformed"),
    "value_missing": ("缺少必填值", "required value missing"),
    "value_invalid": ("取值无效", "invalid value"),
    "value_too_long": ("取值过长", "value too long"),
    "code_duplicate": ("编码在文件中重复", "code repeated in the file"),
    "code_exists": ("编码已存在于数据库 (可用 --update 更新)", "code already in the database (use --update)"),
    "parent_unknown": ("未知的上级代码", "unknown parent code"),
    "parent_level": ("上级层级不符", "parent is not of a higher level"),
    "parent_invalid": ("上级要素本身有问题", "the parent feature is itself invalid"),
    "area_unknown": ("未知的行政区代码", "unknown admin area code"),
    "department_unknown": ("未知的部门代码", "unknown department code"),
    "category_unknown": ("未知的部件小类代码", "unknown component category code"),
    "outside_districts": ("不在任何区的范围内", "outside every district"),
    "area_too_large": ("网格面积超过上限", "cell area above the limit"),
}


def message(kind: str, detail: str = "") -> str:
    zh, en = MESSAGES[kind]
    return f"{zh} ({en})" + (f": {detail}" if detail else "")


class GisIOError(Exception):
    """A problem with the whole file or command (nothing was written)."""

    def __init__(self, kind: str, detail: str = ""):
        self.kind, self.detail = kind, detail
        super().__init__(message(kind, detail))


@dataclass(frozen=True)
class Problem:
    index: int  # 0-based position in the file; shown 1-based
    code: str
    kind: str
    detail: str = ""

    def __str__(self) -> str:
        n = self.index + 1
        return f"第 {n} 个要素 (feature #{n}) [{self.code or '-'}] {message(self.kind, self.detail)}"


@dataclass
class ImportResult:
    layer: str
    read: int
    created: int = 0
    updated: int = 0
    skipped: int = 0  # features with at least one problem
    written: bool = False
    problems: list[Problem] = field(default_factory=list)


@dataclass
class ExportResult:
    layer: str
    path: Path
    format: str
    count: int


@dataclass(frozen=True)
class LayerSpec:
    model: type[models.Model]
    geometry: str  # "polygon" (stored as MultiPolygon) or "point"
    required: tuple[str, ...]
    optional: tuple[str, ...]
    export: dict[str, str]  # column → ORM path, in file order

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional

    @property
    def geom_field(self) -> str:
        return {AdminArea: "boundary", GridCell: "geom"}.get(self.model, "location")


def _orm_paths(*columns: str) -> dict[str, str]:
    """Export columns in file order → ORM paths: `x_code` is the code of the related `x`, others are fields."""
    return {c: f"{c.removesuffix('_code')}__code" if c != "code" and c.endswith("_code") else c for c in columns}


LAYERS: dict[str, LayerSpec] = {
    "areas": LayerSpec(
        model=AdminArea,
        geometry="polygon",
        required=("code", "name", "level"),
        optional=("name_en", "parent_code", "is_synthetic"),
        export=_orm_paths("code", "name", "name_en", "level", "parent_code", "is_synthetic"),
    ),
    "cells": LayerSpec(
        model=GridCell,
        geometry="polygon",
        required=("code", "district_code"),
        optional=("street_code", "community_code", "row", "col"),
        export=_orm_paths("code", "district_code", "street_code", "community_code", "row", "col"),
    ),
    "cameras": LayerSpec(
        model=Camera,
        geometry="point",
        required=("code", "name"),
        optional=("status", "stream_url"),
        export=_orm_paths("code", "name", "status", "stream_url"),
    ),
    "components": LayerSpec(
        model=Component,
        geometry="point",
        required=("code", "major_class"),
        optional=("name", "category_code", "authority_code", "owner_code", "maintainer_code", "status"),
        export=_orm_paths(
            "code", "major_class", "category_code", "name", "authority_code", "owner_code", "maintainer_code", "status"
        ),
    ),
}


# --- reading -------------------------------------------------------------------------------------------


def format_guess(*, path: Path, fmt: str | None = None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise GisIOError("format_unknown", f"{fmt} (geojson, gpkg, shp, csv)")
        return fmt
    suffix = Path(path).suffix.lower()
    for name, (_driver, suffixes) in FORMATS.items():
        if suffix in suffixes:
            return name
    raise GisIOError("format_unknown", f"{path} (.geojson .json .gpkg .shp .csv)")


def layer_read(
    *,
    path: Path,
    source_layer: str | None = None,
    default_layer: str | None = None,
    lon_col: str | None = None,
    lat_col: str | None = None,
    encoding: str | None = None,
) -> gpd.GeoDataFrame:
    """Read one layer as a GeoDataFrame with the CRS the file declares (None if it declares none)."""
    path = Path(path)
    if not path.exists():
        raise GisIOError("file_missing", str(path))
    if format_guess(path=path) == "csv":
        return _csv_read(path=path, lon_col=lon_col, lat_col=lat_col, encoding=encoding)
    try:
        names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
        if source_layer is None and len(names) > 1:
            if default_layer not in names:
                raise GisIOError("layer_ambiguous", ", ".join(names))
            source_layer = default_layer
        if source_layer is not None and source_layer not in names:
            raise GisIOError("layer_unknown", f"{source_layer} (有/available: {', '.join(names)})")
        frame = pyogrio.read_dataframe(path, layer=source_layer, encoding=encoding)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, pyogrio.errors.FieldError) as exc:
        raise GisIOError("file_unreadable", f"{path}: {exc}") from exc
    except (pyogrio.errors.GeometryError, ValueError, OSError) as exc:  # UnicodeDecodeError is a ValueError
        raise GisIOError("file_unreadable", f"{path}: {exc}{_ENCODING_HINT}") from exc
    if not isinstance(frame, gpd.GeoDataFrame):  # an attribute-only table
        raise GisIOError("no_geometry", str(path))
    return frame


def _csv_read(*, path: Path, lon_col: str | None, lat_col: str | None, encoding: str | None) -> gpd.GeoDataFrame:
    try:  # all text: codes such as "01" must keep their leading zeros
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding or "utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, LookupError) as exc:
        raise GisIOError("file_unreadable", f"{path}: {exc}{_ENCODING_HINT}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    if lon_col or lat_col:
        pair = (lon_col or "lon", lat_col or "lat")
    else:
        lower = {c.lower(): c for c in frame.columns}
        found = next(((lower[x], lower[y]) for x, y in CSV_XY_NAMES if x in lower and y in lower), None)
        pair = found or ("lon", "lat")
    missing = [c for c in pair if c not in frame.columns]
    if missing:
        raise GisIOError("columns_missing", ", ".join(missing) + " (经纬度列 / coordinate columns: lon/lat or x/y)")
    x = pd.to_numeric(frame[pair[0]].str.strip(), errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(frame[pair[1]].str.strip(), errors="coerce").to_numpy(dtype=float)
    points = shapely.points(x, y)
    points[~(np.isfinite(x) & np.isfinite(y))] = None  # blank or not a number: reported as a missing geometry
    return gpd.GeoDataFrame(frame.drop(columns=list(pair)), geometry=points, crs=None)


def crs_resolve(*, crs: CRS | None, srid: int | None, default_epsg: int | None = None) -> CRS:
    """The input CRS: `srid` if given (it overrides the file), else the file's, which must have an EPSG code."""
    if srid is not None:
        try:
            return CRS.from_epsg(srid)
        except CRSError as exc:
            raise GisIOError("crs_bad_srid", str(srid)) from exc
    if crs is None:
        if default_epsg is None:
            raise GisIOError("crs_missing")
        return CRS.from_epsg(default_epsg)
    if crs.to_epsg() is None:
        raise GisIOError("crs_no_epsg", crs.name)
    return crs


def _text(values: pd.Series) -> pd.Series:
    """Attribute values as stripped text, "" when missing; integral floats (from NaN-holding columns) lose ".0"."""

    def one(v) -> str:
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float | np.floating) and np.isnan(v)):
            return ""
        if isinstance(v, bool | np.bool_):
            return "true" if v else "false"
        if isinstance(v, float | np.floating) and float(v).is_integer():
            return str(int(v))
        return str(v).strip()

    if pd.api.types.is_string_dtype(values):  # the common cases, vectorised
        return values.fillna("").astype(str).str.strip().astype(object)
    if values.dtype.kind in "iu":
        return values.astype(str).astype(object)
    return values.map(one).astype(object)


def columns_normalise(*, spec: LayerSpec, frame: gpd.GeoDataFrame) -> tuple[pd.DataFrame, frozenset[str]]:
    """The spec's columns as text (optional ones blank when absent) and the names of those the file has.
    Column names are case-folded and Shapefile short names accepted."""
    attrs = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    attrs.columns = [str(c).strip().lower() for c in attrs.columns]
    attrs = attrs.loc[:, ~attrs.columns.duplicated()]
    attrs = attrs.rename(columns={short: long for long, short in SHP_COLUMNS.items() if long not in attrs.columns})
    missing = [c for c in spec.required if c not in attrs.columns]
    if missing:
        raise GisIOError("columns_missing", ", ".join(missing))
    out = pd.DataFrame(index=range(len(attrs)))
    for col in spec.columns:
        out[col] = _text(attrs[col].reset_index(drop=True)) if col in attrs.columns else ""
    return out, frozenset(c for c in spec.columns if c in attrs.columns)


# --- validation ----------------------------------------------------------------------------------------


@dataclass
class Checked:
    """Validated features: text attributes, WGS-84 geometries (None where bad), resolved ids, problems."""

    attrs: pd.DataFrame
    geoms: np.ndarray
    extra: dict[str, np.ndarray]
    existing: set[str]
    problems: list[Problem]
    bad: np.ndarray  # bool per feature
    present: frozenset[str]  # the layer's columns found in the file


class _Problems:
    def __init__(self, codes: list[str]):
        self.codes, self.items = codes, []
        self.bad = np.zeros(len(codes), dtype=bool)

    def add(self, index: int, kind: str, detail: str = "") -> None:
        self.items.append(Problem(index=int(index), code=self.codes[index], kind=kind, detail=detail))
        self.bad[index] = True

    def add_where(self, mask: np.ndarray, kind: str, detail=lambda i: "") -> None:
        for i in np.flatnonzero(mask):
            self.add(i, kind, detail(i))


def _fetch(model: type[models.Model], codes, *fields: str) -> dict[str, tuple]:
    """code → (fields…) for the given codes, in one query (= ANY(array), so no parameter-count limit)."""
    wanted = sorted({c for c in codes if c})
    if not wanted:
        return {}
    columns = ", ".join(["code", *(model._meta.get_field(f).column for f in fields)])
    with connection.cursor() as cur:
        cur.execute(f"SELECT {columns} FROM {model._meta.db_table} WHERE code = ANY(%s)", [wanted])
        return {row[0]: row[1:] for row in cur.fetchall()}


def geometries_to_wgs84(*, geoms: np.ndarray, kind: str, crs: CRS, datum: str, out: _Problems) -> np.ndarray:
    """Check type/emptiness/range, reproject to 4326, undo the datum offset, check validity; None where bad."""
    geoms = np.asarray(geoms, dtype=object)
    result = np.full(len(geoms), None, dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    out.add_where(missing, "geometry_missing")
    if kind == "point":  # a one-point MultiPoint (common in Shapefiles) is a point
        single = (shapely.get_type_id(geoms) == 4) & (shapely.get_num_geometries(geoms) == 1)
        geoms = np.where(single, shapely.get_geometry(geoms, 0), geoms)
        allowed, expected = np.isin(shapely.get_type_id(geoms), [0]), "Point"
    else:
        allowed, expected = np.isin(shapely.get_type_id(geoms), [3, 6]), "Polygon/MultiPolygon"
    out.add_where(~missing & ~allowed, "geometry_type", lambda i: f"{geoms[i].geom_type}, 应为/expected {expected}")
    ok = ~missing & allowed
    if crs.is_geographic:
        b = shapely.bounds(geoms)
        wild = ok & ((b[:, 0] < -180) | (b[:, 2] > 180) | (b[:, 1] < -90) | (b[:, 3] > 90))
        hint = " (投影坐标? 请用 --srid 声明 / projected? declare --srid)"
        out.add_where(
            wild, "lonlat_range", lambda i: f"lon {b[i, 0]:g}..{b[i, 2]:g}, lat {b[i, 1]:g}..{b[i, 3]:g}{hint}"
        )
        ok &= ~wild
    good = shapely.force_2d(geoms[ok])
    if crs.to_epsg() not in WGS84_EQUIVALENT:
        good = np.asarray(gpd.GeoSeries(good, crs=crs).to_crs(4326).values, dtype=object)
    if datum != "wgs84":
        good = transform_geometry(good, DATUM_TO_WGS84[datum])
    idx = np.flatnonzero(ok)
    finite = np.isfinite(shapely.bounds(good)).all(axis=1) if len(good) else np.zeros(0, dtype=bool)
    for i in idx[~finite]:
        out.add(i, "transform_failed")
    idx, good = idx[finite], good[finite]
    if kind == "polygon":
        polys = shapely.get_type_id(good) == 3
        if polys.any():
            good[polys] = shapely.multipolygons(good[polys], indices=np.arange(int(polys.sum())))
    reasons = shapely.is_valid_reason(good)
    invalid = reasons != "Valid Geometry"
    for i, reason in zip(idx[invalid], reasons[invalid], strict=True):
        out.add(i, "geometry_invalid", reason)
    result[idx[~invalid]] = good[~invalid]
    return result


def _check_common(*, spec: LayerSpec, attrs: pd.DataFrame, update: bool, out: _Problems) -> set[str]:
    codes = attrs["code"]
    for col in spec.required:
        out.add_where((attrs[col] == "").to_numpy(), "value_missing", lambda i, col=col: col)
    for col in spec.columns:
        try:
            max_length = spec.model._meta.get_field(col).max_length
        except FieldDoesNotExist:  # a *_code column: checked against the referenced table instead
            max_length = None
        if max_length:
            lengths = attrs[col].str.len().to_numpy()
            out.add_where(lengths > max_length, "value_too_long", lambda i, c=col, n=max_length: f"{c} > {n}")
    first = {}
    for i, code in enumerate(codes):
        if not code:
            continue
        if code in first:
            out.add(i, "code_duplicate", f"同第 {first[code] + 1} 个要素 (same as feature #{first[code] + 1})")
        else:
            first[code] = i
    existing = set(_fetch(spec.model, codes))
    if not update:
        out.add_where(codes.isin(existing).to_numpy(), "code_exists")
    return existing


_LEVEL_RANK = {level: rank for rank, level in enumerate(AdminArea.Level.values)}  # city < district < …
_TRUE, _FALSE = {"true", "t", "1", "yes", "y", "是"}, {"false", "f", "0", "no", "n", "否", ""}


def _check_areas(*, attrs: pd.DataFrame, out: _Problems, **_) -> dict[str, np.ndarray]:
    level = attrs["level"]
    out.add_where((level != "") & ~level.isin(_LEVEL_RANK).to_numpy(), "value_invalid", lambda i: f"level={level[i]}")
    flag = attrs["is_synthetic"].str.lower()
    out.add_where(~flag.isin(_TRUE | _FALSE).to_numpy(), "value_invalid", lambda i: f"is_synthetic={flag[i]}")
    parent = attrs["parent_code"]
    file_level = dict(zip(attrs["code"], level, strict=True))
    db_level = {code: row[0] for code, row in _fetch(AdminArea, parent[~parent.isin(file_level)], "level").items()}
    for i, (code, pcode) in enumerate(zip(attrs["code"], parent, strict=True)):
        if not pcode:
            continue
        if pcode == code:
            out.add(i, "parent_invalid", f"{pcode} 是自身 (is itself)")
            continue
        plevel = file_level.get(pcode, db_level.get(pcode))
        if plevel is None:
            out.add(i, "parent_unknown", f"parent_code={pcode}")
        elif level[i] in _LEVEL_RANK and _LEVEL_RANK.get(plevel, -1) >= _LEVEL_RANK[level[i]]:
            out.add(i, "parent_level", f"{pcode} ({plevel}) → {code} ({level[i]})")
    # A child of a rejected feature in the same file cannot be written either (repeat down the hierarchy).
    position = {code: i for i, code in reversed(list(enumerate(attrs["code"])))}
    changed = True
    while changed:
        changed = False
        for i, pcode in enumerate(parent):
            if pcode in position and out.bad[position[pcode]] and not out.bad[i]:
                out.add(i, "parent_invalid", f"parent_code={pcode}")
                changed = True
    return {"is_synthetic": flag.isin(_TRUE).to_numpy()}


def _check_cells(*, attrs: pd.DataFrame, geoms: np.ndarray, out: _Problems, **_) -> dict[str, np.ndarray]:
    extra: dict[str, np.ndarray] = {}
    for col, level in (("district_code", "district"), ("street_code", "street"), ("community_code", "community")):
        found = _fetch(AdminArea, attrs[col], "id", "level")
        ids = np.full(len(attrs), None, dtype=object)
        for i, code in enumerate(attrs[col]):
            if not code:
                continue
            if code not in found:
                out.add(i, "area_unknown", f"{col}={code}")
            elif found[code][1] != level:
                out.add(i, "value_invalid", f"{col}={code} 是/is {found[code][1]}, 应为/expected {level}")
            else:
                ids[i] = found[code][0]
        extra[col.removesuffix("_code")] = ids
    for col in ("row", "col"):
        number = pd.to_numeric(attrs[col], errors="coerce")
        bad = (attrs[col] != "") & ~(number.notna() & (number == number.round()))
        out.add_where(bad.to_numpy(), "value_invalid", lambda i, c=col: f"{c}={attrs[c][i]}")
        extra[col] = number.to_numpy()
    has = np.array([g is not None for g in geoms], dtype=bool)
    area = np.full(len(attrs), np.nan)
    utm = np.full(len(attrs), None, dtype=object)
    if has.any():
        utm[has] = np.asarray(gpd.GeoSeries(geoms[has], crs=4326).to_crs(UTM_SRID).values, dtype=object)
        area[has] = shapely.area(utm[has])
    big = has & (area > CELL_MAX_AREA_M2)
    out.add_where(big, "area_too_large", lambda i: f"{area[i]:.1f} m² > {CELL_MAX_AREA_M2:g} m²")
    extra["area_m2"], extra["utm"] = area, utm
    return extra


def _locate(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(district id, cell id) for each WGS-84 point, None where none covers it: one set-based query."""
    has = np.array([p is not None for p in points], dtype=bool)
    district = np.full(len(points), None, dtype=object)
    cell = np.full(len(points), None, dtype=object)
    if not has.any():
        return district, cell
    xy = shapely.get_coordinates(points[has])
    sql = f"""
        SELECT d.id, c.id
        FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS p(x, y, i)
        CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(p.x, p.y), 4326) AS g) AS pt
        LEFT JOIN LATERAL (
            SELECT a.id FROM {AdminArea._meta.db_table} a
            WHERE a.level = %s AND ST_Covers(a.boundary, pt.g) ORDER BY a.code LIMIT 1
        ) AS d ON TRUE
        LEFT JOIN LATERAL (
            SELECT g.id FROM {GridCell._meta.db_table} g WHERE ST_Covers(g.geom, pt.g) ORDER BY g.code LIMIT 1
        ) AS c ON TRUE
        ORDER BY p.i"""
    with connection.cursor() as cur:
        cur.execute(sql, [xy[:, 0].tolist(), xy[:, 1].tolist(), AdminArea.Level.DISTRICT])
        rows = cur.fetchall()
    district[has] = [r[0] for r in rows]
    cell[has] = [r[1] for r in rows]
    return district, cell


def _check_located(*, geoms: np.ndarray, out: _Problems) -> dict[str, np.ndarray]:
    district, cell = _locate(geoms)
    outside = np.array([g is not None and d is None for g, d in zip(geoms, district, strict=True)], dtype=bool)
    out.add_where(outside, "outside_districts", lambda i: f"lon={geoms[i].x:.7f}, lat={geoms[i].y:.7f}")
    return {"district": district, "cell": cell}


def _check_cameras(*, attrs: pd.DataFrame, geoms: np.ndarray, out: _Problems, **_) -> dict[str, np.ndarray]:
    status = attrs["status"].replace("", Camera.Status.ONLINE.value)
    out.add_where(~status.isin(Camera.Status.values).to_numpy(), "value_invalid", lambda i: f"status={status[i]}")
    return {"status": status.to_numpy(), **_check_located(geoms=geoms, out=out)}


def _check_components(*, attrs: pd.DataFrame, geoms: np.ndarray, out: _Problems, **_) -> dict[str, np.ndarray]:
    major = attrs["major_class"]
    valid_major = major.isin(Component.MajorClass.values) | (major == "")
    out.add_where(~valid_major.to_numpy(), "value_invalid", lambda i: f"major_class={major[i]}")
    extra: dict[str, np.ndarray] = {}
    categories = _fetch(Category, attrs["category_code"], "id", "kind")
    ids = np.full(len(attrs), None, dtype=object)
    for i, code in enumerate(attrs["category_code"]):
        if code and code not in categories:
            out.add(i, "category_unknown", f"category_code={code}")
        elif code and categories[code][1] != Category.Kind.COMPONENT:
            out.add(i, "category_unknown", f"category_code={code} 是/is {categories[code][1]}")
        elif code:
            ids[i] = categories[code][0]
    extra["category"] = ids
    cols = ("authority_code", "owner_code", "maintainer_code")
    departments = _fetch(Department, pd.concat([attrs[c] for c in cols]), "id")
    for col in cols:
        ids = np.full(len(attrs), None, dtype=object)
        for i, code in enumerate(attrs[col]):
            if code and code not in departments:
                out.add(i, "department_unknown", f"{col}={code}")
            elif code:
                ids[i] = departments[code][0]
        extra[col.removesuffix("_code")] = ids
    extra["status"] = attrs["status"].replace("", "normal").to_numpy()
    return {**extra, **_check_located(geoms=geoms, out=out)}


_CHECKS = {"areas": _check_areas, "cells": _check_cells, "cameras": _check_cameras, "components": _check_components}


def features_validate(
    *, layer: str, frame: gpd.GeoDataFrame, crs: CRS, datum: str = "wgs84", update: bool = False
) -> Checked:
    """Every per-feature problem of `frame` (read by layer_read), with the WGS-84 geometries and resolved ids."""
    spec = LAYERS[layer]
    if datum not in DATUMS:
        raise GisIOError("value_invalid", f"datum={datum}")
    if datum != "wgs84" and not crs.is_geographic:
        raise GisIOError("datum_needs_lonlat", f"EPSG:{crs.to_epsg()}")
    attrs, present = columns_normalise(spec=spec, frame=frame)
    out = _Problems(list(attrs["code"]))
    geoms = geometries_to_wgs84(geoms=frame.geometry.values, kind=spec.geometry, crs=crs, datum=datum, out=out)
    existing = _check_common(spec=spec, attrs=attrs, update=update, out=out)
    extra = _CHECKS[layer](attrs=attrs, geoms=geoms, out=out)
    problems = sorted(out.items, key=lambda p: p.index)
    return Checked(
        attrs=attrs, geoms=geoms, extra=extra, existing=existing, problems=problems, bad=out.bad, present=present
    )


# --- writing -------------------------------------------------------------------------------------------


def _ewkb(geoms: np.ndarray) -> list[str]:
    return shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True).tolist()


def _upsert(*, model: type[models.Model], columns: dict[str, list], update: bool, absent: set[str]) -> None:
    """COPY the rows (db column → values) into a temporary table, then one INSERT … SELECT, with `update`
    ON CONFLICT (code) DO UPDATE. An optional column absent from the file leaves that field as it is on
    existing rows (a file of names alone must not blank the departments). psycopg escapes every value."""
    table, names = model._meta.db_table, list(columns)
    cols = ", ".join(f'"{c}"' for c in names)
    conflict = ""
    if update:
        kept = [c for c in names if c != "code" and c not in absent and f"{c.removesuffix('_id')}_code" not in absent]
        sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in kept) or '"code" = EXCLUDED."code"'
        conflict = f" ON CONFLICT (code) DO UPDATE SET {sets}"
    with connection.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE gisio_rows ON COMMIT DROP AS SELECT {cols} FROM {table} WITH NO DATA")
        with cur.cursor.copy(f"COPY gisio_rows ({cols}) FROM STDIN") as copy:
            for row in zip(*columns.values(), strict=True):
                copy.write_row(row)
        cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM gisio_rows{conflict}")
        cur.execute("DROP TABLE gisio_rows")  # inside a savepoint (tests, callers' transactions) too


def _write_areas(*, attrs: pd.DataFrame, geoms: np.ndarray, extra: dict, update: bool, absent: set[str]) -> None:
    area = shapely.area(np.asarray(gpd.GeoSeries(geoms, crs=4326).to_crs(UTM_SRID).values, dtype=object))
    columns = {c: attrs[c].tolist() for c in ("code", "name", "name_en", "level")}
    columns |= {"boundary": _ewkb(geoms), "area_m2": area.tolist(), "is_synthetic": extra["is_synthetic"].tolist()}
    _upsert(model=AdminArea, columns=columns, update=update, absent=absent)
    if "parent_code" in absent:
        return
    # Parents may be in the same file, so link them once every row exists: one UPDATE … FROM unnest.
    table = AdminArea._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"""UPDATE {table} a SET parent_id = p.id
                FROM unnest(%s::text[], %s::text[]) AS v(code, parent_code)
                LEFT JOIN {table} p ON p.code = v.parent_code
                WHERE a.code = v.code""",
            [attrs["code"].tolist(), attrs["parent_code"].tolist()],
        )


def _cell_row_col(utm: np.ndarray, row: np.ndarray, col: np.ndarray) -> tuple[list[int], list[int]]:
    """Given row/col where present; otherwise derived like geo.grid: 100 m squares aligned to multiples of
    100 m in UTM 51N, row 0 the northernmost and col 0 the westernmost of the file's bounding grid."""
    minx, _miny, _maxx, maxy = shapely.total_bounds(utm)
    # 1 mm slack: edges that went through WGS-84 sit a hair off the 100 m lines.
    x0 = np.floor((minx + 0.001) / CELL_SIZE_M) * CELL_SIZE_M
    y1 = np.ceil((maxy - 0.001) / CELL_SIZE_M) * CELL_SIZE_M
    xy = shapely.get_coordinates(shapely.point_on_surface(utm))
    row = np.where(np.isnan(row), np.floor((y1 - xy[:, 1]) / CELL_SIZE_M), row)
    col = np.where(np.isnan(col), np.floor((xy[:, 0] - x0) / CELL_SIZE_M), col)
    return row.astype(int).tolist(), col.astype(int).tolist()


def _write_cells(*, attrs: pd.DataFrame, geoms: np.ndarray, extra: dict, update: bool, absent: set[str]) -> None:
    rows, cols = _cell_row_col(extra["utm"], extra["row"].astype(float), extra["col"].astype(float))
    columns = {
        "code": attrs["code"].tolist(),
        "geom": _ewkb(geoms),
        "center": _ewkb(shapely.point_on_surface(geoms)),
        "area_m2": extra["area_m2"].tolist(),
        "row": rows,
        "col": cols,
        **{f"{k}_id": extra[k].tolist() for k in ("district", "street", "community")},
    }
    _upsert(model=GridCell, columns=columns, update=update, absent=absent)


def _write_cameras(*, attrs: pd.DataFrame, geoms: np.ndarray, extra: dict, update: bool, absent: set[str]) -> None:
    columns = {c: attrs[c].tolist() for c in ("code", "name", "stream_url")}
    columns |= {"status": extra["status"].tolist(), "location": _ewkb(geoms)}
    columns |= {f"{k}_id": extra[k].tolist() for k in ("district", "cell")}
    _upsert(model=Camera, columns=columns, update=update, absent=absent)


def _write_components(*, attrs: pd.DataFrame, geoms: np.ndarray, extra: dict, update: bool, absent: set[str]) -> None:
    fks = ("cell", "category", "authority", "owner", "maintainer")
    columns = {c: attrs[c].tolist() for c in ("code", "major_class", "name")}
    columns |= {"status": extra["status"].tolist(), "location": _ewkb(geoms)}
    columns |= {f"{k}_id": extra[k].tolist() for k in fks}
    _upsert(model=Component, columns=columns, update=update, absent=absent)


_WRITERS = {"areas": _write_areas, "cells": _write_cells, "cameras": _write_cameras, "components": _write_components}


def layer_import(
    *,
    layer: str,
    path: Path,
    source_layer: str | None = None,
    srid: int | None = None,
    datum: str = "wgs84",
    skip_invalid: bool = False,
    update: bool = False,
    dry_run: bool = False,
    lon_col: str | None = None,
    lat_col: str | None = None,
    encoding: str | None = None,
) -> ImportResult:
    """Read, validate and (unless any feature is bad and not `skip_invalid`) write one layer atomically."""
    spec = LAYERS[layer]
    is_csv = format_guess(path=path) == "csv"
    if is_csv and spec.geometry != "point":
        raise GisIOError("layer_not_point", layer)
    frame = layer_read(
        path=path, source_layer=source_layer, default_layer=layer, lon_col=lon_col, lat_col=lat_col, encoding=encoding
    )
    crs = crs_resolve(crs=frame.crs, srid=srid, default_epsg=4326 if is_csv else None)
    checked = features_validate(layer=layer, frame=frame, crs=crs, datum=datum, update=update)
    result = ImportResult(layer=layer, read=len(frame), problems=checked.problems, skipped=int(checked.bad.sum()))
    if dry_run or (checked.problems and not skip_invalid):
        return result
    keep = ~checked.bad
    attrs = checked.attrs[keep].reset_index(drop=True)
    extra = {k: v[keep] for k, v in checked.extra.items()}
    if len(attrs):
        try:
            with transaction.atomic():
                absent = set(spec.optional) - checked.present
                _WRITERS[layer](attrs=attrs, geoms=checked.geoms[keep], extra=extra, update=update, absent=absent)
        except DatabaseError as exc:  # e.g. a row with the same code committed meanwhile by someone else
            raise GisIOError("write_failed", str(exc).strip()) from exc
    result.updated = int(attrs["code"].isin(checked.existing).sum())
    result.created = len(attrs) - result.updated
    result.written = True
    return result


# --- export --------------------------------------------------------------------------------------------


def _export_queryset(*, spec: LayerSpec, district: str | None) -> models.QuerySet:
    qs = spec.model.objects.order_by("code")
    if district is None:
        return qs
    d = AdminArea.objects.filter(code=district, level=AdminArea.Level.DISTRICT).first()
    if d is None:
        raise GisIOError("district_unknown", district)
    if spec.model is AdminArea:
        return qs.filter(models.Q(pk=d.pk) | models.Q(parent=d) | models.Q(parent__parent=d))
    if spec.model is Component:  # no district column: the district's boundary decides
        return qs.filter(location__coveredby=d.boundary)
    return qs.filter(district=d)


def layer_frame(*, layer: str, district: str | None = None) -> gpd.GeoDataFrame:
    """One layer as a WGS-84 GeoDataFrame with the import columns (blank text for empty foreign keys)."""
    spec = LAYERS[layer]
    plain = [c for c, p in spec.export.items() if c == p]
    aliased = {c: F(p) for c, p in spec.export.items() if c != p}
    rows = _export_queryset(spec=spec, district=district).values(*plain, **aliased, wkb=AsWKB(spec.geom_field))
    data = pd.DataFrame.from_records(list(rows), columns=[*plain, *aliased, "wkb"])
    geoms = shapely.from_wkb([bytes(w) for w in data.pop("wkb")]) if len(data) else []
    data = data[list(spec.export)]
    for col in data.columns:
        if not pd.api.types.is_numeric_dtype(data[col]):
            data[col] = data[col].fillna("")
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=4326))


def layer_export(
    *,
    layer: str,
    path: Path,
    fmt: str | None = None,
    district: str | None = None,
    srid: int = 4326,
    datum: str = "wgs84",
    target_layer: str | None = None,
) -> ExportResult:
    """Write one layer in the columns layer_import reads, so export → import reproduces the rows."""
    spec = LAYERS[layer]
    path = Path(path)
    fmt = format_guess(path=path, fmt=fmt)
    if fmt == "csv" and spec.geometry != "point":
        raise GisIOError("layer_not_point", layer)
    crs = crs_resolve(crs=None, srid=srid)
    if datum not in DATUMS:
        raise GisIOError("value_invalid", f"datum={datum}")
    if datum != "wgs84" and not crs.is_geographic:
        raise GisIOError("datum_needs_lonlat", f"EPSG:{srid}")
    frame = layer_frame(layer=layer, district=district)
    if datum != "wgs84":
        frame.geometry = transform_geometry(frame.geometry.values, WGS84_TO_DATUM[datum])
    if srid in WGS84_EQUIVALENT:
        frame = frame.set_crs(srid, allow_override=True)
    else:
        frame = frame.to_crs(srid)
    if fmt == "csv":
        xy = shapely.get_coordinates(frame.geometry.values) if len(frame) else np.zeros((0, 2))
        x, y = ("lon", "lat") if crs.is_geographic else ("x", "y")
        table = pd.DataFrame(frame.drop(columns=frame.geometry.name)).assign(**{x: xy[:, 0], y: xy[:, 1]})
        try:
            table.to_csv(path, index=False, encoding="utf-8", float_format="%.10f" if crs.is_geographic else "%.4f")
        except OSError as exc:
            raise GisIOError("file_unwritable", f"{path}: {exc}") from exc
    else:
        if fmt == "shp":
            frame = frame.rename(columns=SHP_COLUMNS)
        try:
            pyogrio.write_dataframe(
                frame,
                path,
                driver=FORMATS[fmt][0],
                layer=target_layer or (layer if fmt == "gpkg" else None),
                geometry_type="MultiPolygon" if spec.geometry == "polygon" else "Point",
                encoding="UTF-8" if fmt == "shp" else None,
            )
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as exc:
            raise GisIOError("file_unwritable", f"{path}: {exc}") from exc
    return ExportResult(layer=layer, path=path, format=fmt, count=len(frame))
