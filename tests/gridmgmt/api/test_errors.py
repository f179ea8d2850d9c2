"""Refusals: every error is `{"code", "detail", "field"}` with the right status, and writes nothing."""

import pytest

from gridmgmt.models import Case, CaseEvent, CasePhoto, User
from tests.gridmgmt.api.conftest import jpeg, report

R, S = User.Role, Case.Status


def snapshot(case_id: int) -> tuple:
    case = Case.objects.get(pk=case_id)
    return case.status, case.version, case.team_id, CaseEvent.objects.filter(case_id=case_id).count()


def test_disallowed_transition_is_409_with_reason_and_writes_nothing(world):
    case_id = report(world)["id"]
    before = snapshot(case_id)
    response = world.client(R.SHIFT_LEADER).post(f"/api/cases/{case_id}/archive/")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "transition_not_allowed"
    assert "已上报" in body["detail"] and "归档" in body["detail"]
    assert set(body) >= {"code", "detail", "field"}
    assert snapshot(case_id) == before


def test_stale_version_is_409(world):
    case_id = report(world)["id"]
    world.client(R.DISPATCHER).post(f"/api/cases/{case_id}/file/")
    before = snapshot(case_id)
    stale = before[1] - 1
    client = world.client(R.DISPATCHER)
    by_body = client.post(f"/api/cases/{case_id}/dispatch/", {"team": world.team.id, "expected_version": stale})
    by_header = client.post(f"/api/cases/{case_id}/dispatch/", {"team": world.team.id}, HTTP_IF_MATCH=f'"{stale}"')
    assert (by_body.status_code, by_body.json()["code"]) == (409, "stale")
    assert (by_header.status_code, by_header.json()["code"]) == (409, "stale")
    assert snapshot(case_id) == before
    detail = client.get(f"/api/cases/{case_id}/")
    assert detail["ETag"] == f'"{before[1]}"'


def test_wrong_role_is_403(world):
    case_id = report(world)["id"]
    before = snapshot(case_id)
    response = world.client(R.PATROL).post(f"/api/cases/{case_id}/file/")
    assert response.status_code == 403
    assert response.json()["code"] == "role_not_allowed"
    assert "巡查队员" in response.json()["detail"]
    assert snapshot(case_id) == before
    # The big screen is read-only, and may not report either.
    wall = world.client(R.WALL).post("/api/cases/", {"category": "E0404", "lon": 121.5, "lat": 31.23})
    assert (wall.status_code, wall.json()["code"]) == (403, "role_not_allowed")
    # A resident may not pose as the 12345 hotline.
    lon, lat = world.centre()
    fake = world.client(R.RESIDENT).post(
        "/api/cases/", {"category": "E0404", "lon": lon, "lat": lat, "source": "hotline"}
    )
    assert (fake.status_code, fake.json()["field"]) == (403, "source")


def test_out_of_scope_case_is_404_everywhere(world):
    case_id = report(world)["id"]
    before = snapshot(case_id)
    far = world.client("far_dispatcher")
    assert far.get(f"/api/cases/{case_id}/").status_code == 404
    assert far.get(f"/api/cases/{case_id}/events/").status_code == 404
    response = far.post(f"/api/cases/{case_id}/file/")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert far.post(f"/api/cases/{case_id}/support/").status_code == 404
    assert far.get("/api/cases/").json()["count"] == 0
    assert world.client("other_resident").get(f"/api/cases/{case_id}/").status_code == 404
    assert world.client(R.DISPATCHER).get("/api/cases/999999999/").status_code == 404
    assert world.client(R.DISPATCHER).post("/api/cases/abc/file/").status_code == 404
    assert snapshot(case_id) == before


def test_anonymous_is_401_in_the_same_shape(world):
    response = world.client(None).get("/api/cases/")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Token")
    body = response.json()
    assert body["code"] == "not_authenticated" and body["field"] is None and body["detail"]


@pytest.mark.parametrize(
    ("fields", "status", "code", "field"),
    [
        ({"lon": "abc"}, 400, "invalid", "lon"),
        ({"lon": 500}, 400, "location_range", "location"),
        ({"lon": 0.0, "lat": 0.0}, 400, "outside_service_area", "location"),
        ({"category": "X9999"}, 400, "unknown_category", "category"),
        ({"category": "E04"}, 400, "unknown_category", "category"),  # a major class is not reportable
        ({"lat": None}, 400, "null", "lat"),
        ({"urgency": "very"}, 400, "invalid_choice", "urgency"),
        ({"description": "x" * 2001}, 400, "max_length", "description"),
    ],
)
def test_bad_report_input_is_400_and_writes_nothing(world, fields, status, code, field):
    lon, lat = world.centre()
    data = {"category": "E0404", "lon": lon, "lat": lat, **fields}
    response = world.client(R.PATROL).post("/api/cases/", data, format="json")
    assert response.status_code == status, response.json()
    body = response.json()
    assert (body["code"], body["field"]) == (code, field)
    assert Case.objects.count() == 0


def test_outside_the_district_says_so(world):
    response = world.client(R.RESIDENT).post("/api/cases/", {"category": "E0404", "lon": 121.0, "lat": 31.0})
    assert response.status_code == 400
    assert "不在服务范围" in response.json()["detail"]


def test_bad_photo_is_400_and_nothing_is_stored(world):
    lon, lat = world.centre()
    not_an_image = jpeg()
    not_an_image.file.seek(0)
    not_an_image.file.truncate()
    not_an_image.file.write(b"this is not a picture")
    not_an_image.file.seek(0)
    not_an_image.size = 21
    data = {"category": "E0404", "lon": lon, "lat": lat, "photos": [jpeg(), not_an_image]}
    response = world.client(R.PATROL).post("/api/cases/", data, format="multipart")
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("photo_invalid", "photos")
    assert (Case.objects.count(), CasePhoto.objects.count()) == (0, 0)


def test_missing_reason_and_missing_photo_are_400(world):
    case_id = report(world)["id"]
    before = snapshot(case_id)
    void = world.client(R.DISPATCHER).post(f"/api/cases/{case_id}/void/", {"reason": "  "})
    assert (void.status_code, void.json()["field"], void.json()["code"]) == (400, "reason", "required")
    assert "原因" in void.json()["detail"]
    nophoto = world.client(R.PATROL).post(f"/api/cases/{case_id}/self-handle/", {"note": "x"}, format="multipart")
    assert (nophoto.status_code, nophoto.json()["code"]) == (400, "after_photo_required")
    nopass = world.client(R.INSPECTOR).post(f"/api/cases/{case_id}/check/", {"note": "x"}, format="multipart")
    assert (nopass.status_code, nopass.json()["field"]) == (400, "passed")
    badteam = world.client(R.DISPATCHER).post(f"/api/cases/{case_id}/dispatch/", {"team": "x"})
    assert (badteam.status_code, badteam.json()["field"]) == (400, "team")
    assert snapshot(case_id) == before


def test_idempotent_report_returns_the_first_case(world):
    lon, lat = world.centre()
    data = {"category": "E0404", "lon": lon, "lat": lat}
    client = world.client(R.PATROL, **{"Idempotency-Key": "patrol-device-7f3a-0001"})
    first = client.post("/api/cases/", data)
    again = client.post("/api/cases/", data)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["properties"]["code"] == again.json()["properties"]["code"]
    in_body = world.client(R.PATROL).post("/api/cases/", {**data, "idempotency_key": "patrol-device-7f3a-0001"})
    assert in_body.status_code == 200
    assert Case.objects.count() == 1 and CaseEvent.objects.count() == 1
    # Another user's same key is their own key (issue 9): a new case of theirs, nothing of the first.
    stolen = world.client(R.RESIDENT, **{"Idempotency-Key": "patrol-device-7f3a-0001"}).post("/api/cases/", data)
    assert stolen.status_code == 201
    assert stolen.json()["properties"]["code"] != first.json()["properties"]["code"]
    too_long = world.client(R.PATROL, **{"Idempotency-Key": "k" * 65}).post("/api/cases/", data)
    assert (too_long.status_code, too_long.json()["field"]) == (400, "idempotency_key")


def test_messages_in_english_with_accept_language_en(world):
    en = {"HTTP_ACCEPT_LANGUAGE": "en"}
    anonymous = world.client(None).get("/api/cases/", **en)
    assert anonymous.json()["detail"] == "Authentication credentials were not provided."
    required = world.client(R.PATROL).post("/api/cases/", {}, format="json", **en)
    assert (required.json()["detail"], required.json()["code"]) == ("This field is required.", "required")
    zh = world.client(R.PATROL).post("/api/cases/", {}, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert zh.json()["detail"] == "该字段是必填项。"
    bbox = world.client(R.DISPATCHER).get("/api/cases/?in_bbox=1,2,3", **en)
    assert (bbox.status_code, bbox.json()["field"]) == (400, "in_bbox")
    outside = world.client(R.PATROL).post("/api/cases/", {"category": "E0404", "lon": 121.0, "lat": 31.0}, **en)
    assert outside.status_code == 400
    assert "outside the service area" in outside.json()["detail"]


@pytest.mark.parametrize(
    ("method", "url", "data"),
    [
        ("get", "/api/cases/99999999999999999999/", None),
        ("post", "/api/cases/99999999999999999999/file/", {}),
        ("get", "/api/cases/?team=99999999999999999999", None),
        ("get", "/api/events/?after_id=abc", None),
        ("get", "/api/cases/?reported_after=yesterday", None),
        ("get", "/api/cases/?in_bbox=nan,nan,nan,nan", None),
        ("post", "/api/cases/", {"category": "E0404", "lon": "nan", "lat": "inf"}),
        ("post", "/api/cases/", {"category": "E0404", "lon": 121.5, "lat": 31.23, "photos": "not-a-file"}),
        ("post", "/api/cases/{id}/dispatch/", {"team": 99999999999999999999}),
        ("post", "/api/cases/{id}/merge/", {"into": "99999999999999999999"}),
        ("post", "/api/cases/{id}/check/", {"passed": "maybe"}),
        ("post", "/api/cases/{id}/rate/", {"satisfaction": 9}),
        ("post", "/api/cases/{id}/extension-request/", {"hours": "lots", "reason": "x"}),
        ("post", "/api/cases/{id}/accept/", {"lon": 121.5}),
    ],
)
def test_hostile_inputs_are_4xx_never_500(world, method, url, data):
    case_id = report(world)["id"]
    before = snapshot(case_id)
    client = world.client(R.ADMIN)
    response = getattr(client, method)(url.replace("{id}", str(case_id)), data, format="json" if data else None)
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    body = response.json()
    assert {"code", "detail", "field"} <= set(body)
    assert snapshot(case_id) == before


# --- issue 9: bad input is a 4xx in the API's error shape, never a 500 --------------------------------------


def _error(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"code", "detail", "field"}
    if field is not None:
        assert body["field"] == field, body
    return body


@pytest.mark.parametrize(
    "params",
    [
        {"start": "9999-12-01", "end": "9999-12-31"},  # before: end + 1 day overflowed → 500
        {"start": "0001-01-01", "end": "0001-01-02"},
        {"start": "２０２６-11-01"},
        {"start": "2026-11-01\x00"},
        {"group_by": "team\x00"},
    ],
)
def test_kpis_out_of_range_or_malformed_dates_are_400(world, params):
    _error(world.client(R.SHIFT_LEADER).get("/api/kpis/", params), 400)


@pytest.mark.parametrize(
    ("at", "code"),
    [
        ("2026-11-20T08:00:00", "bad_datetime"),  # naive: before, comparing it with now was a 500
        ("garbage", "bad_datetime"),  # before: silently taken as now
        ("2026-13-01T00:00:00Z", "bad_datetime"),
        ("２０２６-11-20T08:00:00Z", "bad_datetime"),
        ("9999-12-31T23:59:59-23:59", "out_of_range"),
        ("2026-11-20T08:00:00Z\x00", "invalid"),
    ],
)
def test_position_with_a_bad_at_is_400(world, at, code):
    lon, lat = world.centre()
    response = world.client(R.PATROL).post("/realtime/position/", {"lon": lon, "lat": lat, "at": at}, format="json")
    body = _error(response, 400, "at")
    if code != "invalid":
        assert body["code"] == code


def test_position_with_huge_or_wrong_typed_numbers_is_400(world):
    client = world.client(R.PATROL)
    for lon, lat in ((1e308, 31.2), ("1e999", 31.2), ([1], 31.2), ("nan", 31.2), ({"x": 1}, 31.2)):
        response = client.post("/realtime/position/", {"lon": lon, "lat": lat}, format="json")
        assert response.status_code == 400, (lon, lat, response.content)


def test_nul_in_a_path_or_query_is_400_before_any_query(world):
    for url in ("/api/public/cases/%00/", "/api/public/cases/2026%0001/", "/api/cells/?code=a%00b"):
        assert _error(world.client(R.ADMIN).get(url), 400)["code"] == "invalid"
    assert world.client(None).get("/open311/v2/requests/1%002.json").status_code == 400


def test_a_path_no_route_matches_is_a_json_404_under_api(world):
    for url in ("/api/cells/1.5/", "/api/nothing-here/", "/realtime/nothing/"):
        assert _error(world.client(R.ADMIN).get(url), 404)["code"] == "not_found"


@pytest.mark.parametrize(
    "params",
    [
        {"case": "1e30"},
        {"after_id": "1.5"},
        {"case": "-1"},
        {"at_after": "0450-02-09T16:06:34-16:38"},  # PostgreSQL refuses offsets past ±15:59
        {"at_before": "9999-12-31T23:59:59Z"},
        {"at_after": "２０２６-11-01T00:00:00Z"},
    ],
)
def test_event_filters_out_of_range_are_400(world, params):
    _error(world.client(R.ADMIN).get("/api/events/", params), 400)


def test_merge_into_a_non_ascii_or_huge_id_is_a_4xx(world):
    case_id = report(world)["id"]
    client = world.client(R.SHIFT_LEADER)
    for into in ("²", "9" * 30):
        response = client.post(f"/api/cases/{case_id}/merge/", {"into": into}, format="json")
        assert 400 <= response.status_code < 500, (into, response.content)


def test_a_json_body_over_the_upload_limit_is_413(world, settings):
    """DRF's JSON parser reads the stream itself, past DATA_UPLOAD_MAX_MEMORY_SIZE: capped now."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    lon, lat = world.centre()
    body = {"category": "E0404", "lon": lon, "lat": lat, "description": "x" * 5000}
    response = world.client(R.PATROL).post("/api/cases/", body, format="json")
    assert _error(response, 413)["code"] == "too_large"
    assert not Case.objects.exists()
    small = world.client(R.PATROL).post("/realtime/position/", {"lon": lon, "lat": lat}, format="json")
    assert small.status_code == 202
