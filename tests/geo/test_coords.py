import math

import numpy as np
import pytest
import shapely

from geo import coords


def metres(lon1, lat1, lon2, lat2):
    """Equirectangular distance: exact enough for the centimetre-scale differences tested here."""
    k = 6_371_008.8 * math.pi / 180
    dx = (np.asarray(lon2) - lon1) * k * np.cos(np.radians(lat1))
    dy = (np.asarray(lat2) - lat1) * k
    return np.hypot(dx, dy)


@pytest.fixture(scope="module")
def shanghai_points():
    rng = np.random.default_rng(20261124)
    return rng.uniform(120.85, 122.0, 10_000), rng.uniform(30.67, 31.88, 10_000)


def test_lujiazui_maps_to_known_gcj02():
    lon, lat = coords.wgs84_to_gcj02(121.5440, 31.2304)
    assert lon == pytest.approx(121.548285, abs=2e-6)
    assert lat == pytest.approx(31.228260, abs=2e-6)


def test_shanghai_offset_is_about_480_m(shanghai_points):
    lon, lat = shanghai_points
    glon, glat = coords.wgs84_to_gcj02(lon, lat)
    shift = metres(lon, lat, glon, glat)
    assert 400 < shift.min() and shift.max() < 600


def test_gcj02_round_trip_under_1_cm(shanghai_points):
    lon, lat = shanghai_points
    back = coords.gcj02_to_wgs84(*coords.wgs84_to_gcj02(lon, lat))
    assert metres(lon, lat, *back).max() < 0.01


def test_iterative_inverse_beats_one_step_inverse(shanghai_points):
    lon, lat = shanghai_points
    glon, glat = coords.wgs84_to_gcj02(lon, lat)
    # The one-step inverse most snippets use: subtract the forward offset measured at the GCJ point.
    flon, flat = coords.wgs84_to_gcj02(glon, glat)
    naive = (glon - (flon - glon), glat - (flat - glat))
    assert metres(lon, lat, *naive).max() > 0.5
    assert metres(lon, lat, *coords.gcj02_to_wgs84(glon, glat)).max() < 0.001


def test_bd09_round_trip_under_1_cm(shanghai_points):
    lon, lat = shanghai_points
    back = coords.bd09_to_wgs84(*coords.wgs84_to_bd09(lon, lat))
    assert metres(lon, lat, *back).max() < 0.01


def test_outside_china_is_unchanged():
    assert coords.wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)
    assert coords.gcj02_to_wgs84(-73.98, 40.75) == pytest.approx((-73.98, 40.75))


def test_scalars_in_scalars_out_arrays_in_arrays_out():
    assert isinstance(coords.wgs84_to_gcj02(121.5, 31.2)[0], float)
    out = coords.wgs84_to_gcj02(np.array([121.5, 121.6]), np.array([31.2, 31.3]))
    assert out[0].shape == (2,)


def test_transform_geometry_moves_every_vertex():
    poly = shapely.box(121.5, 31.2, 121.51, 31.21)
    moved = coords.transform_geometry(poly, coords.wgs84_to_gcj02)
    back = coords.transform_geometry(moved, coords.gcj02_to_wgs84)
    assert shapely.hausdorff_distance(poly, back) < 1e-9
    assert shapely.hausdorff_distance(poly, moved) > 0.003


# --- parsing ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lon", "lat", "expected"),
    [(121.5, 31.2, (121.5, 31.2)), ("121.5", " 31.2 ", (121.5, 31.2)), (-180, 90, (-180.0, 90.0))],
)
def test_lonlat_parse_accepts_numbers_and_numeric_text(lon, lat, expected):
    assert coords.lonlat_parse(lon, lat) == expected
    point = coords.point_parse(lon, lat)
    assert (point.x, point.y, point.srid) == (*expected, 4326)


@pytest.mark.parametrize(
    ("lon", "lat", "code"),
    [
        (None, 31.2, "location_missing"),
        ("", 31.2, "location_missing"),
        ("x", 31.2, "location_missing"),
        (True, 31.2, "location_missing"),
        ("١٢١", 31.2, "location_missing"),  # Arabic-Indic digits: float() would take them
        (10**400, 31.2, "location_missing"),
        ("nan", 31.2, "location_range"),
        (121.5, float("inf"), "location_range"),
        (180.5, 31.2, "location_range"),
        (121.5, -90.01, "location_range"),
    ],
)
def test_lonlat_parse_rejects_with_the_domain_error(lon, lat, code):
    from gridmgmt.errors import InvalidInput

    with pytest.raises(InvalidInput) as err:
        coords.lonlat_parse(lon, lat, field="where")
    assert (err.value.code, err.value.field) == (code, "where")
