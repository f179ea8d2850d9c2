"""factory_boy factories shared by the suite. Geometry is built in UTM 51N (metres) around Lujiazui, then
stored in WGS-84, so tests can reason in metres."""

import functools

import factory
import numpy as np
import shapely
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.utils import timezone
from pyproj import Transformer

from geo.models import AdminArea, Camera, GridCell
from gridmgmt.models import CameraSystem, Case, CaseEvent, Category, PatrolTeam, User

TO_WGS84 = Transformer.from_crs(32651, 4326, always_xy=True)
TO_UTM = Transformer.from_crs(4326, 32651, always_xy=True)
# Lujiazui in UTM 51N, rounded to the 100 m grid.
ORIGIN_E, ORIGIN_N = 358_400.0, 3_456_400.0


def utm_to_wgs84(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(TO_WGS84.transform(xy[:, 0], xy[:, 1])))


def multi_wkt(geom) -> str:
    if geom.geom_type == "Polygon":
        geom = shapely.MultiPolygon([geom])
    return f"SRID=4326;{utm_to_wgs84(geom).wkt}"


def square_utm(x: float, y: float, size: float):
    return shapely.box(ORIGIN_E + x, ORIGIN_N + y, ORIGIN_E + x + size, ORIGIN_N + y + size)


class DistrictFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AdminArea
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"{990001 + n}")
    name = factory.Sequence(lambda n: f"测试区{n}")
    level = AdminArea.Level.DISTRICT
    boundary = factory.LazyFunction(lambda: multi_wkt(square_utm(0, 0, 1000)))
    area_m2 = 1_000_000.0


class CellFactory(factory.django.DjangoModelFactory):
    """A 100 m cell at grid position (row, col) of the test origin; rows count southwards."""

    class Meta:
        model = GridCell

    class Params:
        row_i = 0
        col_i = 0

    district = factory.SubFactory(DistrictFactory)
    row = factory.SelfAttribute("row_i")
    col = factory.SelfAttribute("col_i")
    code = factory.LazyAttribute(lambda o: f"{o.district.code}{o.row_i:03d}{o.col_i:03d}")
    geom = factory.LazyAttribute(lambda o: multi_wkt(square_utm(o.col_i * 100, 900 - o.row_i * 100, 100)))
    center = factory.LazyAttribute(
        lambda o: f"SRID=4326;{utm_to_wgs84(square_utm(o.col_i * 100, 900 - o.row_i * 100, 100).centroid).wkt}"
    )
    area_m2 = 10_000.0


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"E99{n:02d}")
    kind = Category.Kind.EVENT
    name = factory.Sequence(lambda n: f"测试类别{n}")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PatrolTeam

    code = factory.Sequence(lambda n: f"T{n:04d}")
    name = factory.Sequence(lambda n: f"测试巡查队{n}")
    district = factory.SubFactory(DistrictFactory)


@functools.cache
def _password_hash(raw: str, hashers: tuple[str, ...]) -> str:
    return make_password(raw)


def password_hash(raw: str) -> str:
    """make_password(raw) under the current PASSWORD_HASHERS, computed once: test users with the same password
    share one hash (one salt), which costs a test nothing and saves a PBKDF2 run per user."""
    return _password_hash(raw, tuple(settings.PASSWORD_HASHERS))


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    role = User.Role.RESIDENT
    # Hashed once per password and hasher set: live-server tests keep Django's PBKDF2 (their servers know
    # only the default hashers), ~0.5 s a user, which the worlds' six to ten users paid on every test.
    password = factory.Transformer("demo1234", transform=password_hash)


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Case

    code = factory.Sequence(lambda n: f"T-{n:06d}")
    cell = factory.SubFactory(CellFactory)
    district = factory.SelfAttribute("cell.district")
    point = factory.SelfAttribute("cell.center")
    category = factory.SubFactory(CategoryFactory)
    source = Case.Source.RESIDENT
    reported_at = factory.LazyFunction(timezone.now)


class CaseEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CaseEvent

    case = factory.SubFactory(CaseFactory)
    type = CaseEvent.Type.REPORTED
    to_status = Case.Status.REPORTED
    at = factory.LazyFunction(timezone.now)
    district_id_copy = factory.SelfAttribute("case.district_id")
    department_id_copy = factory.SelfAttribute("case.department_id")


class CameraFactory(factory.django.DjangoModelFactory):
    """A street camera at the centre of a cell."""

    class Meta:
        model = Camera

    code = factory.Sequence(lambda n: f"CAM{n:05d}")
    name = factory.Sequence(lambda n: f"测试摄像头{n}")
    cell = factory.SubFactory(CellFactory)
    district = factory.SelfAttribute("cell.district")
    location = factory.SelfAttribute("cell.center")


class CameraSystemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CameraSystem

    code = factory.Sequence(lambda n: f"VS{n:03d}")
    name = factory.Sequence(lambda n: f"视频平台{n}")
    token = factory.Sequence(lambda n: f"camera-token-{n:04d}")
    district = factory.SubFactory(DistrictFactory)
