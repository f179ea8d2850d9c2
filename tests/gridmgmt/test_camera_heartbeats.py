"""Camera heartbeats and the offline timeout (issue 12, item 4): a video system reports which of its cameras are
online; each change is one `camera.status` feed row; a camera whose heartbeats stop is marked offline by the
timeout job, once."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from geo.models import Camera
from realtime.models import FeedEvent
from realtime.services import cameras_offline_timeout
from tests.factories import CameraFactory, CameraSystemFactory
from tests.geodata import make_square_district

URL = "/api/camera-heartbeats/"


@pytest.fixture
def world(db):
    district, cells = make_square_district(code="310115", n=3)
    other_district, other_cells = make_square_district(code="310104", name="徐汇区", lon=121.43, lat=31.18, n=1)
    cams = {
        code: CameraFactory(code=code, cell=cells[i], district=district, status=Camera.Status.OFFLINE)
        for i, code in enumerate(["CAM-1", "CAM-2", "CAM-3"])
    }
    far = CameraFactory(code="CAM-X", cell=other_cells[0], district=other_district, status=Camera.Status.OFFLINE)
    CameraSystemFactory(code="HIK", token="hik-secret", district=district)
    CameraSystemFactory(code="DH", token="dh-secret", district=other_district)
    return {"cams": cams, "far": far, "district": district}


@pytest.fixture
def api():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token hik-secret")
    return client


def camera_rows() -> list[tuple[str, str, str]]:
    rows = FeedEvent.objects.filter(type="camera.status").order_by("seq")
    return [(r.data["code"], r.data["from_status"], r.data["status"]) for r in rows]


def beat(api, body):
    return api.post(URL, body, format="json")


def test_heartbeat_sets_online_with_one_feed_row_per_change(world, api):
    before = timezone.now()
    response = beat(api, {"online": ["CAM-1", "CAM-2"]})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["seen"] == 2 and body["unknown"] == []
    assert body["changed"] == [
        {"camera": "CAM-1", "from_status": "offline", "status": "online"},
        {"camera": "CAM-2", "from_status": "offline", "status": "online"},
    ]
    assert camera_rows() == [("CAM-1", "offline", "online"), ("CAM-2", "offline", "online")]
    row = FeedEvent.objects.filter(type="camera.status").first()
    assert row.district_id == world["district"].id and row.data["online"] is True
    c1 = Camera.objects.get(code="CAM-1")
    assert c1.status == "online" and c1.last_seen_at >= before
    assert Camera.objects.get(code="CAM-3").status == "offline"  # not named: left to the timeout

    # The same heartbeat again: last_seen_at moves on, no feed row.
    seen = c1.last_seen_at
    response = beat(api, {"online": ["CAM-1", "CAM-2"]})
    assert response.status_code == 200 and response.json()["changed"] == []
    assert len(camera_rows()) == 2
    assert Camera.objects.get(code="CAM-1").last_seen_at > seen


def test_per_camera_statuses_and_object_form(world, api):
    beat(api, {"online": ["CAM-1", "CAM-2"]})
    items = [{"camera": "CAM-1", "status": "offline"}, {"camera": "CAM-3", "status": "online"}]
    response = beat(api, {"cameras": items})
    assert response.status_code == 200, response.json()
    assert [c["camera"] for c in response.json()["changed"]] == ["CAM-1", "CAM-3"]
    response = beat(api, {"cameras": {"CAM-1": "online", "CAM-2": "online"}})
    assert response.json()["changed"] == [{"camera": "CAM-1", "from_status": "offline", "status": "online"}]
    assert camera_rows()[-3:] == [
        ("CAM-1", "online", "offline"),
        ("CAM-3", "offline", "online"),
        ("CAM-1", "offline", "online"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"online": "CAM-1"},
        {"online": [1, 2]},
        {"online": [""]},
        {"online": ["CAM 1"]},
        {"online": ["C" * 33]},
        {"online": ["CAM-1"], "offline": ["CAM-1"]},
        {"cameras": [{"camera": "CAM-1", "status": "broken"}]},
        {"cameras": [{"camera": "CAM-1"}]},
        {"cameras": ["CAM-1"]},
        {"cameras": "CAM-1"},
        {"cameras": [{"camera": None, "status": "online"}]},
        ["CAM-1"],
    ],
)
def test_bad_payloads_are_400_in_the_error_shape(world, api, body):
    response = beat(api, body)
    assert response.status_code == 400, (body, response.status_code, response.content)
    assert set(response.json()) == {"code", "detail", "field"}
    assert camera_rows() == []


def test_not_json_and_no_token(world, api):
    response = api.post(URL, "online=CAM-1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and set(response.json()) == {"code", "detail", "field"}
    response = APIClient().post(URL, {"online": ["CAM-1"]}, format="json")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token nope")
    assert bad.post(URL, {"online": ["CAM-1"]}, format="json").status_code == 401


def test_too_many_cameras_is_400(world, api, monkeypatch):
    from gridmgmt.intake import services

    monkeypatch.setattr(services, "MAX_HEARTBEAT_CAMERAS", 2)
    response = beat(api, {"online": ["CAM-1", "CAM-2", "CAM-3"]})
    assert response.status_code == 400 and response.json()["code"] == "too_many"


def test_another_systems_camera_cannot_be_touched(world, api):
    response = beat(api, {"online": ["CAM-X"]})
    assert response.status_code == 404
    assert response.json()["code"] == "camera_not_found" and response.json()["field"] == "cameras"
    response = beat(api, {"online": ["CAM-1", "CAM-X", "NOPE"]})  # mixed: the known one counts, the rest reported
    assert response.status_code == 200
    assert response.json()["unknown"] == ["CAM-X", "NOPE"] and response.json()["seen"] == 1
    far = Camera.objects.get(code="CAM-X")
    assert far.status == "offline" and far.last_seen_at is None
    assert [r[0] for r in camera_rows()] == ["CAM-1"]
    # The other district's own system may.
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION="Token dh-secret")
    assert other.post(URL, {"online": ["CAM-X"]}, format="json").json()["changed"][0]["camera"] == "CAM-X"


def test_empty_heartbeat_is_a_no_op(world, api):
    response = beat(api, {"online": []})
    assert response.status_code == 200 and response.json() == {"seen": 0, "changed": [], "unknown": []}


def test_timeout_marks_exactly_the_stale_cameras_offline_once(world, settings):
    settings.CAMERA_OFFLINE_AFTER = 180
    now = timezone.now()
    Camera.objects.filter(code="CAM-1").update(status="online", last_seen_at=now - timedelta(seconds=181))
    Camera.objects.filter(code="CAM-2").update(status="online", last_seen_at=now - timedelta(seconds=179))
    Camera.objects.filter(code="CAM-3").update(status="online", last_seen_at=None)  # never heard from: not watched
    Camera.objects.filter(code="CAM-X").update(status="offline", last_seen_at=now - timedelta(hours=5))

    report = cameras_offline_timeout(now=now)
    assert report.offline == ["CAM-1"]
    assert dict(Camera.objects.values_list("code", "status")) == {
        "CAM-1": "offline",
        "CAM-2": "online",
        "CAM-3": "online",
        "CAM-X": "offline",
    }
    assert camera_rows() == [("CAM-1", "online", "offline")]
    row = FeedEvent.objects.get(type="camera.status")
    cell = world["cams"]["CAM-1"].cell
    scope = (world["district"].id, cell.street_id, cell.community_id)
    assert (row.district_id, row.street_id, row.community_id) == scope
    assert row.data["online"] is False
    assert cameras_offline_timeout(now=now).offline == []  # idempotent
    assert len(camera_rows()) == 1

    # Later, CAM-2 is stale too; the command runs the same job.
    out = StringIO()
    call_command("cameras_timeout", after=60, stdout=out)
    assert "CAM-2" in out.getvalue() and "offline 1" in out.getvalue()
    assert camera_rows() == [("CAM-1", "online", "offline"), ("CAM-2", "online", "offline")]


def test_timeout_off_and_heartbeat_after_timeout_comes_back(world, api, settings):
    settings.CAMERA_OFFLINE_AFTER = 0
    Camera.objects.filter(code="CAM-1").update(status="online", last_seen_at=timezone.now() - timedelta(days=1))
    assert cameras_offline_timeout().offline == []
    settings.CAMERA_OFFLINE_AFTER = 180
    assert cameras_offline_timeout().offline == ["CAM-1"]
    assert beat(api, {"online": ["CAM-1"]}).json()["changed"][0]["status"] == "online"
    assert cameras_offline_timeout().offline == []  # its heartbeat is fresh


def test_escalation_loop_runs_the_camera_timeout(world, settings):
    settings.CAMERA_OFFLINE_AFTER = 180
    Camera.objects.filter(code="CAM-1").update(status="online", last_seen_at=timezone.now() - timedelta(hours=1))
    out = StringIO()
    call_command("cases_escalate", stdout=out)
    assert Camera.objects.get(code="CAM-1").status == "offline"
    assert "摄像头离线 offline 1" in out.getvalue()
