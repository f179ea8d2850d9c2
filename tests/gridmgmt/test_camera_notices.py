"""Cameras gone offline tell the centre (gridmgmt.notify.cameras_offline_notify): one notification per dispatcher
and shift leader of the cameras' area per timeout pass or heartbeat — grouping the cameras, never one per camera —
with no case, its live feed row, the inbox API and the outbox like any other kind. Real database, real SMS receiver."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from geo.models import AdminArea, Camera, GridCell
from gridmgmt import notify, outbox
from gridmgmt.models import Delivery, Notification, User
from realtime.models import FeedEvent
from realtime.services import cameras_offline_timeout
from tests.factories import CameraFactory, CameraSystemFactory, DistrictFactory, UserFactory
from tests.geodata import make_square_district

R, K = User.Role, Notification.Kind


@pytest.fixture
def world(db):
    district, cells = make_square_district(code="310115", n=3)
    other, other_cells = make_square_district(code="310104", name="徐汇区", lon=121.43, lat=31.18, n=1)
    street = DistrictFactory(code="310115001", name="陆家嘴街道", level=AdminArea.Level.STREET, parent=district)
    GridCell.objects.filter(pk=cells[0].pk).update(street=street)  # CAM-1's cell only
    for i, code in enumerate(["CAM-1", "CAM-2", "CAM-3"]):
        CameraFactory(code=code, name=f"路口{i + 1}", cell=cells[i], district=district, status=Camera.Status.ONLINE)
    CameraFactory(code="CAM-X", name="徐汇1", cell=other_cells[0], district=other, status=Camera.Status.ONLINE)
    CameraSystemFactory(code="HIK", token="hik-secret", district=district)
    users = {
        "dispatcher": UserFactory(username="dispatcher", role=R.DISPATCHER, area=district, phone="13800000001"),
        "dispatcher2": UserFactory(username="dispatcher2", role=R.DISPATCHER, area=district),
        "shift_leader": UserFactory(username="shift_leader", role=R.SHIFT_LEADER, area=district),
        "street_dispatcher": UserFactory(username="street_dispatcher", role=R.DISPATCHER, area=street),
        "inspector": UserFactory(username="inspector", role=R.INSPECTOR, area=district),
        "wall": UserFactory(username="wall", role=R.WALL, area=district),
        "gone": UserFactory(username="gone", role=R.DISPATCHER, area=district, is_active=False),
        "far_dispatcher": UserFactory(username="far_dispatcher", role=R.DISPATCHER, area=other),
        "far_leader": UserFactory(username="far_leader", role=R.SHIFT_LEADER, area=other),
    }
    return {"district": district, "users": users}


def stale(*codes: str, now) -> None:
    Camera.objects.filter(code__in=codes).update(last_seen_at=now - timedelta(seconds=600))


def notices() -> dict[str, list[Notification]]:
    found: dict[str, list[Notification]] = {}
    for n in Notification.objects.filter(kind=K.CAMERAS_OFFLINE).select_related("user").order_by("id"):
        found.setdefault(n.user.username, []).append(n)
    return found


def test_a_pass_turning_three_cameras_offline_tells_each_centre_user_of_the_district_once(world, settings):
    settings.CAMERA_OFFLINE_AFTER = 180
    now = timezone.now()
    stale("CAM-1", "CAM-2", "CAM-3", now=now)
    assert cameras_offline_timeout(now=now).offline == ["CAM-1", "CAM-2", "CAM-3"]

    told = notices()
    # Dispatchers and shift leaders of the district, one each; the street's dispatcher for its one camera; not the
    # inspector, the wall, an inactive account or the other district's staff.
    assert sorted(told) == ["dispatcher", "dispatcher2", "shift_leader", "street_dispatcher"]
    assert all(len(rows) == 1 for rows in told.values())
    (note,) = told["dispatcher"]
    assert (note.case_id, note.event_id) == (None, None)
    assert note.title == "3 个摄像头离线"
    assert note.text.startswith("CAM-1 路口1、CAM-2 路口2、CAM-3 路口3:")
    (street_note,) = told["street_dispatcher"]
    assert street_note.title == "1 个摄像头离线" and "CAM-2" not in street_note.text

    # One live feed row per person, in their own scope, with no case.
    rows = FeedEvent.objects.filter(type=notify.FEED_TYPE, user_id=world["users"]["dispatcher"].id)
    (row,) = rows
    assert row.data["case_id"] is None and row.data["code"] is None
    assert (row.data["kind"], row.data["title"], row.data["unread"]) == (K.CAMERAS_OFFLINE, "3 个摄像头离线", 1)
    assert row.data["text"] == note.text
    assert (row.district_id, row.case_event_id) == (None, None)

    # A second pass changes nothing and tells nobody.
    assert cameras_offline_timeout(now=now).offline == []
    assert Notification.objects.filter(kind=K.CAMERAS_OFFLINE).count() == 4
    assert FeedEvent.objects.filter(type=notify.FEED_TYPE).count() == 4


def test_the_other_districts_camera_tells_only_its_own_staff(world, settings):
    settings.CAMERA_OFFLINE_AFTER = 180
    now = timezone.now()
    stale("CAM-X", now=now)
    cameras_offline_timeout(now=now)
    assert sorted(notices()) == ["far_dispatcher", "far_leader"]


def test_a_heartbeat_saying_offline_tells_once_for_all_its_cameras(world):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Token hik-secret")
    answer = api.post("/api/camera-heartbeats/", {"online": ["CAM-3"], "offline": ["CAM-1", "CAM-2"]}, format="json")
    assert answer.status_code == 200, answer.json()
    told = notices()
    assert sorted(told) == ["dispatcher", "dispatcher2", "shift_leader", "street_dispatcher"]
    assert [n.title for n in told["dispatcher"]] == ["2 个摄像头离线"]
    # The same heartbeat again changes nothing: no new notice.
    api.post("/api/camera-heartbeats/", {"online": ["CAM-3"], "offline": ["CAM-1", "CAM-2"]}, format="json")
    assert Notification.objects.filter(kind=K.CAMERAS_OFFLINE).count() == 4


def test_the_inbox_lists_it_without_a_case(world, settings):
    settings.CAMERA_OFFLINE_AFTER = 180
    now = timezone.now()
    stale("CAM-1", now=now)
    cameras_offline_timeout(now=now)
    client = APIClient()
    client.force_authenticate(world["users"]["shift_leader"])
    body = client.get("/api/notifications/").json()
    (item,) = body["results"]
    assert (item["kind"], item["case_id"], item["case_code"], item["event_id"]) == (K.CAMERAS_OFFLINE, None, None, None)
    assert item["title"] == "1 个摄像头离线" and body["unread"] == 1
    answer = client.post(f"/api/notifications/{item['id']}/read/")
    assert answer.status_code == 200 and answer.json()["unread"] == 0


def test_the_outbox_delivers_it_like_any_other_kind(world, settings, receivers):
    (gateway,) = receivers(1, answer=b'{"code": "0"}')
    settings.SMS_GATEWAY_URL = f"{gateway.url}/sms/send"
    settings.SMS_GATEWAY_SUCCESS = r'"code":\s*"0"'
    settings.NOTIFY_DEFAULT_CHANNELS = ["sms"]
    settings.CAMERA_OFFLINE_AFTER = 180
    now = timezone.now()
    stale("CAM-1", "CAM-2", now=now)
    cameras_offline_timeout(now=now)
    (row,) = Delivery.objects.all()  # only the dispatcher has a phone
    assert (row.event_id, row.case_id, row.kind, row.target) == (None, None, K.CAMERAS_OFFLINE, "13800000001")
    assert row.notification.user == world["users"]["dispatcher"]
    report = outbox.deliveries_send(now=now + timedelta(seconds=1))
    assert report.sent == 1
    (sms,) = gateway.bodies()
    assert sms["mobile"] == "13800000001" and sms["content"].startswith("2 个摄像头离线:CAM-1 路口1、CAM-2 路口2")
    assert Delivery.objects.get().status == Delivery.Status.SENT


def test_the_notices_are_counted_after_commit(world, settings, django_capture_on_commit_callbacks):
    from gridmgmt.metrics import NOTIFICATIONS

    settings.CAMERA_OFFLINE_AFTER = 180
    now = timezone.now()
    stale("CAM-1", "CAM-2", "CAM-3", now=now)
    before = NOTIFICATIONS._value.get()
    with django_capture_on_commit_callbacks(execute=True):
        cameras_offline_timeout(now=now)
    assert NOTIFICATIONS._value.get() == before + 4
