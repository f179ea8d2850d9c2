"""Chinese map datums: WGS-84 ↔ GCJ-02 (AMap, Tencent) ↔ BD-09 (Baidu).

Data is stored in WGS-84; these conversions happen only at the edges (display on a GCJ-02 basemap,
import of GCJ-02/BD-09 data). All functions take scalars or numpy arrays (vectorised).

GCJ-02 has no closed-form inverse; the common one-step inverse (subtract the forward offset once)
is off by 1–2 m, so `gcj02_to_wgs84` iterates until the forward transform reproduces the input.

`lonlat_parse` / `point_parse` are the one validating parser of coordinates that come from outside.
"""

import math
from collections.abc import Callable

import numpy as np
import shapely
from django.contrib.gis.geos import Point
from django.utils.translation import gettext
from numpy.typing import ArrayLike

from gridmgmt.errors import InvalidInput

_A = 6378245.0  # Krasovsky 1940 semi-major axis, as used by GCJ-02
_EE = 0.00669342162296594323  # its first eccentricity squared
_X_PI = np.pi * 3000.0 / 180.0

Coords = tuple[np.ndarray, np.ndarray]


def outside_china(lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
    """GCJ-02 is only defined inside (roughly) China's bounding box; outside it equals WGS-84."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _offset(lon: np.ndarray, lat: np.ndarray) -> Coords:
    x, y = lon - 105.0, lat - 35.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    dlat += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    dlon += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def _out(lon: ArrayLike, lat: ArrayLike, rlon: np.ndarray, rlat: np.ndarray):
    if np.ndim(lon) == 0 and np.ndim(lat) == 0:
        return float(rlon), float(rlat)
    return rlon, rlat


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike):
    lo, la = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    dlon, dlat = _offset(lo, la)
    out = outside_china(lo, la)
    return _out(lon, lat, np.where(out, lo, lo + dlon), np.where(out, la, la + dlat))


def _invert(forward: Callable, tlon, tlat, xlon, xlat, *, tolerance_deg: float, max_iter: int):
    """Newton-like fixed point x ← x − (forward(x) − t), from the first guess (xlon, xlat) towards the point
    that `forward` maps onto the target (tlon, tlat); converges to < 1 mm in ~3 steps."""
    for _ in range(max_iter):
        flon, flat = forward(xlon, xlat)
        elon, elat = np.asarray(flon) - tlon, np.asarray(flat) - tlat
        xlon, xlat = xlon - elon, xlat - elat
        if np.all(np.abs(elon) < tolerance_deg) and np.all(np.abs(elat) < tolerance_deg):
            break
    return xlon, xlat


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike, *, tolerance_deg: float = 1e-10, max_iter: int = 30):
    """Iterative inverse of wgs84_to_gcj02, starting from the GCJ-02 point itself."""
    glon, glat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    wlon, wlat = _invert(
        wgs84_to_gcj02, glon, glat, glon.copy(), glat.copy(), tolerance_deg=tolerance_deg, max_iter=max_iter
    )
    return _out(lon, lat, wlon, wlat)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike):
    x, y = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return _out(lon, lat, z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006)


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike, *, tolerance_deg: float = 1e-10, max_iter: int = 30):
    """The published closed-form inverse is approximate; refine it the same way as GCJ-02."""
    blon, blat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    x, y = blon - 0.0065, blat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    glon, glat = _invert(
        gcj02_to_bd09,
        blon,
        blat,
        z * np.cos(theta),
        z * np.sin(theta),
        tolerance_deg=tolerance_deg,
        max_iter=max_iter,
    )
    return _out(lon, lat, glon, glat)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike):
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike):
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


DATUM_TO_WGS84: dict[str, Callable] = {
    "wgs84": lambda lon, lat: (lon, lat),
    "gcj02": gcj02_to_wgs84,
    "bd09": bd09_to_wgs84,
}
WGS84_TO_DATUM: dict[str, Callable] = {
    "wgs84": lambda lon, lat: (lon, lat),
    "gcj02": wgs84_to_gcj02,
    "bd09": wgs84_to_bd09,
}


def transform_geometry(geom, fn: Callable):
    """Apply a coordinate function to every vertex of a shapely geometry (or array of them)."""

    def _apply(xy: np.ndarray) -> np.ndarray:
        lon, lat = fn(xy[:, 0], xy[:, 1])
        return np.column_stack([np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)])

    return shapely.transform(geom, _apply)


# --- parsing ------------------------------------------------------------------------------------------------
# The one place a coordinate pair from outside (a form, JSON, a device, another system) becomes numbers.


def lonlat_parse(lon, lat, *, field: str = "location") -> tuple[float, float]:
    """(lon, lat) as finite WGS-84 floats, or gridmgmt.errors.InvalidInput: `location_missing` when either is
    absent or not a number (booleans and non-ASCII digit strings included), `location_range` when NaN,
    infinite or outside −180–180 / −90–90."""

    def number(value) -> float:
        if isinstance(value, bool) or (isinstance(value, str) and not value.isascii()):
            raise ValueError(value)
        return float(value)

    try:
        x, y = number(lon), number(lat)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput(gettext("缺少位置或坐标不是数字"), field=field, code="location_missing") from None
    if not (math.isfinite(x) and math.isfinite(y) and -180 <= x <= 180 and -90 <= y <= 90):
        raise InvalidInput(gettext("坐标超出有效范围 (经度 -180–180, 纬度 -90–90)"), field=field, code="location_range")
    return x, y


def point_parse(lon, lat, *, field: str = "location") -> Point:
    """A validated WGS-84 `django.contrib.gis.geos.Point` (SRID 4326); see lonlat_parse."""
    x, y = lonlat_parse(lon, lat, field=field)
    return Point(x, y, srid=4326)
