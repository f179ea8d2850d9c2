"""12345 hotline orders: an operator files the order once (a repeat returns its case), the 12345 system polls
state and the reply written at closing; the caller's phone is stored but never shown unmasked."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from geo.coords import wgs84_to_bd09, wgs84_to_gcj02
from gridmgmt import services
from gridmgmt.errors import InvalidInput
from gridmgmt.models import Case, CaseEvent, User
from gridmgmt.phones import phone_mask
from tests.factories import CategoryFactory, TeamFactory, UserFactory
from tests.geodata import make_square_district

URL = "/api/hotline-orders/"
PHONE = "13812345678"


def jpeg() -> SimpleUploadedFile:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (90, 90, 90)).save(buf, "JPEG")
    return SimpleUploadedFile("after.jpg", buf.getvalue(), content_type="image/jpeg")


@pytest.fixture
def world(db):
    district, cells = make_square_district(code="310115", n=3)
    parent = CategoryFactory(code="E01", name="市容环境")
    CategoryFactory(code="E0101", name="暴露垃圾", parent=parent)
    team = TeamFactory(district=district, code="PT-A")
    users = {
        role: UserFactory(username=role, role=role)
        for role in (User.Role.DISPATCHER, User.Role.INSPECTOR, User.Role.SHIFT_LEADER, User.Role.RESIDENT)
    }
    users[User.Role.PATROL] = UserFactory(username="patrol", role=User.Role.PATROL, team=team)
    centre = cells[4].center
    return dict(district=district, team=team, users=users, lon=centre.x, lat=centre.y)


@pytest.fixture
def operator(world):
    client = APIClient()
    token = Token.objects.create(user=world["users"][User.Role.DISPATCHER])
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def order(client, world, order_no="GD20261124001", **extra):
    body = {
        "order_no": order_no,
        "lon": world["lon"],
        "lat": world["lat"],
        "category": "E0101",
        "text": "小区门口垃圾三天没人清运",
        "urgency": "urgent",
        "caller_phone": PHONE,
        "caller_name": "王先生",
        "address": "张杨路 100 号",
    }
    body.update(extra)
    return client.post(URL, body, format="json")


def test_order_creates_hotline_case(world, operator):
    response = order(operator, world)
    assert response.status_code == 201, response.json()
    body = response.json()
    case = Case.objects.get(code=body["case"])
    assert (case.source, case.external_id, case.urgency) == (Case.Source.HOTLINE, "GD20261124001", "urgent")
    assert (case.reporter_phone, case.reporter_name, case.address) == (PHONE, "王先生", "张杨路 100 号")
    assert case.reporter is None  # the caller is not the operator
    assert body["created"] is True and body["status"] == "reported" and body["reply"] is None
    assert body["caller_phone"] == "138****5678"
    assert case.events.get().data["order_no"] == "GD20261124001"


def test_repeated_order_returns_existing_case(world, operator):
    first = order(operator, world).json()["case"]
    again = order(operator, world, text="重复推送")
    assert again.status_code == 200
    assert again.json()["case"] == first and again.json()["created"] is False
    assert Case.objects.count() == 1 and CaseEvent.objects.count() == 1


@pytest.mark.parametrize(("datum", "convert"), [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
def test_chinese_datums_are_converted_to_wgs84(world, operator, datum, convert):
    lon, lat = convert(world["lon"], world["lat"])
    response = order(operator, world, lon=lon, lat=lat, datum=datum)
    assert response.status_code == 201, response.json()
    point = Case.objects.get().point
    assert abs(point.x - world["lon"]) < 1e-7 and abs(point.y - world["lat"]) < 1e-7


def test_session_login_works_too(world, client):
    client.force_login(world["users"][User.Role.DISPATCHER])
    response = client.post(
        URL,
        {"order_no": "GD-1", "lon": world["lon"], "lat": world["lat"], "category": "E0101", "text": "路灯不亮"},
        content_type="application/json",
    )
    assert response.status_code == 201


@pytest.mark.parametrize("role", [User.Role.RESIDENT, User.Role.PATROL, User.Role.INSPECTOR])
def test_only_operators_may_file_orders(world, role):
    client = APIClient()
    client.force_authenticate(world["users"][role])
    response = order(client, world)
    assert response.status_code == 403 and response.json()["code"] == "role_not_allowed"
    assert Case.objects.count() == 0


def test_anonymous_is_refused(world):
    response = order(APIClient(), world)
    assert response.status_code in (401, 403)
    assert Case.objects.count() == 0


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (dict(order_no=""), "order_no"),
        (dict(order_no="GD 1"), "order_no"),
        (dict(order_no="X" * 57), "order_no"),
        (dict(text=""), "text"),
        (dict(category=""), "category"),
        (dict(category="E9999"), "category"),
        (dict(lon="abc"), "location"),
        (dict(lon=120.0, lat=30.0), "location"),  # outside the service area
        (dict(datum="utm"), "datum"),
        (dict(urgency="very"), "urgency"),
        (dict(caller_phone="1" * 21), "caller_phone"),
    ],
)
def test_bad_orders_are_refused_without_writing(world, operator, extra, field):
    response = order(operator, world, **extra)
    assert response.status_code == 400, response.json()
    assert response.json()["field"] == field and response.json()["detail"]
    assert Case.objects.count() == 0


def _close_with_reply(case: Case, world, reply: str) -> None:
    u = world["users"]
    services.case_file(case_id=case.pk, actor=u[User.Role.DISPATCHER])
    services.case_dispatch(case_id=case.pk, actor=u[User.Role.DISPATCHER], team_id=world["team"].pk)
    services.case_accept(case_id=case.pk, actor=u[User.Role.PATROL])
    services.case_handle(case_id=case.pk, actor=u[User.Role.PATROL], photos=[jpeg()])
    services.case_check(case_id=case.pk, actor=u[User.Role.INSPECTOR], passed=True)
    services.case_close(case_id=case.pk, actor=u[User.Role.SHIFT_LEADER], hotline_reply=reply)


def test_poll_shows_status_then_reply_after_close(world, operator):
    order(operator, world)
    poll = operator.get(f"{URL}GD20261124001/")
    assert poll.status_code == 200
    assert poll.json() | {} == {
        "order_no": "GD20261124001",
        "case": Case.objects.get().code,
        "status": "reported",
        "status_label": "已上报",
        "closed": False,
        "reply": None,
        "replied_at": None,
        "caller_phone": "138****5678",
    }
    _close_with_reply(Case.objects.get(), world, "已清运,感谢来电")
    closed = operator.get(f"{URL}GD20261124001/").json()
    assert closed["status"] == "closed" and closed["closed"] is True
    assert closed["reply"] == "已清运,感谢来电"
    assert closed["replied_at"].endswith("+08:00")


def test_poll_unknown_or_invisible_order_is_404(world, operator):
    assert operator.get(f"{URL}NOPE/").status_code == 404
    order(operator, world)
    resident = APIClient()
    resident.force_authenticate(world["users"][User.Role.RESIDENT])
    assert resident.get(f"{URL}GD20261124001/").status_code == 404


def test_another_channel_cannot_take_an_order_number(world, operator):
    # Issue 9: an anonymous report keyed "hotline:<order no>" used to block the real order forever.
    lon, lat = world["lon"], world["lat"]
    squat = APIClient().post(
        "/api/public/reports/", {"category": "E0101", "lon": lon, "lat": lat}, HTTP_IDEMPOTENCY_KEY="hotline:GD-9"
    )
    assert (squat.status_code, squat.json()["code"]) == (400, "reserved_key")
    with pytest.raises(InvalidInput):
        services.case_report(
            source=Case.Source.RESIDENT,
            category_code="E0101",
            lon=lon,
            lat=lat,
            idempotency_key="hotline:GD-9",
            idempotency_scope="public:ip:198.51.100.7",
        )
    # A resident case holding that key from before (empty scope) does not block the order either.
    old, _ = services.case_report(source=Case.Source.RESIDENT, category_code="E0101", lon=lon, lat=lat)
    Case.objects.filter(pk=old.pk).update(idempotency_key="hotline:GD-9")
    response = order(operator, world, order_no="GD-9")
    assert response.status_code == 201, response.json()
    assert Case.objects.get(idempotency_scope="hotline", idempotency_key="hotline:GD-9").source == Case.Source.HOTLINE


def test_phone_never_in_outputs(world, operator, client):
    created = order(operator, world)
    code = created.json()["case"]
    polled = operator.get(f"{URL}GD20261124001/")
    public = [
        client.get("/open311/v2/requests.json"),
        client.get("/open311/v2/requests.xml"),
        client.get(f"/open311/v2/requests/{code}.json"),
        client.get(f"/open311/v2/requests/{code}.xml"),
    ]
    assert all(r.status_code == 200 for r in public)
    assert code in public[0].content.decode()  # listed, without contact
    for response in [created, polled, *public]:
        text = response.content.decode()
        assert PHONE not in text and "王先生" not in text


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("13812345678", "138****5678"), ("021-58881234", "021*****1234"), ("12345", "1**45"), ("110", "***")],
)
def test_phone_mask(phone, masked):
    assert phone_mask(phone) == masked


def test_intake_schema_generates_without_warnings(db):
    from django.urls import include, path
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.validation import validate_schema

    GENERATOR_STATS.reset()
    schema = SchemaGenerator(patterns=[path("api/", include("gridmgmt.intake.urls"))]).get_schema(public=True)
    assert not GENERATOR_STATS, (dict(GENERATOR_STATS._warn_cache), dict(GENERATOR_STATS._error_cache))
    validate_schema(schema)
    assert {"/api/camera-alarms/", "/api/hotline-orders/", "/api/hotline-orders/{order_no}/"} <= set(schema["paths"])
