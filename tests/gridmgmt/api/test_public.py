"""Anonymous resident endpoints: report, follow by code, +1, and rate / reopen with the tracking token."""

from gridmgmt.api.public import PUBLIC_REPORTER
from gridmgmt.models import Case, CaseEvent, Category, User
from tests.gridmgmt.api.conftest import jpeg

R, S, E = User.Role, Case.Status, CaseEvent.Type


def public_report(world, **fields):
    lon, lat = world.centre()
    data = {"category": "E0404", "lon": lon + 0.0001, "lat": lat + 0.0001, "reporter_phone": "13700001111"}
    data.update(fields)
    return world.client(None).post("/api/public/reports/", data, format="multipart")


def close_case(world, case_id: int) -> None:
    Case.objects.filter(pk=case_id).update(status=S.CLOSED)


def test_anonymous_report_and_public_tracking(world):
    response = public_report(world, photos=[jpeg()], description="小区门口堆放装修垃圾")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["code"] and body["tracking_token"] and body["status"] == S.REPORTED
    case = Case.objects.get(code=body["code"])
    assert (case.source, case.reporter.username, case.reporter.is_active) == ("resident", PUBLIC_REPORTER, False)
    assert not case.reporter.has_usable_password()

    public = world.client(None).get(f"/api/public/cases/{body['code']}/").json()
    assert public["category"] == "乱堆东西"  # the plain name residents understand
    # Location snapped to the cell centre; no contact, no staff notes. A resident's own words and photo are
    # public (access.case_public_view): the public wrote them for the public, as on Open311.
    assert public["location"]["coordinates"] == [case.cell.center.x, case.cell.center.y]
    assert public["location"]["coordinates"] != [case.point.x, case.point.y]
    assert public["cell"] == case.cell.code
    text = str(public)
    assert "13700001111" not in text
    assert "tracking_token" not in public
    assert public["description"] == "小区门口堆放装修垃圾"
    assert [p["kind"] for p in public["photos"]] == ["before"]
    assert [e["type"] for e in public["events"]] == [E.REPORTED]

    world.client(R.DISPATCHER).post(f"/api/cases/{case.id}/file/", {"note": "内部: 联系物业"})
    public = world.client(None).get(f"/api/public/cases/{body['code']}/").json()
    assert [e["type"] for e in public["events"]] == [E.REPORTED, E.FILED]
    assert public["due_at"] and "联系物业" not in str(public)
    # The centre's own steps that change no stage stay internal (access.events_public).
    world.client(R.DISPATCHER).post(f"/api/cases/{case.id}/publish/", {"note": "公开"})
    world.client(R.DISPATCHER).post(f"/api/cases/{case.id}/dispatch/", {"team": world.team.id})
    world.client(R.SHIFT_LEADER).post(f"/api/cases/{case.id}/urge/", {"note": "请尽快处置"})
    assert case.events.filter(type=E.URGED).count() == 1
    public = world.client(None).get(f"/api/public/cases/{body['code']}/").json()
    assert [e["type"] for e in public["events"]] == [E.REPORTED, E.FILED, E.DISPATCHED]
    assert world.client(None).get("/api/public/cases/nope/").status_code == 404


def test_public_report_is_idempotent_and_validated(world):
    first = public_report(world, idempotency_key="resident-phone-abc")
    again = public_report(world, idempotency_key="resident-phone-abc")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["code"] == again.json()["code"]
    outside = public_report(world, lon=121.0, lat=31.0)
    assert outside.status_code == 400 and "不在服务范围" in outside.json()["detail"]
    assert Case.objects.count() == 1


def test_support_rate_and_reopen_with_token(world):
    body = public_report(world).json()
    code, token = body["code"], body["tracking_token"]
    case_id = Case.objects.get(code=code).pk

    supported = world.client(None).post(f"/api/public/cases/{code}/support/", {"note": "+1"})
    assert (supported.status_code, supported.json()["supporters"]) == (200, 1)

    # Not closed yet: rating is refused by the workflow with its reason.
    early = world.client(None).post(f"/api/public/cases/{code}/rate/", {"token": token, "satisfaction": 4})
    assert (early.status_code, early.json()["code"]) == (409, "transition_not_allowed")

    close_case(world, case_id)
    events_before = CaseEvent.objects.filter(case_id=case_id).count()
    forged = world.client(None).post(f"/api/public/cases/{code}/rate/", {"token": "x" * 20, "satisfaction": 1})
    assert (forged.status_code, forged.json()["code"]) == (403, "bad_token")
    missing = world.client(None).post(f"/api/public/cases/{code}/reopen/", {"reason": "没修好"})
    assert (missing.status_code, missing.json()["field"]) == (400, "token")
    assert CaseEvent.objects.filter(case_id=case_id).count() == events_before

    rated = world.client(None).post(f"/api/public/cases/{code}/rate/", {"token": token, "satisfaction": 2})
    assert (rated.status_code, rated.json()["satisfaction"]) == (200, 2)
    twice = world.client(None).post(f"/api/public/cases/{code}/rate/", {"token": token, "satisfaction": 5})
    assert (twice.status_code, twice.json()["code"]) == (409, "already_rated")
    reopened = world.client(None).post(f"/api/public/cases/{code}/reopen/", {"token": token, "reason": "还在那"})
    assert (reopened.status_code, reopened.json()["status"]) == (200, S.FILED)
    types = list(CaseEvent.objects.filter(case_id=case_id).order_by("id").values_list("type", flat=True))
    assert types[-2:] == [E.RATED, E.REOPENED]
    # Support is refused once the case is no longer open.
    close_case(world, case_id)
    late = world.client(None).post(f"/api/public/cases/{code}/support/")
    assert (late.status_code, late.json()["code"]) == (409, "not_open")


def test_logged_in_resident_reports_as_themselves(world):
    lon, lat = world.centre()
    response = world.client(R.RESIDENT).post("/api/public/reports/", {"category": "E0404", "lon": lon, "lat": lat})
    assert response.status_code == 201
    case = Case.objects.get(code=response.json()["code"])
    assert case.reporter == world.users[R.RESIDENT]
    # …and so see it in their own list.
    mine = world.client(R.RESIDENT).get("/api/cases/").json()
    assert [f["properties"]["code"] for f in mine["features"]] == [case.code]


def test_sensitive_categories_need_the_token(world):
    Category.objects.filter(code="E0404").update(is_sensitive=True)
    body = public_report(world).json()
    code, token = body["code"], body["tracking_token"]
    assert world.client(None).get(f"/api/public/cases/{code}/").status_code == 404
    assert world.client(None).get(f"/api/public/cases/{code}/?token={token}").status_code == 200


def test_public_report_is_throttled(world, settings):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "public_report": "2/hour"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    statuses = [public_report(world).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    throttled = public_report(world).json()
    assert throttled["code"] == "throttled" and throttled["detail"]
