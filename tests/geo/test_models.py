import pytest
from django.db import IntegrityError, transaction

from geo.models import AdminArea, GridCell
from tests.factories import CellFactory, DistrictFactory

BOWTIE = "SRID=4326;MULTIPOLYGON(((121.5 31.2, 121.51 31.21, 121.51 31.2, 121.5 31.21, 121.5 31.2)))"


def test_invalid_boundary_is_refused_by_the_database(db):
    with pytest.raises(IntegrityError, match="adminarea_boundary_valid"), transaction.atomic():
        AdminArea.objects.create(code="999999", name="坏边界", level="district", boundary=BOWTIE, area_m2=1)
    assert not AdminArea.objects.filter(code="999999").exists()


def test_invalid_cell_geometry_is_refused(db):
    district = DistrictFactory()
    with pytest.raises(IntegrityError, match="gridcell_geom_valid"), transaction.atomic():
        CellFactory(district=district, geom=BOWTIE)


@pytest.mark.parametrize("area", [0, -5, 10_050.5, 20_000])
def test_cell_area_must_be_positive_and_at_most_10050(db, area):
    with pytest.raises(IntegrityError, match="gridcell_area_range"), transaction.atomic():
        CellFactory(area_m2=area)


def test_cell_codes_are_unique(db):
    cell = CellFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        CellFactory(district=cell.district, code=cell.code, row_i=5)
    assert GridCell.objects.count() == 1


def test_spatial_columns_have_gist_indexes(db):
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT tablename, indexdef FROM pg_indexes WHERE indexdef ILIKE '%USING gist%' AND schemaname = 'public'"
        )
        indexed = {(t, d.split("(")[-1].rstrip(")")) for t, d in cur.fetchall()}
    for table, column in [
        ("geo_adminarea", "boundary"),
        ("geo_gridcell", "geom"),
        ("geo_camera", "location"),
        ("geo_component", "location"),
        ("geo_responsibilitygrid", "geom"),
        ("gridmgmt_case", "point"),
        ("gridmgmt_patrolteam", "last_position"),
    ]:
        assert (table, column) in indexed, (table, column)
    # The cell centre is only displayed, never searched: no index to maintain on grid_build's COPY.
    assert ("geo_gridcell", "center") not in indexed
