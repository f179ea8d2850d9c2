"""Grid generation (pure shapely) and grid_build on a small district in real PostGIS."""

import numpy as np
import pytest
import shapely
from django.core.management import call_command
from django.db import connection

from geo import services
from geo.grid import Region, grid_generate
from geo.models import AdminArea, GridCell, ResponsibilityGrid
from tests.factories import ORIGIN_E, ORIGIN_N, DistrictFactory, multi_wkt


def test_sliver_under_50_m2_merges_into_its_neighbour():
    region = shapely.box(0, 0, 100.3, 100)  # a 30 m² sliver east of one full cell
    pieces = grid_generate(regions=[Region(key=1, code="X", geom=region)])
    assert len(pieces.code) == 1
    assert pieces.area[0] == pytest.approx(10_030, abs=0.01)


def test_larger_piece_stays_a_cell_of_its_own():
    pieces = grid_generate(regions=[Region(key=1, code="X", geom=shapely.box(0, 0, 101, 100))])
    assert sorted(pieces.area.round(3)) == [100.0, 10_000.0]


def test_sliver_is_not_merged_past_the_cap():
    # Two 40 m² slivers on both sides of one full cell: the second would exceed 10,050 m².
    region = shapely.box(-0.4, 0, 100.4, 100)
    pieces = grid_generate(regions=[Region(key=1, code="X", geom=region)])
    assert pieces.area.max() <= 10_050
    assert pieces.area.sum() == pytest.approx(region.area)


def test_codes_run_west_to_east_then_north_to_south_within_each_region():
    regions = [Region(key=1, code="A", geom=shapely.box(0, 0, 300, 200)), Region(2, "B", shapely.box(300, 0, 400, 200))]
    pieces = grid_generate(regions=regions)
    a = [(c, r, k) for c, r, k in zip(pieces.code, pieces.row, pieces.col, strict=True) if c.startswith("A")]
    assert [c for c, _, _ in a] == ["A001", "A002", "A003", "A004", "A005", "A006"]
    assert [(r, k) for _, r, k in a] == sorted((r, k) for _, r, k in a)
    assert {c for c in pieces.code if c.startswith("B")} == {"B001", "B002"}


@pytest.fixture
def round_district(db):
    """An irregular district: a 900 m-radius disc with a bite out of it, so many cells are clipped."""
    centre = shapely.Point(ORIGIN_E + 1000, ORIGIN_N + 1000)
    shape = centre.buffer(900, quad_segs=32).difference(shapely.box(ORIGIN_E + 980, ORIGIN_N, ORIGIN_E + 1023, 1e9))
    return DistrictFactory(code="990115", boundary=multi_wkt(shape), area_m2=shape.area), shape


def _metric_area(sql_where: str = "TRUE") -> float:
    with connection.cursor() as cur:
        cur.execute(f"SELECT sum(ST_Area(ST_Transform(geom, 32651))) FROM geo_gridcell WHERE {sql_where}")
        return cur.fetchone()[0]


def test_grid_build_covers_the_district_without_overlaps(round_district):
    district, shape = round_district
    result = services.grid_build(district_code=district.code)
    assert result.cells == GridCell.objects.count() > 200
    # Total area within 0.5 % of the district's (measured in EPSG:32651), here essentially exact.
    assert _metric_area() == pytest.approx(shape.area, rel=1e-4)
    with connection.cursor() as cur:
        cur.execute(
            """SELECT count(*) FROM geo_gridcell a JOIN geo_gridcell b ON a.id < b.id AND a.geom && b.geom
               WHERE ST_Area(ST_Transform(ST_Intersection(a.geom, b.geom), 32651)) > 0.01"""
        )
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT max(ST_Area(ST_Transform(geom, 32651))), bool_and(ST_IsValid(geom)) FROM geo_gridcell")
        max_area, all_valid = cur.fetchone()
    assert max_area <= 10_050 and all_valid
    assert all(len(c) == 9 and c.startswith("990115") for c in GridCell.objects.values_list("code", flat=True))


def test_grid_build_is_idempotent(round_district):
    district, _ = round_district
    first = services.grid_build(district_code=district.code)
    again = services.grid_build(district_code=district.code)
    assert again.skipped and GridCell.objects.count() == first.cells


def test_rebuild_replaces_cells_and_unlinks_cameras(round_district):
    from geo.models import Camera

    district, _ = round_district
    services.grid_build(district_code=district.code)
    cell = GridCell.objects.first()
    cam = Camera.objects.create(code="C1", name="cam", location=cell.center, cell=cell)
    result = services.grid_build(district_code=district.code, rebuild=True)
    assert GridCell.objects.count() == result.cells
    cam.refresh_from_db()
    assert cam.cell is None


def test_cells_never_cross_synthetic_communities(round_district):
    district, _ = round_district
    synth = services.areas_synthesize(district_code=district.code, street_km=1.0, community_km=0.5)
    assert synth.streets >= 4 and synth.communities >= synth.streets
    services.grid_build(district_code=district.code)
    assert not GridCell.objects.filter(community__isnull=True).exists()
    with connection.cursor() as cur:
        cur.execute(
            """SELECT count(*) FROM geo_gridcell c JOIN geo_adminarea a ON a.id = c.community_id
               WHERE ST_Area(ST_Transform(ST_Difference(c.geom, a.boundary), 32651)) > 0.01"""
        )
        assert cur.fetchone()[0] == 0
    # Codes are community code + 3-digit serial.
    cell = GridCell.objects.select_related("community").first()
    assert cell.code.startswith(cell.community.code) and len(cell.code) == len(cell.community.code) + 3
    # And responsibility grids group them, every cell linked.
    grids = services.respgrids_synthesize(district_code=district.code, block_cells=5)
    assert grids.grids == ResponsibilityGrid.objects.count() > 0
    assert not GridCell.objects.filter(responsibility_grid__isnull=True).exists()
    assert services.respgrids_synthesize(district_code=district.code).skipped


def test_grid_build_command_reports_and_refuses_bad_input(round_district, capsys):
    from django.core.management.base import CommandError

    district, _ = round_district
    call_command("grid_build", district=district.code, no_progress=True)
    assert "cells" in capsys.readouterr().out
    with pytest.raises(CommandError, match="不存在"):
        call_command("grid_build", district="000000", no_progress=True)
    with pytest.raises(CommandError, match="10 到 1000"):
        call_command("grid_build", district=district.code, size=5, no_progress=True)


def test_boundaries_import_converts_gcj02_and_is_idempotent(db):
    first = services.boundaries_import()
    assert first.created == 17
    again = services.boundaries_import()
    assert again.created == 0 and again.updated == 17
    pudong = AdminArea.objects.get(code="310115")
    assert pudong.level == "district" and pudong.parent.code == "310100"
    # The stored (WGS-84) boundary sits ~480 m from the GCJ-02 source: check Pudong's centroid moved west/north.
    import json

    from geo.services import BUNDLED_BOUNDARIES

    src = next(
        f for f in json.loads(BUNDLED_BOUNDARIES.read_text())["features"] if f["properties"]["adcode"] == "310115"
    )
    gcj_centroid = shapely.geometry.shape(src["geometry"]).centroid
    stored = shapely.from_wkt(pudong.boundary.wkt).centroid
    assert 0.003 < gcj_centroid.x - stored.x < 0.006
    assert np.isclose(pudong.area_m2, 1.696e9, rtol=0.01)


def test_rebuild_invalidates_the_cached_cell_tiles(round_district, client, django_capture_on_commit_callbacks):
    import mapbox_vector_tile

    from tests.geo.test_tiles import tile_of

    district, _ = round_district
    with django_capture_on_commit_callbacks(execute=True):
        services.grid_build(district_code=district.code)
    centre = GridCell.objects.order_by("code").first().center
    x, y = tile_of(centre.x, centre.y, 16)
    url = f"/tiles/cells/16/{x}/{y}.pbf"

    def tile_ids() -> set[int]:
        response = client.get(url)
        assert response.status_code == 200
        return {f["id"] for f in mapbox_vector_tile.decode(response.content)["cells"]["features"]}

    before = tile_ids()
    assert before and before == tile_ids()  # the second answer comes from the cache (test_tiles: no query)
    with django_capture_on_commit_callbacks(execute=True):
        services.grid_build(district_code=district.code, rebuild=True)  # new cells, new ids
    after = tile_ids()
    assert (
        after
        and not after & before
        and after == set(GridCell.objects.filter(id__in=after).values_list("id", flat=True))
    )
