"""The public view of a case (gridmgmt.access) is what every anonymous path shows: /api/public/, the residents'
map, anonymous /api/duplicates/ and Open311 agree on which cases exist and on every field they share; and the
ways an outsider recovered exact points (issue 9) no longer work."""

from __future__ import annotations

import math

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone

from gridmgmt.models import Case, Category, User
from tests.factories import CaseFactory, CategoryFactory, CellFactory
from tests.gridmgmt.api.conftest import ApiWorld

R, S = User.Role, Case.Status
PHONE, NAME = "13911112222", "王先生"
TRANSCRIPT = "来电人称住3号楼502室, 楼下堆放装修垃圾"


def shifted(point: Point, *, east_m: float, north_m: float) -> Point:
    dlat = north_m / 110_574.0
    dlon = east_m / (111_320.0 * math.cos(math.radians(point.y)))
    return Point(point.x + dlon, point.y + dlat, srid=4326)


def make_case(world: ApiWorld, *, category: Category | None = None, east_m=31.0, north_m=-17.0, **kw) -> Case:
    cell = world.cells[4]
    defaults = dict(
        cell=cell,
        district=world.district,
        category=category or world.category,
        point=shifted(cell.center, east_m=east_m, north_m=north_m),
        status=S.FILED,
        reporter_name=NAME,
        reporter_phone=PHONE,
        address="张杨路 100 弄 3 号",
        reported_at=timezone.now(),
    )
    defaults.update(kw)
    return CaseFactory(**defaults)


@pytest.fixture
def three(world):
    sensitive = CategoryFactory(code="E0104", name="违法建筑", is_sensitive=True)
    Category.objects.filter(pk=sensitive.pk).update(parent=world.category.parent)
    return {
        "ordinary": make_case(world, source=Case.Source.RESIDENT, description="路口堆了一堆垃圾"),
        "hotline": make_case(world, source=Case.Source.HOTLINE, description=TRANSCRIPT, east_m=-22, north_m=35),
        "sensitive": make_case(world, category=sensitive, source=Case.Source.RESIDENT, description="楼顶加盖"),
    }


def read_all_paths(world: ApiWorld, case: Case) -> dict:
    """What an anonymous caller gets for `case` on each path: None where the case does not appear."""
    anonymous = world.client(None)
    box = ",".join(str(v) for v in world.district.boundary.extent)
    centre = world.cells[4].center
    public = anonymous.get(f"/api/public/cases/{case.code}/")
    assert public.status_code in (200, 404)
    map_rows = anonymous.get(f"/report/map.json?bbox={box}").json()["cases"]
    duplicates = anonymous.get(
        "/api/duplicates/", {"category": case.category.code, "lon": centre.x, "lat": centre.y, "limit": 20}
    ).json()["results"]
    listed = anonymous.get("/open311/v2/requests.json").json()
    detail = anonymous.get(f"/open311/v2/requests/{case.code}.json")
    assert detail.status_code in (200, 404)
    texts = [public.content.decode(), str(map_rows), str(duplicates), str(listed), detail.content.decode()]
    return {
        "public": public.json() if public.status_code == 200 else None,
        "map": next((r for r in map_rows if r[2] == case.code), None),
        "duplicates": next((d for d in duplicates if d["code"] == case.code), None),
        "open311": next((r for r in listed if r["service_request_id"] == case.code), None),
        "open311_detail": detail.json()[0] if detail.status_code == 200 else None,
        "text": "\n".join(texts),
    }


@pytest.mark.parametrize("which", ["ordinary", "hotline"])
def test_the_four_paths_agree_on_a_public_case(world, three, which):
    case = three[which]
    centre = world.cells[4].center
    seen = read_all_paths(world, case)
    assert all(seen[k] is not None for k in ("public", "map", "duplicates", "open311", "open311_detail"))
    # One position everywhere: the cell centre, never the reported point (31 m / 22 m away from it).
    positions = [
        tuple(seen["public"]["location"]["coordinates"]),
        (seen["map"][1], seen["map"][0]),
        tuple(seen["duplicates"]["location"]["coordinates"]),
        (seen["open311"]["long"], seen["open311"]["lat"]),
        (seen["open311_detail"]["long"], seen["open311_detail"]["lat"]),
    ]
    for lon, lat in positions:
        assert (lon, lat) == pytest.approx((centre.x, centre.y), abs=1e-6)
        assert (lon, lat) != pytest.approx((case.point.x, case.point.y), abs=1e-5)
    # One category wording, one status.
    assert seen["public"]["category"] == seen["map"][3] == seen["duplicates"]["category"] == "乱堆东西"
    assert seen["public"]["status_label"] == seen["map"][4] == seen["duplicates"]["status_label"] == "已立案"
    assert seen["open311"]["address_id"] == seen["public"]["cell"] == world.cells[4].code
    # Nobody's contact, no address, anywhere.
    for secret in (PHONE, NAME, "张杨路 100 弄"):
        assert secret not in seen["text"], secret
    assert seen["open311"]["address"] is None
    # The description: a resident's words are public, a hotline transcript is not.
    expected = "路口堆了一堆垃圾" if which == "ordinary" else None
    assert seen["public"]["description"] == seen["open311"]["description"] == expected
    assert seen["open311_detail"]["description"] == expected
    if which == "hotline":
        assert "3号楼502" not in seen["text"]


def test_a_published_hotline_report_is_public_on_every_path(world, three):
    case = three["hotline"]
    dispatcher = world.users[R.DISPATCHER]
    response = world.client(dispatcher).post(f"/api/cases/{case.pk}/publish/", {"note": "内容不涉及个人信息"})
    assert response.status_code == 200, response.content
    seen = read_all_paths(world, case)
    assert seen["public"]["description"] == seen["open311"]["description"] == TRANSCRIPT
    assert seen["open311_detail"]["description"] == TRANSCRIPT
    for secret in (PHONE, NAME):  # publishing shows the words, never the caller
        assert secret not in seen["text"], secret
    again = world.client(dispatcher).post(f"/api/cases/{case.pk}/publish/", {})
    assert again.status_code == 409
    patrol = world.client(world.users[R.PATROL]).post(f"/api/cases/{case.pk}/publish/", {})
    assert patrol.status_code in (403, 404)


def test_the_four_paths_agree_a_sensitive_case_does_not_exist(world, three):
    seen = read_all_paths(world, three["sensitive"])
    assert [seen[k] for k in ("public", "map", "duplicates", "open311", "open311_detail")] == [None] * 5
    assert "楼顶加盖" not in seen["text"]


def test_map_bbox_probing_changes_only_at_the_cell_centre(world, three):
    """Issue 9: 39 boxes recovered a point to 0.28 mm because the box was matched against the point. Now
    sliding the west edge of a box across the cell shows the case exactly while the edge is west of the
    cell centre — wherever the reported point is."""
    case = three["ordinary"]  # 31 m east of the centre
    centre = world.cells[4].center
    _, miny, maxx, maxy = world.district.boundary.extent
    anonymous = world.client(None)
    metre = 1 / (111_320.0 * math.cos(math.radians(centre.y)))
    for offset_m in (-45, -20, -1, -0.001, 0.001, 1, 15, 30, 30.999, 31.001, 32, 45):
        west = centre.x + offset_m * metre
        rows = anonymous.get(f"/report/map.json?bbox={west},{miny},{maxx},{maxy}").json()["cases"]
        shown = case.code in [r[2] for r in rows]
        assert shown == (offset_m < 0), offset_m


def test_anonymous_duplicates_distance_is_to_the_cell_centre_in_10_m_steps(world, three):
    """Issue 9: distance_m to 0.1 m trilaterated a case to 6.7 cm. Now it is measured to the cell centre (the
    position already shown) and rounded to 10 m, so moving the probe reveals nothing about the point."""
    case = three["ordinary"]
    centre = world.cells[4].center
    anonymous = world.client(None)
    answers = []
    for east_m, north_m in ((0, 0), (47, 0), (0, 47), (-47, 0), (31, -17)):
        probe = shifted(centre, east_m=east_m, north_m=north_m)
        results = anonymous.get(
            "/api/duplicates/", {"category": "E0404", "lon": probe.x, "lat": probe.y, "limit": 20}
        ).json()["results"]
        (found,) = [r for r in results if r["code"] == case.code]
        answers.append(found["distance_m"])
    assert answers == [0, 50, 50, 50, 40]  # to the centre; at the exact point (31 m, -17 m) it says 40 m, not 0
    # Staff still get metres to the point, to 0.1 m.
    staff = world.client(R.DISPATCHER).get(
        "/api/duplicates/", {"category": "E0404", "lon": case.point.x, "lat": case.point.y}
    )
    distances = {f["properties"]["code"]: f["properties"]["distance_m"] for f in staff.json()["features"]}
    assert distances[case.code] == pytest.approx(0, abs=0.1)


def test_duplicates_are_scoped_before_the_limit(world):
    """A dispatcher bound to one district asks for 2 duplicates while 3 nearer ones lie in another district:
    they get their own 2, not 0."""
    centre = world.cells[4].center
    elsewhere = CellFactory(district=world.other_district, row_i=0, col_i=0)
    for i in range(3):
        CaseFactory(
            cell=elsewhere,
            district=world.other_district,
            category=world.category,
            point=shifted(centre, east_m=1 + i, north_m=0),
            status=S.FILED,
        )
    mine = [make_case(world, east_m=20 + 10 * i, north_m=0) for i in range(2)]
    response = world.client(R.DISPATCHER).get(
        "/api/duplicates/", {"category": "E0404", "lon": centre.x, "lat": centre.y, "limit": 2}
    )
    assert [f["properties"]["code"] for f in response.json()["features"]] == [c.code for c in mine]
