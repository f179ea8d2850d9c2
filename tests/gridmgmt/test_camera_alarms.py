"""Camera alarms: a video system posts with its own token; retried alarms and repeats of an open event never
make a second case; a new case after the window or after the case closed."""

from __future__ import annotations

import base64
import io
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from gridmgmt import services
from gridmgmt.intake.services import camera_alarm_ingest
from gridmgmt.models import Case, CaseEvent, CasePhoto, User
from tests.factories import CameraFactory, CameraSystemFactory, CategoryFactory, UserFactory
from tests.geodata import make_square_district

URL = "/api/camera-alarms/"
TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=TZ)


def jpeg_bytes(color=(120, 160, 90)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, "JPEG")
    return buf.getvalue()


def snapshot() -> SimpleUploadedFile:
    return SimpleUploadedFile("snap.jpg", jpeg_bytes(), content_type="image/jpeg")


def build_world() -> dict:
    district, cells = make_square_district(code="310115", n=3)
    other_district, other_cells = make_square_district(code="310104", name="徐汇区", lon=121.43, lat=31.18, n=1)
    parent = CategoryFactory(code="E04", name="街面秩序")
    parking = CategoryFactory(code="E0404", name="违章停车", parent=parent)
    CategoryFactory(code="E0401", name="无照经营游商", parent=parent)
    camera = CameraFactory(code="CAM-1", cell=cells[4], district=district)
    far_camera = CameraFactory(code="CAM-X", cell=other_cells[0], district=other_district)
    system = CameraSystemFactory(
        code="HIK", token="hik-secret", district=district, dedup_minutes=30, label_map={"illegal_parking": "E0404"}
    )
    dispatcher = UserFactory(username="dispatcher", role=User.Role.DISPATCHER)
    return dict(system=system, camera=camera, far_camera=far_camera, parking=parking, dispatcher=dispatcher)


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def api():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token hik-secret")
    return client


def alarm(api, alarm_id: str, at: datetime = T0, *, photo=True, **extra):
    body = {"camera": "CAM-1", "alarm_id": alarm_id, "category": "E0404", "time": at.isoformat(), "confidence": "0.93"}
    body.update(extra)
    if photo:
        body["snapshot"] = snapshot()
    return api.post(URL, body, format="multipart")


def test_first_alarm_creates_case_at_camera_with_snapshot(world, api):
    response = alarm(api, "a-1", description="路口违停")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["created"] is True
    case = Case.objects.get(code=body["case"])
    assert (case.source, case.camera_id, case.category.code) == (Case.Source.CAMERA, world["camera"].id, "E0404")
    assert case.point.equals_exact(world["camera"].location, tolerance=1e-9)
    assert case.reported_at == T0 and case.description == "路口违停"
    assert case.photos.get().kind == CasePhoto.Kind.BEFORE
    event = case.events.get()
    assert event.data["alarm"]["id"] == "a-1" and event.data["alarm"]["confidence"] == 0.93
    assert event.data["camera_id"] == world["camera"].id and event.photos.count() == 1


def test_two_alarms_in_window_make_one_case(world, api):
    first = alarm(api, "a-1").json()["case"]
    response = alarm(api, "a-2", T0 + timedelta(minutes=20))
    assert response.status_code == 200
    assert response.json() == {"case": first, "created": False, "status": "reported"}
    case = Case.objects.get()
    attached = case.events.get(type=CaseEvent.Type.SUPPORTED)
    assert attached.data["alarm"]["id"] == "a-2" and attached.photos.count() == 1
    assert case.photos.count() == 2 and case.supporters == 0
    # The window slides with the latest alarm: 20 + 25 minutes is still one event.
    assert alarm(api, "a-3", T0 + timedelta(minutes=45)).status_code == 200
    assert Case.objects.count() == 1 and case.events.count() == 3


def test_alarm_after_window_makes_new_case(world, api):
    first = alarm(api, "a-1").json()["case"]
    response = alarm(api, "a-2", T0 + timedelta(minutes=31))
    assert response.status_code == 201 and response.json()["case"] != first
    assert Case.objects.count() == 2


def test_alarm_after_case_closed_makes_new_case(world, api):
    first = Case.objects.get(code=alarm(api, "a-1").json()["case"])
    services.case_void(case_id=first.pk, actor=world["dispatcher"], reason="误报")
    response = alarm(api, "a-2", T0 + timedelta(minutes=5))
    assert response.status_code == 201 and response.json()["case"] != first.code


def test_other_category_of_same_camera_is_another_case(world, api):
    alarm(api, "a-1")
    assert alarm(api, "a-2", category="E0401").status_code == 201
    assert Case.objects.count() == 2


@pytest.mark.parametrize("second_at", [T0, T0 + timedelta(minutes=10)])
def test_retried_alarm_id_returns_same_case_and_writes_nothing(world, api, second_at):
    first = alarm(api, "a-1").json()["case"]
    alarm(api, "a-2", T0 + timedelta(minutes=10))  # attached
    before = (Case.objects.count(), CaseEvent.objects.count(), CasePhoto.objects.count())
    for alarm_id in ("a-1", "a-2"):
        response = alarm(api, alarm_id, second_at)
        assert response.status_code == 200
        assert response.json()["case"] == first and response.json()["created"] is False
    assert (Case.objects.count(), CaseEvent.objects.count(), CasePhoto.objects.count()) == before


def test_retried_alarm_after_close_still_returns_its_case(world, api):
    first = Case.objects.get(code=alarm(api, "a-1").json()["case"])
    services.case_void(case_id=first.pk, actor=world["dispatcher"], reason="误报")
    response = alarm(api, "a-1")
    assert response.status_code == 200 and response.json()["case"] == first.code
    assert Case.objects.count() == 1


def test_same_alarm_id_from_another_system_is_another_alarm(world, api):
    alarm(api, "a-1")
    CameraSystemFactory(code="DAHUA", token="dh-secret", district=world["system"].district, dedup_minutes=0)
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION="Token dh-secret")
    response = alarm(other, "a-1", T0 + timedelta(minutes=1))
    assert response.status_code == 201 and Case.objects.count() == 2


def test_algorithm_label_maps_to_category(world, api):
    response = alarm(api, "a-1", category="", label="illegal_parking")
    assert response.status_code == 201
    assert Case.objects.get().category == world["parking"]
    unknown = alarm(api, "a-2", category="", label="fire_smoke")
    assert unknown.status_code == 400 and unknown.json()["field"] == "label"


def test_base64_json_snapshot(world, api):
    body = {
        "camera": "CAM-1",
        "alarm_id": "b-1",
        "category": "E0404",
        "time": T0.isoformat(),
        "snapshot_base64": "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes()).decode(),
    }
    response = api.post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    assert Case.objects.get().photos.count() == 1


@pytest.mark.parametrize(
    "header",
    [None, "Token nope", "Token", "Bearer hik-secret", "Token hik-secret extra"],
)
def test_bad_or_missing_token_is_401(world, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = alarm(client, "a-1")
    assert response.status_code == 401
    assert response.json()["code"] in {"not_authenticated", "authentication_failed"}
    assert Case.objects.count() == 0


def test_inactive_system_and_user_token_are_401(world):
    world["system"].is_active = False
    world["system"].save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token hik-secret")
    assert alarm(client, "a-1").status_code == 401
    user_token = Token.objects.create(user=world["dispatcher"])
    client.credentials(HTTP_AUTHORIZATION=f"Token {user_token.key}")
    assert alarm(client, "a-1").status_code == 401
    assert Case.objects.count() == 0


@pytest.mark.parametrize(
    ("extra", "status", "field"),
    [
        (dict(camera="NOPE"), 400, "camera"),
        (dict(camera=""), 400, "camera"),
        (dict(camera="CAM-X"), 404, "camera"),  # another district's camera: not ours to see
        (dict(alarm_id=""), 400, "alarm_id"),
        (dict(category="E9999"), 400, "category"),
        (dict(category="", label=""), 400, "category"),
        (dict(confidence="1.5"), 400, "confidence"),
        (dict(confidence="nan"), 400, "confidence"),
        (dict(time="yesterday"), 400, "time"),
        (dict(time="2026-13-01T00:00:00+08:00"), 400, "time"),
        (dict(time="2099-01-01T00:00:00+08:00"), 400, "time"),
    ],
)
def test_bad_alarms_are_refused_without_writing(world, api, extra, status, field):
    extra = dict(extra)
    response = alarm(api, extra.pop("alarm_id", "a-1"), **extra)
    assert response.status_code == status, response.json()
    assert response.json()["field"] == field and response.json()["detail"]
    assert Case.objects.count() == 0 and CaseEvent.objects.count() == 0


def test_broken_snapshot_is_refused(world, api):
    bad = SimpleUploadedFile("snap.jpg", b"not an image", content_type="image/jpeg")
    response = api.post(URL, {"camera": "CAM-1", "alarm_id": "a-1", "category": "E0404", "snapshot": bad})
    assert response.status_code == 400 and response.json()["code"] == "photo_invalid"
    response = api.post(URL, {"camera": "CAM-1", "alarm_id": "a-1", "category": "E0404", "snapshot_base64": "@@"})
    assert response.status_code == 400 and response.json()["code"] == "photo_invalid"
    assert Case.objects.count() == 0


def test_json_array_body_is_400(world, api):
    response = api.post(URL, [1, 2], format="json")
    assert response.status_code == 400


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("ids", [("a-1", "a-2"), ("a-1", "a-1")])
def test_simultaneous_alarms_make_one_case(ids):
    world = build_world()
    barrier = threading.Barrier(2)
    outcomes: list = []

    def deliver(alarm_id):
        try:
            barrier.wait(timeout=10)
            result = camera_alarm_ingest(
                system=world["system"], camera_code="CAM-1", alarm_id=alarm_id, category="E0404", at=T0.isoformat()
            )
            outcomes.append(result.created)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == [False, True]
    case = Case.objects.get()
    expected = 1 if ids[0] == ids[1] else 2  # the retry writes nothing; another alarm is attached
    assert case.events.count() == expected
