"""A small, complete world for workflow tests: a 3×3-cell district, one category, two teams and one user
per role. Build it with `world_build()` inside a test that has database access."""

from __future__ import annotations

import io
from dataclasses import dataclass

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from geo.models import AdminArea, GridCell
from gridmgmt.models import Category, Department, PatrolTeam, User
from tests.factories import CategoryFactory, DistrictFactory, TeamFactory, UserFactory
from tests.geodata import make_square_district


@dataclass
class World:
    district: AdminArea
    cells: list[GridCell]
    category: Category
    team: PatrolTeam
    other_team: PatrolTeam
    users: dict[str, User]  # role → user; "patrol" is in `team`, "other_patrol" in `other_team`

    def centre(self, i: int = 4) -> tuple[float, float]:
        c = self.cells[i].center
        return c.x, c.y


def jpeg(name: str = "p.jpg", size=(64, 48), color=(120, 160, 90)) -> SimpleUploadedFile:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return SimpleUploadedFile(name, buf.getvalue(), content_type="image/jpeg")


def world_build(*, code: str = "310115") -> World:
    district, cells = make_square_district(code=code, n=3)
    department = Department.objects.create(code=f"D{code}", name="城管执法队")
    category = CategoryFactory(
        code="E0404",
        name="乱堆物堆料",
        limit_unit=Category.LimitUnit.WORKING_HOURS,
        limit_normal=4,
        limit_urgent=1,
        urgent_limit_unit=Category.LimitUnit.WORKING_HOURS,
        dispatch_minutes_normal=30,
        dispatch_minutes_urgent=10,
        default_department=department,
    )
    parent = CategoryFactory(code="E04", name="街面秩序")
    Category.objects.filter(pk=category.pk).update(parent=parent)
    category.refresh_from_db()
    team = TeamFactory(district=district, code="PT-A", name="甲队")
    other = TeamFactory(district=district, code="PT-B", name="乙队")
    users = {
        role: UserFactory(username=role, role=role)
        for role in (
            User.Role.RESIDENT,
            User.Role.DISPATCHER,
            User.Role.INSPECTOR,
            User.Role.SHIFT_LEADER,
            User.Role.WALL,
            User.Role.ADMIN,
        )
    }
    users[User.Role.PATROL] = UserFactory(username="patrol", role=User.Role.PATROL, team=team)
    users["other_patrol"] = UserFactory(username="other_patrol", role=User.Role.PATROL, team=other)
    return World(district, cells, category, team, other, users)


def world_with_levels_build():
    """world_build with one street and one community over all its cells (`world.street`, `world.community`):
    the four levels the escalation rule climbs."""
    w = world_build()
    street = DistrictFactory(code="310115001", name="陆家嘴街道", level=AdminArea.Level.STREET, parent=w.district)
    community = DistrictFactory(code="310115001001", name="梅园社区", level=AdminArea.Level.COMMUNITY, parent=street)
    GridCell.objects.filter(pk__in=[c.pk for c in w.cells]).update(street=street, community=community)
    w.street, w.community = street, community
    return w
