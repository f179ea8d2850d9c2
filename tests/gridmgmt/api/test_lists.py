"""List endpoints: scoped, filtered, paginated, and a constant number of queries however many rows."""

from datetime import timedelta

import pytest
from django.utils import timezone

from gridmgmt.models import Case, CaseEvent, Category, User
from tests.factories import CaseEventFactory, CaseFactory, CategoryFactory, TeamFactory
from tests.gridmgmt.api.conftest import report

R, S = User.Role, Case.Status


def make_cases(world, n: int, **kw) -> list[Case]:
    cases = []
    for i in range(n):
        fields = {
            "cell": world.cells[i % len(world.cells)],
            "category": world.category,
            "team": world.team if i % 2 else world.other_team,
            "status": S.HANDLING,
            "deadline_at": timezone.now() + timedelta(hours=1),
            "source": Case.Source.PATROL,
        }
        fields.update(kw)
        case = CaseFactory(**fields)
        CaseEventFactory(case=case)
        cases.append(case)
    return cases


def grow_categories(n: int) -> None:
    """n more major classes, each with two subclasses."""
    start = Category.objects.count()
    for i in range(start, start + n):
        major = CategoryFactory(code=f"M{i:03d}")
        CategoryFactory(code=f"M{i:03d}01", parent=major)
        CategoryFactory(code=f"M{i:03d}02", parent=major)


@pytest.mark.parametrize(
    ("url", "grow", "expected"),
    [
        # count + page (case, category, major, cell, team joined)
        ("/api/cases/", lambda w, n: make_cases(w, n), 2),
        # page (cursor: no count) + photos
        ("/api/events/", lambda w, n: make_cases(w, n), 2),
        # count + page (workload as a subquery) + skills
        ("/api/teams/", lambda w, n: [TeamFactory(district=w.district).skills.add(w.category) for _ in range(n)], 3),
        # count + major classes + their subclasses
        ("/api/categories/", lambda w, n: grow_categories(n), 3),
    ],
)
def test_list_query_count_is_constant(world, url, grow, expected, django_assert_num_queries):
    client = world.client(R.DISPATCHER)
    grow(world, 1)
    client.get(url)  # warm per-user lookups (the user's area) so only the list itself is counted
    with django_assert_num_queries(expected):
        assert client.get(url).status_code == 200
    grow(world, 19)
    with django_assert_num_queries(expected):
        response = client.get(url)
    body = response.json()
    rows = body.get("features", body.get("results"))
    assert len(rows) >= 20


def test_case_list_is_geojson_with_lights_and_no_contact(world):
    now = timezone.now()
    make_cases(world, 1, deadline_at=now - timedelta(minutes=1))  # red
    make_cases(world, 1, deadline_at=now + timedelta(hours=1), warn_at=now - timedelta(minutes=1))  # yellow
    make_cases(world, 1, deadline_at=now + timedelta(hours=1), warn_at=now + timedelta(minutes=30))  # green
    make_cases(world, 1, status=S.CLOSED, deadline_at=None, reporter_phone="13812345678")  # none
    body = world.client(R.DISPATCHER).get("/api/cases/").json()
    assert body["type"] == "FeatureCollection" and body["count"] == 4
    feature = body["features"][0]
    assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Point"
    assert sorted(f["properties"]["light"] for f in body["features"]) == ["green", "none", "red", "yellow"]
    assert "reporter" not in feature["properties"] and "13812345678" not in str(body)
    props = feature["properties"]
    assert props["category"]["code"] == "E0404" and props["category"]["major"] == "E04"
    assert props["cell"].startswith("310115") and props["status_label"]


def test_reporter_phone_masked_for_staff_and_hidden_from_others(world):
    case_id = report(world, R.RESIDENT)["id"]  # the resident's profile phone is used
    staff = world.client(R.DISPATCHER).get(f"/api/cases/{case_id}/").json()["properties"]["reporter"]
    assert staff == {"name": "", "phone": "138****5678"}
    own = world.client(R.RESIDENT).get(f"/api/cases/{case_id}/").json()
    assert own["properties"]["reporter"] is None and "13812345678" not in str(own)


def test_case_filters(world):
    a, b = make_cases(world, 2)
    (c,) = make_cases(world, 1, status=S.FILED, team=None, source=Case.Source.HOTLINE, cell=world.cells[8])
    client = world.client(R.DISPATCHER)

    def codes(query: str) -> set[str]:
        response = client.get(f"/api/cases/?{query}")
        assert response.status_code == 200, response.json()
        return {f["properties"]["code"] for f in response.json()["features"]}

    assert len(codes("status=handling,filed")) == 3
    assert len(codes("status=filed")) == 1
    assert codes("source=hotline") == {c.code}
    assert codes(f"team={world.team.code}") == {b.code}
    assert codes(f"team={world.other_team.id}") == {a.code}
    assert len(codes("category=E04")) == 3 and len(codes("category=E0404")) == 3 and not codes("category=E05")
    assert len(codes(f"area={world.district.code}")) == 3
    assert not codes(f"area={world.other_district.id}")
    assert codes(f"cell={world.cells[0].code}") == {a.code}
    future = (timezone.now() + timedelta(days=1)).isoformat()
    assert len(codes(f"reported_before={future.replace('+', '%2B')}")) == 3
    assert not codes(f"reported_after={future.replace('+', '%2B')}")
    c0 = world.cells[0].geom.extent
    assert codes("in_bbox={},{},{},{}".format(*c0)) == {a.code}
    bad = client.get("/api/cases/?status=lost")
    assert (bad.status_code, bad.json()["field"]) == (400, "status")
    unknown = client.get("/api/cases/?area=999999")
    assert (unknown.status_code, unknown.json()["field"]) == (400, "area")
    inverted = client.get("/api/cases/?in_bbox=122,32,121,31")
    assert (inverted.status_code, inverted.json()["code"]) == (400, "bbox_invalid")


def test_cells_need_a_bbox_above_the_limit(world, settings, monkeypatch):
    from gridmgmt.api import views

    client = world.client(R.DISPATCHER)
    small = client.get("/api/cells/").json()
    assert small["type"] == "FeatureCollection" and small["count"] == 9  # district cells only, not Huangpu's
    monkeypatch.setattr(views, "CELL_LIST_MAX", 5)
    refused = client.get("/api/cells/")
    assert refused.status_code == 400
    assert refused.json()["code"] == "bbox_required" and "/tiles/cells/{z}/{x}/{y}" in refused.json()["detail"]
    minx, miny, maxx, maxy = world.cells[4].geom.extent
    inset = (maxx - minx) / 4
    one = client.get(f"/api/cells/?in_bbox={minx + inset},{miny + inset},{maxx - inset},{maxy - inset}").json()
    assert [f["properties"]["code"] for f in one["features"]] == [world.cells[4].code]
    assert one["features"][0]["geometry"]["type"] == "MultiPolygon"


def test_teams_with_workload_and_position(world):
    make_cases(world, 3)  # alternating teams: other_team 2, team 1
    make_cases(world, 1, status=S.CLOSED, team=world.team)
    world.team.last_position = "SRID=4326;POINT(121.5005 31.2305)"
    world.team.save()
    body = world.client(R.DISPATCHER).get("/api/teams/").json()
    by_code = {f["properties"]["code"]: f for f in body["features"]}
    assert by_code["PT-A"]["properties"]["open_cases"] == 1
    assert by_code["PT-B"]["properties"]["open_cases"] == 2
    assert by_code["PT-A"]["geometry"]["coordinates"] == pytest.approx([121.5005, 31.2305])
    assert by_code["PT-B"]["geometry"] is None
    # A patrol member sees their own team only; the far dispatcher sees none of these.
    assert [f["properties"]["code"] for f in world.client(R.PATROL).get("/api/teams/").json()["features"]] == ["PT-A"]
    assert world.client("far_dispatcher").get("/api/teams/").json()["count"] == 0


def test_categories_tree_is_public_and_localised(world):
    body = world.client(None).get("/api/categories/").json()
    major = next(c for c in body["results"] if c["code"] == "E04")
    assert [c["code"] for c in major["children"]] == ["E0404"]
    child = major["children"][0]
    assert (child["label"], child["limit_unit"], child["limit_normal"]) == ("乱堆物堆料", "working_hours", 4)
    en = world.client(None).get("/api/categories/", HTTP_ACCEPT_LANGUAGE="en").json()
    assert next(c for c in en["results"] if c["code"] == "E04")["children"][0]["label"] == (
        "Illegal dumping of materials"
    )


def test_me(world):
    body = world.client(R.PATROL).get("/api/me/").json()
    assert (body["username"], body["role"], body["team"]["code"], body["area"]["code"]) == (
        "patrol",
        "patrol",
        "PT-A",
        "310115",
    )
    assert body["is_staff_role"] is False
    assert world.client(None).get("/api/me/").status_code in (401, 403)


def test_event_feed_is_scoped_and_resumes_after_id(world):
    mine = report(world)["id"]
    world.client(R.DISPATCHER).post(f"/api/cases/{mine}/file/")
    client = world.client(R.DISPATCHER)
    feed = client.get("/api/events/").json()
    ids = [e["id"] for e in feed["results"]]
    assert [e["type"] for e in feed["results"]] == ["reported", "filed"]
    assert ids == sorted(ids)
    after = client.get(f"/api/events/?after_id={ids[0]}").json()
    assert [e["id"] for e in after["results"]] == ids[1:]
    assert world.client("far_dispatcher").get("/api/events/").json()["results"] == []
    # A resident sees what happened to their case, not the staff's notes or internal data.
    own = report(world, R.RESIDENT)["id"]
    world.client(R.DISPATCHER).post(f"/api/cases/{own}/file/", {"note": "内部备注"})
    resident_feed = world.client(R.RESIDENT).get("/api/events/").json()["results"]
    assert [e["case"] for e in resident_feed] == [own, own]
    assert resident_feed[1]["note"] == "" and resident_feed[1]["data"] == {} and resident_feed[1]["actor"] is None
    assert CaseEvent.objects.filter(case_id=own).last().note == "内部备注"


def test_token_auth(world):
    response = world.client(None).post("/api/token/", {"username": "dispatcher", "password": "demo1234"})
    assert response.status_code == 200
    token = response.json()["token"]
    me = world.client(None, Authorization=f"Token {token}").get("/api/me/")
    assert (me.status_code, me.json()["role"]) == (200, "dispatcher")
    wrong = world.client(None).post("/api/token/", {"username": "dispatcher", "password": "nope"})
    assert wrong.status_code == 400 and wrong.json()["code"] == "authorization"


def test_light_filter(world):
    now = timezone.now()
    (red,) = make_cases(world, 1, deadline_at=now - timedelta(minutes=1))
    make_cases(world, 1, deadline_at=now + timedelta(hours=1), warn_at=now + timedelta(minutes=30))
    client = world.client(R.DISPATCHER)
    body = client.get("/api/cases/?light=red").json()
    assert [f["properties"]["code"] for f in body["features"]] == [red.code]
    assert client.get("/api/cases/?light=red,green").json()["count"] == 2


def test_dispatch_candidates(world):
    case_id = report(world)["id"]
    world.team.last_position = "SRID=4326;POINT(121.5015 31.2315)"
    world.team.save()
    world.other_team.last_position = "SRID=4326;POINT(121.52 31.25)"
    world.other_team.save()
    body = world.client(R.DISPATCHER).get(f"/api/cases/{case_id}/candidates/?limit=5").json()
    assert body["case"] == Case.objects.get(pk=case_id).code
    ranked = body["results"]
    assert [c["team"]["code"] for c in ranked] == ["PT-A", "PT-B"]
    assert ranked[0]["distance_m"] < ranked[1]["distance_m"] and ranked[0]["reasons"]
    assert world.client(R.PATROL).get(f"/api/cases/{case_id}/candidates/").status_code == 403
    assert world.client("far_dispatcher").get(f"/api/cases/{case_id}/candidates/").status_code == 404
    bad = world.client(R.DISPATCHER).get(f"/api/cases/{case_id}/candidates/?limit=0")
    assert (bad.status_code, bad.json()["field"]) == (400, "limit")


def test_duplicates_for_staff_and_public(world):
    near = report(world)
    lon, lat = world.centre()
    query = f"/api/duplicates/?category=E0404&lon={lon + 0.0005}&lat={lat}"
    staff = world.client(R.DISPATCHER).get(query).json()
    assert staff["type"] == "FeatureCollection"
    assert [f["properties"]["code"] for f in staff["features"]] == [near["properties"]["code"]]
    assert 40 < staff["features"][0]["properties"]["distance_m"] < 60
    public = world.client(None).get(query).json()["results"]
    assert [d["code"] for d in public] == [near["properties"]["code"]]
    assert "description" not in public[0] and public[0]["category"] == "乱堆东西"
    assert world.client("far_dispatcher").get(query).json()["features"] == []
    excluded = world.client(R.DISPATCHER).get(f"{query}&exclude={near['id']}").json()
    assert excluded["features"] == []
    unknown = world.client(None).get(f"/api/duplicates/?category=X1&lon={lon}&lat={lat}")
    assert (unknown.status_code, unknown.json()["field"]) == (400, "category")
    missing = world.client(None).get("/api/duplicates/?category=E0404")
    assert (missing.status_code, missing.json()["field"]) == (400, "lon")


def test_the_queue_order_is_the_servers_most_urgent_first_over_all_pages(world):
    now = timezone.now()
    late, soon, later = (now - timedelta(days=3), now + timedelta(hours=1), now + timedelta(days=2))
    cases = {
        "newest, no clock": make_cases(world, 1, status=S.REPORTED, deadline_at=None, reported_at=now)[0],
        "overdue": make_cases(world, 1, deadline_at=late, reported_at=now - timedelta(days=5))[0],
        "later": make_cases(world, 1, deadline_at=later, reported_at=now - timedelta(hours=2))[0],
        "soon": make_cases(world, 1, deadline_at=soon, reported_at=now - timedelta(hours=1))[0],
        "parked": make_cases(
            world, 1, status=S.PARKED, deadline_at=late - timedelta(days=9), reported_at=now - timedelta(days=20)
        )[0],
    }
    name = {c.pk: k for k, c in cases.items()}

    def page(order, size=2, number=1):
        url = f"/api/cases/?order={order}&page_size={size}&page={number}" if order else f"/api/cases/?page_size={size}"
        body = world.client(R.DISPATCHER).get(url).json()
        return [name[f["id"]] for f in body["features"]], body["count"]

    assert page("deadline") == (["overdue", "soon"], 5)  # the first page holds the most urgent of all
    # No clock running: after every running one — a parked case's old deadline is paused, not overdue.
    assert page("deadline", number=2) == (["later", "parked"], 5)
    assert page("deadline", number=3) == (["newest, no clock"], 5)
    assert page("-deadline", size=5) == (["later", "soon", "overdue", "parked", "newest, no clock"], 5)
    assert page(None, size=1) == (["newest, no clock"], 5)  # default: newest report first
    refused = world.client(R.DISPATCHER).get("/api/cases/?order=deadline;drop")
    assert refused.status_code == 400 and "order" in refused.json()["errors"]
