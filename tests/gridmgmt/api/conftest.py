"""A small world for API tests: a 3×3-cell district with two teams and one user per role (staff scoped to
it), a second district with its own dispatcher (for out-of-scope checks), and API clients per user."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from geo.models import AdminArea, GridCell
from gridmgmt.models import Case, Category, Department, PatrolTeam, User
from tests.factories import CategoryFactory, TeamFactory, UserFactory
from tests.geodata import make_square_district

R = User.Role


@dataclass
class ApiWorld:
    district: AdminArea
    cells: list[GridCell]
    other_district: AdminArea
    category: Category
    team: PatrolTeam
    other_team: PatrolTeam
    users: dict[str, User]

    def centre(self, i: int = 4) -> tuple[float, float]:
        c = self.cells[i].center
        return c.x, c.y

    def client(self, who: str | User | None, **headers) -> APIClient:
        client = APIClient(headers=headers or None)
        if who is not None:
            client.force_authenticate(self.users[who] if isinstance(who, str) else who)
        return client


def jpeg(name: str = "p.jpg", size=(64, 48), color=(120, 160, 90)) -> SimpleUploadedFile:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return SimpleUploadedFile(name, buf.getvalue(), content_type="image/jpeg")


def api_world_build() -> ApiWorld:
    district, cells = make_square_district(code="310115", n=3)
    other, _ = make_square_district(code="310101", name="黄浦区", name_en="Huangpu", lon=121.47, lat=31.22, n=1)
    department = Department.objects.create(code="D310115", name="城管执法队")
    major = CategoryFactory(code="E04", name="街面秩序", name_en="Street order")
    category = CategoryFactory(
        code="E0404",
        name="乱堆物堆料",
        name_en="Illegal dumping of materials",
        plain_name="乱堆东西",
        limit_unit=Category.LimitUnit.WORKING_HOURS,
        limit_normal=4,
        default_department=department,
    )
    Category.objects.filter(pk=category.pk).update(parent=major)
    category.refresh_from_db()
    team = TeamFactory(district=district, code="PT-A", name="甲队")
    other_team = TeamFactory(district=district, code="PT-B", name="乙队")
    users = {
        role: UserFactory(username=role, role=role, area=None if role in (R.RESIDENT, R.ADMIN) else district)
        for role in (R.RESIDENT, R.DISPATCHER, R.INSPECTOR, R.SHIFT_LEADER, R.WALL, R.ADMIN)
    }
    users[R.RESIDENT].phone = "13812345678"
    users[R.RESIDENT].save(update_fields=["phone"])
    users[R.PATROL] = UserFactory(username="patrol", role=R.PATROL, team=team, area=district)
    users["other_patrol"] = UserFactory(username="other_patrol", role=R.PATROL, team=other_team, area=district)
    users["dispatcher2"] = UserFactory(username="dispatcher2", role=R.DISPATCHER, area=district)
    users["far_dispatcher"] = UserFactory(username="far_dispatcher", role=R.DISPATCHER, area=other)
    users["other_resident"] = UserFactory(username="other_resident", role=R.RESIDENT)
    return ApiWorld(district, cells, other, category, team, other_team, users)


@pytest.fixture
def world(db) -> ApiWorld:
    return api_world_build()


def report(world: ApiWorld, who: str = R.PATROL, **fields) -> dict:
    """Report a case through the API and return the response body (a GeoJSON feature)."""
    lon, lat = world.centre()
    data = {"category": world.category.code, "lon": lon, "lat": lat, "description": "人行道堆放建筑垃圾"}
    data.update(fields)
    response = world.client(who).post("/api/cases/", data, format="multipart")
    assert response.status_code == 201, response.json()
    return response.json()


def case_of(body: dict) -> Case:
    return Case.objects.get(pk=body["id"])
