"""gis_import / gis_export: round trips per layer and format, CRS and datum handling, and every kind of bad
input, which must be reported per feature and leave the database untouched (unless --skip-invalid)."""

import json
from io import StringIO

import factory
import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from django.contrib.gis.geos import GEOSGeometry
from django.core.management import call_command
from django.core.management.base import CommandError
from pyproj import Transformer

from geo import gisio
from geo.coords import wgs84_to_gcj02
from geo.gisio import LAYERS
from geo.models import AdminArea, Camera, Component, GridCell
from gridmgmt.models import Category, Department

pytestmark = pytest.mark.django_db

TO_WGS84 = Transformer.from_crs(32651, 4326, always_xy=True)
E0, N0 = 358_400.0, 3_456_400.0  # Lujiazui in UTM 51N, on the 100 m grid


def utm_to_wgs84(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(TO_WGS84.transform(xy[:, 0], xy[:, 1])))


def box(x0: float, y0: float, x1: float, y1: float):
    """A WGS-84 polygon from a box given in metres east/north of the test origin."""
    return utm_to_wgs84(shapely.box(E0 + x0, N0 + y0, E0 + x1, N0 + y1))


def point(x: float, y: float):
    return utm_to_wgs84(shapely.Point(E0 + x, N0 + y))


def geos(geom) -> GEOSGeometry:
    if geom.geom_type == "Polygon":
        geom = shapely.MultiPolygon([geom])
    return GEOSGeometry(shapely.to_wkb(geom, hex=True), srid=4326)


class AreaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AdminArea

    code = factory.Sequence(lambda n: f"98{n:04d}")
    name = factory.Sequence(lambda n: f"区域{n}")
    level = AdminArea.Level.DISTRICT
    boundary = factory.LazyFunction(lambda: geos(box(0, 0, 1000, 1000)))
    area_m2 = 1_000_000.0


class CellFactory(factory.django.DjangoModelFactory):
    """The 100 m cell at (row_i, col_i) of the test origin's top-left kilometre; rows count southwards."""

    class Meta:
        model = GridCell

    class Params:
        square = factory.LazyAttribute(
            lambda o: box(o.col * 100, 900 - o.row * 100, o.col * 100 + 100, 1000 - o.row * 100)
        )

    code = factory.LazyAttribute(lambda o: f"{o.district.code}{o.row:03d}{o.col:03d}")
    geom = factory.LazyAttribute(lambda o: geos(o.square))
    center = factory.LazyAttribute(lambda o: geos(o.square.point_on_surface()))
    area_m2 = 10_000.0
    row = 0
    col = 0


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department

    code = factory.Sequence(lambda n: f"DEP{n:03d}")
    name = factory.Sequence(lambda n: f"部门{n}")


@pytest.fixture
def world():
    """A 1 km district near Lujiazui; a street (west half), a community (its north half), four cells in it,
    two departments, a component category, two cameras and two components."""
    d = AreaFactory(code="980100", name="测试区", name_en="Test District", level="district")
    s = AreaFactory(code="980100001", name="测试街道", level="street", parent=d, boundary=geos(box(0, 0, 500, 1000)))
    c = AreaFactory(
        code="980100001001", name="测试社区", level="community", parent=s, boundary=geos(box(0, 500, 500, 1000))
    )
    AreaFactory(code="980100001002", name="合成社区", level="community", parent=s, is_synthetic=True,
                boundary=geos(box(0, 0, 500, 500)))  # fmt: skip
    cells = [CellFactory(district=d, street=s, community=c, row=r, col=k) for r in (0, 1) for k in (0, 1)]
    auth, owner = DepartmentFactory(code="CGJ"), DepartmentFactory(code="SWJ")
    cat = Category.objects.create(code="0101", kind=Category.Kind.COMPONENT, name="上水井盖")
    Category.objects.create(code="E0101", kind=Category.Kind.EVENT, name="暴露垃圾")
    Camera.objects.create(code="CAM-1", name="东门", location=geos(point(30, 960)), cell=cells[0], district=d,
                          stream_url="rtsp://10.0.0.1/1")  # fmt: skip
    Camera.objects.create(code="CAM-2", name="路口", location=geos(point(150, 820)), cell=cells[3], district=d,
                          status=Camera.Status.OFFLINE)  # fmt: skip
    Component.objects.create(code="980100010100001", major_class="01", category=cat, name="井盖 1",
                             location=geos(point(40, 950)), cell=cells[0], authority=auth, owner=owner)  # fmt: skip
    Component.objects.create(code="980100020100001", major_class="02", location=geos(point(160, 830)),
                             cell=cells[3], maintainer=owner, status="damaged")  # fmt: skip
    return {"district": d, "street": s, "community": c, "cells": cells}


SNAPSHOT = {  # compared attributes; the geometry comes last
    "areas": ("code", "name", "name_en", "level", "parent__code", "is_synthetic", "boundary"),
    "cells": ("code", "district__code", "street__code", "community__code", "row", "col", "geom"),
    "cameras": ("code", "name", "status", "stream_url", "district__code", "cell__code", "location"),
    "components": (
        "code", "major_class", "category__code", "name", "authority__code", "owner__code", "maintainer__code",
        "status", "cell__code", "location",
    ),
}  # fmt: skip


def snapshot(layer: str) -> dict:
    rows = LAYERS[layer].model.objects.values_list(*SNAPSHOT[layer])
    return {r[0]: (r[1:-1], shapely.from_wkb(bytes(r[-1].wkb))) for r in rows}


def assert_same_rows(before: dict, after: dict) -> None:
    assert sorted(after) == sorted(before)
    for code, (attrs, geom) in before.items():
        assert after[code][0] == attrs, code
        assert shapely.equals_exact(shapely.normalize(after[code][1]), shapely.normalize(geom), 1e-7), code


def counts() -> tuple[int, ...]:
    return tuple(spec.model.objects.count() for spec in LAYERS.values())


def wipe(layer: str) -> None:
    """Delete a layer's rows (for areas also everything that points at them), children first."""
    if layer == "areas":
        Camera.objects.all().delete()
        Component.objects.all().delete()
        GridCell.objects.all().delete()
        for level in ("community", "street", "district", "city"):
            AdminArea.objects.filter(level=level).delete()
    else:
        LAYERS[layer].model.objects.all().delete()


def run(command: str, *args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(command, *[str(a) for a in args], stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing(command: str, *args, returncode: int = 1) -> tuple[str, str]:
    """Run a command that must exit non-zero; returns (error message, stderr)."""
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as exc:
        call_command(command, *[str(a) for a in args], stdout=out, stderr=err)
    assert exc.value.returncode == returncode
    return str(exc.value), err.getvalue()


def run_skipping(*args) -> tuple[str, str]:
    """gis_import --skip-invalid with problems: the valid features are written, and the exit status is 2."""
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="the rest written") as exc:
        call_command("gis_import", *[str(a) for a in args], "--skip-invalid", stdout=out, stderr=err)
    assert exc.value.returncode == 2
    return out.getvalue(), err.getvalue()


def write_geojson(path, features: list[tuple[dict, object]], crs: str | None = None):
    """features: (properties, shapely geometry or None or a raw GeoJSON geometry dict)."""
    data = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": props,
                "geometry": g if isinstance(g, dict | None) else g.__geo_interface__,
            }
            for props, g in features
        ],
    }
    if crs:
        data["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def cell_props(code: str, **extra) -> dict:
    return {
        "code": code,
        "district_code": "980100",
        "street_code": "980100001",
        "community_code": "980100001001",
    } | extra


# --- round trips ---------------------------------------------------------------------------------------

ROUND_TRIPS = [
    (layer, fmt)
    for layer, spec in LAYERS.items()
    for fmt in ("geojson", "gpkg", "shp", "csv")
    if fmt != "csv" or spec.geometry == "point"
]


@pytest.mark.parametrize(("layer", "fmt"), ROUND_TRIPS)
def test_round_trip(world, tmp_path, layer, fmt):
    before = snapshot(layer)
    path = tmp_path / f"{layer}.{fmt}"
    out, _ = run("gis_export", layer, path)
    assert f"导出 {len(before)} 个要素" in out
    wipe(layer)
    out, err = run("gis_import", layer, path)
    assert err == ""
    assert f"新建 {len(before)} (created)" in out
    assert_same_rows(before, snapshot(layer))


def test_round_trip_recomputes_cell_area_and_center(world, tmp_path):
    run("gis_export", "cells", tmp_path / "c.gpkg")
    wipe("cells")
    run("gis_import", "cells", tmp_path / "c.gpkg")
    for cell in GridCell.objects.all():
        assert cell.area_m2 == pytest.approx(10_000, abs=0.01)
        assert cell.geom.covers(cell.center)


def test_shapefile_uses_short_column_names(world, tmp_path):
    run("gis_export", "components", tmp_path / "c.shp")
    fields = set(pyogrio.read_info(tmp_path / "c.shp")["fields"])
    assert {"major", "category", "authority", "owner", "maintainer"} <= fields
    assert all(len(f) <= 10 for f in fields)
    run("gis_export", "areas", tmp_path / "a.shp")
    assert "parent" in set(pyogrio.read_info(tmp_path / "a.shp")["fields"])


def test_several_layers_in_one_geopackage(world, tmp_path):
    path = tmp_path / "all.gpkg"
    for layer in LAYERS:
        run("gis_export", layer, path)
    assert sorted(pyogrio.list_layers(path)[:, 0]) == sorted(LAYERS)
    before = snapshot("cameras")
    wipe("cameras")
    run("gis_import", "cameras", path)  # picks the layer named after the target
    assert_same_rows(before, snapshot("cameras"))


def test_export_filters_by_district(world, tmp_path):
    AreaFactory(code="980200", level="district", boundary=geos(box(2000, 0, 3000, 1000)))
    Camera.objects.create(code="CAM-X", name="别区", location=geos(point(2500, 500)))
    out, _ = run("gis_export", "cameras", tmp_path / "c.geojson", "--district", "980100")
    assert "导出 2 个要素" in out
    out, _ = run("gis_export", "areas", tmp_path / "a.geojson", "--district", "980100")
    assert "导出 4 个要素" in out
    out, _ = run("gis_export", "components", tmp_path / "p.geojson", "--district", "980200")
    assert "导出 0 个要素" in out
    msg, _ = run_failing("gis_export", "cameras", tmp_path / "c.geojson", "--district", "999999")
    assert "未知的区代码" in msg


def test_export_errors(world, tmp_path):
    assert "CSV 只能用于点图层" in run_failing("gis_export", "cells", tmp_path / "c.csv")[0]
    assert "无法识别的文件格式" in run_failing("gis_export", "cells", tmp_path / "c.txt")[0]
    assert "无法写入文件" in run_failing("gis_export", "cells", tmp_path / "nowhere" / "c.gpkg")[0]
    assert "无效的 EPSG 代码" in run_failing("gis_export", "cells", tmp_path / "c.gpkg", "--srid", "999999")[0]


# --- CRS and datum -------------------------------------------------------------------------------------


def test_utm_input_from_geopackage(world, tmp_path):
    before = snapshot("cells")
    run("gis_export", "cells", tmp_path / "c.gpkg", "--srid", "32651")
    assert pyogrio.read_info(tmp_path / "c.gpkg")["crs"] == "EPSG:32651"
    wipe("cells")
    run("gis_import", "cells", tmp_path / "c.gpkg")
    assert_same_rows(before, snapshot("cells"))


def test_utm_csv_with_srid_and_custom_columns(world, tmp_path):
    before = snapshot("cameras")
    run("gis_export", "cameras", tmp_path / "c.csv", "--srid", "32651")
    frame = pd.read_csv(tmp_path / "c.csv", dtype=str).rename(columns={"x": "east", "y": "north"})
    frame.to_csv(tmp_path / "c.csv", index=False)
    wipe("cameras")
    run("gis_import", "cameras", tmp_path / "c.csv", "--srid", "32651", "--lon-col", "east", "--lat-col", "north")
    assert_same_rows(before, snapshot("cameras"))


def test_cgcs2000_input_is_taken_as_wgs84(world, tmp_path):
    before = snapshot("components")
    run("gis_export", "components", tmp_path / "c.shp", "--srid", "4490")
    assert pyogrio.read_dataframe(tmp_path / "c.shp").crs.to_epsg() == 4490
    wipe("components")
    run("gis_import", "components", tmp_path / "c.shp")
    assert_same_rows(before, snapshot("components"))


def test_gcj02_csv_input(world, tmp_path):
    wgs = [point(60, 930), point(250, 700)]
    lon, lat = wgs84_to_gcj02([p.x for p in wgs], [p.y for p in wgs])
    assert abs(lon[0] - wgs[0].x) > 0.003  # the offset in Shanghai is about 470 m
    frame = pd.DataFrame({"code": ["G1", "G2"], "name": ["高德 1", "高德 2"], "lon": lon, "lat": lat})
    frame.to_csv(tmp_path / "g.csv", index=False, float_format="%.12f")
    run("gis_import", "cameras", tmp_path / "g.csv", "--datum", "gcj02")
    stored = {c.code: c for c in Camera.objects.filter(code__in=["G1", "G2"])}
    for code, p in zip(["G1", "G2"], wgs, strict=True):
        assert stored[code].location.x == pytest.approx(p.x, abs=1e-7)
        assert stored[code].location.y == pytest.approx(p.y, abs=1e-7)
    assert stored["G1"].cell.code == "980100000000"
    assert stored["G2"].cell is None and stored["G2"].district.code == "980100"


@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_chinese_datum_polygons_round_trip(world, tmp_path, datum):
    before = snapshot("cells")
    run("gis_export", "cells", tmp_path / "c.geojson", "--datum", datum)
    shifted = pyogrio.read_dataframe(tmp_path / "c.geojson").geometry.iloc[0]
    assert shifted.distance(shapely.from_wkb(bytes(GridCell.objects.first().geom.wkb))) > 0.003
    wipe("cells")
    run("gis_import", "cells", tmp_path / "c.geojson", "--datum", datum)
    assert_same_rows(before, snapshot("cells"))


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_missing_crs_needs_srid(world, tmp_path):
    frame = gpd.GeoDataFrame({"code": ["N1"], "name": ["无坐标系"]}, geometry=[point(30, 960)], crs=None)
    frame.to_file(tmp_path / "n.shp", engine="pyogrio")
    assert not (tmp_path / "n.prj").exists()
    before = counts()
    msg, _ = run_failing("gis_import", "cameras", tmp_path / "n.shp")
    assert "坐标系未知" in msg and "--srid" in msg
    assert counts() == before
    run("gis_import", "cameras", tmp_path / "n.shp", "--srid", "4326")
    assert Camera.objects.get(code="N1").district.code == "980100"


def test_crs_without_epsg_code(world, tmp_path):
    local = "+proj=tmerc +lat_0=31.2 +lon_0=121.5 +k=1 +x_0=0 +y_0=0 +ellps=GRS80 +units=m +no_defs"
    frame = gpd.GeoDataFrame({"code": ["L1"], "name": ["地方坐标"]}, geometry=[shapely.Point(100, 100)], crs=local)
    frame.to_file(tmp_path / "l.gpkg", engine="pyogrio")
    before = counts()
    msg, _ = run_failing("gis_import", "cameras", tmp_path / "l.gpkg")
    assert "坐标系没有 EPSG 代码" in msg
    assert counts() == before


def test_bad_srid_and_datum_on_projected_input(world, tmp_path):
    path = write_geojson(tmp_path / "c.geojson", [({"code": "C9", "name": "x"}, point(30, 960))])
    assert "无效的 EPSG 代码" in run_failing("gis_import", "cameras", path, "--srid", "999999")[0]
    msg, _ = run_failing("gis_import", "cameras", path, "--srid", "32651", "--datum", "gcj02")
    assert "--datum 只适用于经纬度坐标" in msg


# --- bad input: reported per feature, nothing written --------------------------------------------------


def test_invalid_geometry_is_reported_not_repaired(world, tmp_path):
    bowtie = shapely.Polygon([(121.50, 31.20), (121.501, 31.201), (121.501, 31.20), (121.50, 31.201)])
    good = box(300, 900, 400, 1000)
    path = write_geojson(tmp_path / "c.geojson", [(cell_props("C-OK"), good), (cell_props("C-BOW"), bowtie)])
    before = counts()
    msg, err = run_failing("gis_import", "cells", path)
    assert "第 2 个要素 (feature #2) [C-BOW] 几何无效 (invalid geometry): Self-intersection" in err
    assert "nothing written" in msg
    assert counts() == before
    out, err = run_skipping("cells", path)
    assert "新建 1 (created)" in out and "跳过 1 (skipped)" in out and "Self-intersection" in err
    assert GridCell.objects.filter(code="C-OK").exists() and not GridCell.objects.filter(code="C-BOW").exists()
    cell = GridCell.objects.get(code="C-OK")
    assert (cell.row, cell.col, round(cell.area_m2)) == (0, 0, 10_000)  # derived from the file's own grid


def test_wrong_and_empty_geometries(world, tmp_path):
    line = shapely.LineString([(121.5, 31.2), (121.51, 31.21)])
    empty = {"type": "Polygon", "coordinates": []}
    path = write_geojson(
        tmp_path / "c.geojson", [(cell_props("C-LINE"), line), (cell_props("C-NULL"), None), (cell_props("C-E"), empty)]
    )
    before = counts()
    _, err = run_failing("gis_import", "cells", path)
    assert "[C-LINE] 几何类型错误 (wrong geometry type): LineString, 应为/expected Polygon/MultiPolygon" in err
    assert "[C-NULL] 几何缺失或为空 (missing or empty geometry)" in err
    assert "[C-E] 几何缺失或为空" in err
    path = write_geojson(tmp_path / "p.geojson", [({"code": "P1", "name": "面"}, box(0, 900, 100, 1000))])
    _, err = run_failing("gis_import", "cameras", path)
    assert "[P1] 几何类型错误 (wrong geometry type): Polygon, 应为/expected Point" in err
    assert counts() == before


def test_missing_required_columns_are_listed(world, tmp_path):
    path = write_geojson(tmp_path / "c.geojson", [({"title": "x"}, point(30, 960))])
    before = counts()
    msg, _ = run_failing("gis_import", "cameras", path)
    assert "缺少必需的列 (missing required columns): code, name" in msg
    pd.DataFrame({"code": ["A"], "name": ["b"], "longitude_deg": [121.5]}).to_csv(tmp_path / "c.csv", index=False)
    msg, _ = run_failing("gis_import", "cameras", tmp_path / "c.csv")
    assert "缺少必需的列" in msg and "lon, lat" in msg
    assert counts() == before


def test_missing_and_too_long_values(world, tmp_path):
    path = write_geojson(
        tmp_path / "c.geojson",
        [({"code": "", "name": "无编码"}, point(30, 960)), ({"code": "L" * 40, "name": "长"}, point(30, 960))],
    )
    before = counts()
    _, err = run_failing("gis_import", "cameras", path)
    assert "[-] 缺少必填值 (required value missing): code" in err
    assert "取值过长 (value too long): code > 32" in err
    assert counts() == before


def test_points_are_located_in_a_constant_number_of_queries(world, tmp_path, django_assert_max_num_queries):
    xs, ys = np.meshgrid(np.arange(5, 200, 10.0), np.arange(805, 1000, 10.0))
    points = [point(x, y) for x, y in zip(xs.ravel(), ys.ravel(), strict=True)]
    frame = pd.DataFrame({"code": [f"Q{i}" for i in range(len(points))], "major_class": "03"})
    frame.assign(lon=[p.x for p in points], lat=[p.y for p in points]).to_csv(tmp_path / "q.csv", index=False)
    with django_assert_max_num_queries(8):  # lookups, one locate query, one INSERT: not one query per row
        out, _ = run("gis_import", "components", tmp_path / "q.csv")
    assert "新建 400 (created)" in out
    assert Component.objects.filter(code__startswith="Q", cell__isnull=False).count() == 400


def test_duplicate_codes_in_file_and_database(world, tmp_path):
    path = write_geojson(
        tmp_path / "c.geojson",
        [
            ({"code": "D1", "name": "一"}, point(30, 960)),
            ({"code": "D1", "name": "二"}, point(40, 960)),
            ({"code": "CAM-1", "name": "已有"}, point(50, 960)),
        ],
    )
    before = counts()
    _, err = run_failing("gis_import", "cameras", path)
    assert "第 2 个要素 (feature #2) [D1] 编码在文件中重复 (code repeated in the file): 同第 1 个要素" in err
    assert "[CAM-1] 编码已存在于数据库 (可用 --update 更新)" in err
    assert counts() == before


def test_update_replaces_existing_rows(world, tmp_path):
    run("gis_export", "cameras", tmp_path / "c.gpkg")
    frame = pyogrio.read_dataframe(tmp_path / "c.gpkg")
    frame["name"] = ["新名 1", "新名 2"]
    frame.loc[1, "geometry"] = point(30, 960)  # moves CAM-2 into the first cell
    pyogrio.write_dataframe(frame, tmp_path / "c.gpkg", layer="cameras")
    before = counts()
    _, err = run_failing("gis_import", "cameras", tmp_path / "c.gpkg")
    assert err.count("编码已存在于数据库") == 2
    out, _ = run("gis_import", "cameras", tmp_path / "c.gpkg", "--update")
    assert "新建 0 (created), 更新 2 (updated)" in out
    assert counts() == before
    cam = Camera.objects.get(code="CAM-2")
    assert cam.name == "新名 2" and cam.cell.code == "980100000000" and cam.status == "offline"


def test_update_leaves_fields_of_absent_columns_alone(world, tmp_path):
    # Only code, name and a position: departments, category, status must survive an --update.
    p = point(40, 950)
    pd.DataFrame(
        {"code": ["980100010100001"], "major_class": ["01"], "name": ["改名"], "lon": [p.x], "lat": [p.y]}
    ).to_csv(tmp_path / "k.csv", index=False)
    run("gis_import", "components", tmp_path / "k.csv", "--update")
    comp = Component.objects.get(code="980100010100001")
    assert comp.name == "改名"
    assert (comp.category.code, comp.authority.code, comp.owner.code) == ("0101", "CGJ", "SWJ")
    path = write_geojson(
        tmp_path / "a.geojson", [({"code": "980100001", "name": "新街道", "level": "street"}, box(0, 0, 500, 1000))]
    )
    run("gis_import", "areas", path, "--update")
    street = AdminArea.objects.get(code="980100001")
    assert street.name == "新街道" and street.parent.code == "980100"


def test_text_is_stored_verbatim(world, tmp_path):
    name = 'tab\there, back\\slash, "quote", 换行\nline'
    path = write_geojson(tmp_path / "c.geojson", [({"code": "T1", "name": name, "stream_url": "\\N"}, point(30, 960))])
    run("gis_import", "cameras", path)
    cam = Camera.objects.get(code="T1")
    assert (cam.name, cam.stream_url) == (name, "\\N")


def test_database_refusal_writes_nothing(world, tmp_path, monkeypatch):
    # Another writer stores the same code between validation and write: the unique index refuses the batch.
    monkeypatch.setattr(gisio, "_check_common", lambda **kw: set())
    path = write_geojson(
        tmp_path / "c.geojson",
        [({"code": "NEW", "name": "新"}, point(30, 960)), ({"code": "CAM-1", "name": "重"}, point(40, 960))],
    )
    before = counts()
    msg, _ = run_failing("gis_import", "cameras", path)
    assert "写入数据库失败, 未写入任何数据" in msg and "duplicate key" in msg
    assert counts() == before


def test_gbk_csv_needs_encoding(world, tmp_path):
    p = point(30, 960)
    pd.DataFrame({"code": ["GBK1"], "name": ["东门摄像头"], "lon": [p.x], "lat": [p.y]}).to_csv(
        tmp_path / "g.csv", index=False, encoding="gbk"
    )
    msg, _ = run_failing("gis_import", "cameras", tmp_path / "g.csv")
    assert "无法读取文件" in msg and "--encoding gbk" in msg
    run("gis_import", "cameras", tmp_path / "g.csv", "--encoding", "gbk")
    assert Camera.objects.get(code="GBK1").name == "东门摄像头"


def test_unknown_parent_and_parent_of_rejected_feature(world, tmp_path):
    path = write_geojson(
        tmp_path / "a.geojson",
        [
            ({"code": "980300", "name": "新区", "level": "district"}, box(0, 0, 10, 10)),
            ({"code": "980300001", "name": "孤儿", "level": "street", "parent_code": "999999"}, box(0, 0, 5, 5)),
            ({"code": "980300002", "name": "坏形", "level": "street", "parent_code": "980300"}, None),
            ({"code": "980300002001", "name": "孙", "level": "community", "parent_code": "980300002"}, box(0, 0, 2, 2)),
            ({"code": "980300003", "name": "层级", "level": "district", "parent_code": "980100001"}, box(0, 0, 2, 2)),
            ({"code": "980300004", "name": "?", "level": "town", "parent_code": "980300"}, box(0, 0, 2, 2)),
        ],
    )
    before = counts()
    _, err = run_failing("gis_import", "areas", path)
    assert "[980300001] 未知的上级代码 (unknown parent code): parent_code=999999" in err
    assert "[980300002001] 上级要素本身有问题 (the parent feature is itself invalid): parent_code=980300002" in err
    assert (
        "[980300003] 上级层级不符 (parent is not of a higher level): 980100001 (street) → 980300003 (district)" in err
    )
    assert "[980300004] 取值无效 (invalid value): level=town" in err
    assert counts() == before
    run_skipping("areas", path)
    assert list(AdminArea.objects.filter(code__startswith="980300").values_list("code", flat=True)) == ["980300"]


def test_parents_inside_the_file_are_linked(world, tmp_path):
    path = write_geojson(
        tmp_path / "a.geojson",
        [  # child before parent: the order in the file does not matter
            ({"code": "980400001", "name": "街", "level": "street", "parent_code": "980400"}, box(0, 0, 5, 5)),
            ({"code": "980400", "name": "区", "level": "district"}, box(0, 0, 10, 10)),
        ],
    )
    run("gis_import", "areas", path)
    street = AdminArea.objects.get(code="980400001")
    assert street.parent.code == "980400" and street.area_m2 == pytest.approx(25, rel=1e-3)


def test_unknown_codes_of_cells(world, tmp_path):
    path = write_geojson(
        tmp_path / "c.geojson",
        [
            (cell_props("C1", district_code="999999"), box(300, 900, 400, 1000)),
            (cell_props("C2", district_code="980100001"), box(300, 800, 400, 900)),
            (cell_props("C3", row="x"), box(300, 700, 400, 800)),
        ],
    )
    before = counts()
    _, err = run_failing("gis_import", "cells", path)
    assert "[C1] 未知的行政区代码 (unknown admin area code): district_code=999999" in err
    assert "[C2] 取值无效 (invalid value): district_code=980100001 是/is street, 应为/expected district" in err
    assert "[C3] 取值无效 (invalid value): row=x" in err
    assert counts() == before


def test_cell_too_large(world, tmp_path):
    path = write_geojson(tmp_path / "c.geojson", [(cell_props("BIG"), box(300, 800, 500, 1000))])
    _, err = run_failing("gis_import", "cells", path)
    assert "[BIG] 网格面积超过上限 (cell area above the limit): 40000.0 m² > 10050 m²" in err


def test_unknown_departments_and_categories(world, tmp_path):
    rows = [
        {"code": "K1", "major_class": "01", "category_code": "9999", "authority_code": "CGJ"},
        {"code": "K2", "major_class": "01", "category_code": "E0101"},
        {"code": "K3", "major_class": "01", "owner_code": "NOPE", "maintainer_code": "SWJ"},
        {"code": "K4", "major_class": "1"},
    ]
    frame = pd.DataFrame(rows).assign(lon=point(60, 930).x, lat=point(60, 930).y)
    frame.to_csv(tmp_path / "k.csv", index=False)
    before = counts()
    _, err = run_failing("gis_import", "components", tmp_path / "k.csv")
    assert "[K1] 未知的部件小类代码 (unknown component category code): category_code=9999" in err
    assert "[K2] 未知的部件小类代码 (unknown component category code): category_code=E0101 是/is event" in err
    assert "[K3] 未知的部门代码 (unknown department code): owner_code=NOPE" in err
    assert "[K4] 取值无效 (invalid value): major_class=1" in err
    assert counts() == before


def test_points_outside_every_district(world, tmp_path):
    path = write_geojson(
        tmp_path / "c.geojson",
        [({"code": "IN", "name": "内"}, point(30, 960)), ({"code": "OUT", "name": "外"}, point(5000, 5000))],
    )
    before = counts()
    _, err = run_failing("gis_import", "cameras", path)
    assert "[OUT] 不在任何区的范围内 (outside every district): lon=" in err
    assert "[IN]" not in err
    assert counts() == before
    out, _ = run_skipping("cameras", path)
    assert "新建 1 (created)" in out
    assert Camera.objects.get(code="IN").cell.code == "980100000000"


def test_lonlat_out_of_range_and_unparseable(world, tmp_path):
    frame = pd.DataFrame(
        {"code": ["R1", "R2", "R3", "R4"], "name": ["a", "b", "c", "d"], "lon": ["31.2", "121.5", "", "东经"],
         "lat": ["121.5", "95", "31.2", "31.2"]}
    )  # fmt: skip
    frame.to_csv(tmp_path / "r.csv", index=False)
    before = counts()
    _, err = run_failing("gis_import", "cameras", tmp_path / "r.csv")
    assert "[R1] 经纬度超出范围 (lon/lat out of range): lon 31.2..31.2, lat 121.5..121.5" in err
    assert "[R2] 经纬度超出范围" in err
    assert "[R3] 几何缺失或为空" in err and "[R4] 几何缺失或为空" in err
    # Metres in a CSV without --srid are caught by the range check, with a hint.
    pd.DataFrame({"code": ["M1"], "name": ["m"], "x": [E0 + 30], "y": [N0 + 960]}).to_csv(tmp_path / "m.csv")
    _, err = run_failing("gis_import", "cameras", tmp_path / "m.csv")
    assert "[M1] 经纬度超出范围" in err and "--srid" in err
    assert counts() == before


def test_unreadable_and_unknown_files(world, tmp_path):
    (tmp_path / "bad.geojson").write_text("{ this is not json", encoding="utf-8")
    (tmp_path / "bad.gpkg").write_bytes(b"\x00" * 100)
    (tmp_path / "data.txt").write_text("code,name\n", encoding="utf-8")
    before = counts()
    assert "无法读取文件" in run_failing("gis_import", "cameras", tmp_path / "bad.geojson")[0]
    assert "无法读取文件" in run_failing("gis_import", "cameras", tmp_path / "bad.gpkg")[0]
    assert "无法识别的文件格式" in run_failing("gis_import", "cameras", tmp_path / "data.txt")[0]
    assert "文件不存在" in run_failing("gis_import", "cameras", tmp_path / "none.geojson")[0]
    assert "CSV 只能用于点图层" in run_failing("gis_import", "cells", tmp_path / "data.csv")[0]
    assert counts() == before


def test_geopackage_layer_choice(world, tmp_path):
    path = tmp_path / "two.gpkg"
    for name in ("east", "west"):
        frame = gpd.GeoDataFrame({"code": [f"{name}-1"], "name": [name]}, geometry=[point(30, 960)], crs=4326)
        frame.to_file(path, layer=name, engine="pyogrio")
    msg, _ = run_failing("gis_import", "cameras", path)
    assert "文件包含多个图层" in msg and "east" in msg and "west" in msg
    msg, _ = run_failing("gis_import", "cameras", path, "--layer", "north")
    assert "文件中没有该图层 (no such layer in the file): north" in msg
    run("gis_import", "cameras", path, "--layer", "west")
    assert Camera.objects.filter(code="west-1").exists() and not Camera.objects.filter(code="east-1").exists()


def test_dry_run_writes_nothing(world, tmp_path):
    path = write_geojson(tmp_path / "c.geojson", [({"code": "DRY", "name": "试"}, point(30, 960))])
    before = counts()
    out, _ = run("gis_import", "cameras", path, "--dry-run")
    assert "试运行" in out
    assert counts() == before
