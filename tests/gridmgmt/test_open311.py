"""Open311 GeoReport v2: services, service definitions and requests, in JSON and XML, valid and erroneous;
XML is parsed back with ElementTree; one test drives a published GeoReport client over real HTTP."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import Image

from gridmgmt import services
from gridmgmt.models import Case, CasePhoto, Category, Department, Open311Client, User
from tests.factories import CategoryFactory, TeamFactory, UserFactory
from tests.geodata import make_square_district

BASE = "/open311/v2"
PHONE = "13900001111"
FORMATS = ["json", "xml"]


def jpeg(name="media.jpg") -> SimpleUploadedFile:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, "JPEG")
    return SimpleUploadedFile(name, buf.getvalue(), content_type="image/jpeg")


def build_world():
    district, cells = make_square_district(code="310115", n=3)
    department = Department.objects.create(code="PD-SR", name="市容环境管理所", name_en="City Appearance Office")
    env = CategoryFactory(code="E01", name="市容环境", name_en="City appearance")
    street = CategoryFactory(code="E04", name="街面秩序", name_en="Street order")
    rubbish = CategoryFactory(
        code="E0101",
        name="暴露垃圾",
        name_en="Exposed rubbish",
        plain_name="路边有垃圾",
        parent=env,
        default_department=department,
        filing_condition="公共区域暴露垃圾",
        limit_unit=Category.LimitUnit.WORKING_DAYS,
        limit_normal=1,
    )
    CategoryFactory(code="E0404", name="违章停车", name_en="Illegal parking", parent=street)
    CategoryFactory(code="E0104", name="违章搭建", parent=env, is_sensitive=True)
    CategoryFactory(code="E0199", name="停用类别", parent=env, is_active=False)
    users = {r: UserFactory(username=r, role=r) for r in (User.Role.DISPATCHER, User.Role.RESIDENT)}
    team = TeamFactory(district=district)
    centre = cells[4].center
    app = Open311Client(name="市民服务 App")
    api_key = app.key_issue()
    app.save()
    return dict(
        district=district,
        cells=cells,
        rubbish=rubbish,
        users=users,
        team=team,
        lon=centre.x,
        lat=centre.y,
        app=app,
        api_key=api_key,
    )


@pytest.fixture
def world(db):
    return build_world()


def report(world, code="E0101", at=None, **kw) -> Case:
    args = dict(source=Case.Source.RESIDENT, category_code=code, lon=world["lon"], lat=world["lat"], at=at)
    args.update(kw)
    case, _ = services.case_report(**args)
    return case


def get(client, path, fmt, **params):
    return client.get(f"{BASE}/{path}.{fmt}", params)


def parse(response, fmt):
    """JSON as is; XML through ElementTree, checked for the declaration and UTF-8."""
    if fmt == "json":
        assert response["Content-Type"] == "application/json; charset=utf-8"
        return json.loads(response.content)
    assert response["Content-Type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(response.content)


def xml_items(root: ET.Element, root_tag: str, item_tag: str) -> list[dict]:
    assert root.tag == root_tag
    assert all(child.tag == item_tag for child in root)
    return [{child.tag: child for child in item} for item in root]


def error_of(response, fmt) -> tuple[int, str]:
    data = parse(response, fmt)
    if fmt == "json":
        assert isinstance(data, list) and len(data) == 1 and set(data[0]) == {"code", "description"}
        return data[0]["code"], data[0]["description"]
    assert data.tag == "errors" and [e.tag for e in data] == ["error"]
    return int(data.find("error/code").text), data.find("error/description").text


# --- services -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_service_list_only_public_categories(world, client, fmt, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = get(client, "services", fmt)
    assert response.status_code == 200
    data = parse(response, fmt)
    if fmt == "json":
        codes = [s["service_code"] for s in data]
        rubbish = data[0]
        assert rubbish["metadata"] is True and rubbish["type"] == "realtime"
    else:
        items = xml_items(data, "services", "service")
        codes = [i["service_code"].text for i in items]
        rubbish = {k: v.text for k, v in items[0].items()}
        assert rubbish["metadata"] == "true" and rubbish["type"] == "realtime"
    assert codes == ["E0101", "E0404"]  # no major classes, no sensitive, no inactive
    assert rubbish["service_name"] == "暴露垃圾" and rubbish["group"] == "市容环境"
    assert rubbish["description"] == "公共区域暴露垃圾" and "路边有垃圾" in rubbish["keywords"]


def test_service_list_in_english(world, client):
    data = client.get(f"{BASE}/services.json", headers={"accept-language": "en"}).json()
    assert data[0]["service_name"] == "Exposed rubbish" and data[0]["group"] == "City appearance"


@pytest.mark.parametrize("fmt", FORMATS)
def test_service_definition_has_required_urgency_list(world, client, fmt):
    response = get(client, "services/E0101", fmt)
    assert response.status_code == 200
    data = parse(response, fmt)
    if fmt == "json":
        assert data["service_code"] == "E0101"
        (attr,) = data["attributes"]
        assert (attr["variable"], attr["required"], attr["order"]) == (True, True, 1)
        values = [(v["key"], v["name"]) for v in attr["values"]]
    else:
        assert data.tag == "service_definition" and data.find("service_code").text == "E0101"
        (attr_el,) = data.find("attributes")
        assert attr_el.tag == "attribute"
        attr = {child.tag: child.text for child in attr_el}
        assert (attr["variable"], attr["required"], attr["order"]) == ("true", "true", "1")
        values = [(v.find("key").text, v.find("name").text) for v in attr_el.find("values")]
    assert attr["code"] == "urgency" and attr["datatype"] == "singlevaluelist"
    assert values == [("normal", "一般"), ("urgent", "紧急")]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("code", ["E9999", "E0104", "E0199", "E01"])  # unknown, sensitive, inactive, major
def test_service_definition_unknown_is_404(world, client, fmt, code):
    response = get(client, f"services/{code}", fmt)
    assert response.status_code == 404
    assert error_of(response, fmt) == (404, f"service_code {code} 不存在")


# --- GET requests ---------------------------------------------------------------------------------------------


@pytest.fixture
def cases(world):
    now = timezone.now()
    open_case = report(
        world,
        at=now - timedelta(days=1),
        description="路口垃圾",
        address="张杨路 1 号",
        reporter_name="李四",
        reporter_phone=PHONE,
        photos=[jpeg()],
    )
    services.case_file(case_id=open_case.pk, actor=world["users"][User.Role.DISPATCHER])
    closed = report(world, code="E0404", at=now - timedelta(days=2))
    services.case_void(case_id=closed.pk, actor=world["users"][User.Role.DISPATCHER], reason="重复")
    sensitive = report(
        world,
        code="E0104",
        at=now - timedelta(days=3),
        description="某小区 5 号楼顶加盖",
        address="某路 5 号",
        photos=[jpeg()],
    )
    old = report(world, at=now - timedelta(days=100))
    return dict(open=open_case, closed=closed, sensitive=sensitive, old=old)


def codes_of(response, fmt) -> list[str]:
    data = parse(response, fmt)
    if fmt == "json":
        return [r["service_request_id"] for r in data]
    return [i["service_request_id"].text for i in xml_items(data, "service_requests", "request")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_requests_default_window_last_90_days(world, cases, client, fmt):
    response = get(client, "requests", fmt)
    assert response.status_code == 200
    c = cases
    assert codes_of(response, fmt) == [c["open"].code, c["closed"].code]  # sensitive categories: not public


@pytest.mark.parametrize("fmt", FORMATS)
def test_requests_filters(world, cases, client, fmt):
    c = cases
    assert codes_of(get(client, "requests", fmt, status="open"), fmt) == [c["open"].code]
    assert codes_of(get(client, "requests", fmt, status="closed"), fmt) == [c["closed"].code]
    assert codes_of(get(client, "requests", fmt, status="open,closed", service_code="E0404,E0104"), fmt) == [
        c["closed"].code
    ]
    # service_request_id overrides every other argument, the 90-day window too.
    ids = f"{c['old'].code}, {c['open'].code}"
    assert set(codes_of(get(client, "requests", fmt, service_request_id=ids, status="closed"), fmt)) == {
        c["old"].code,
        c["open"].code,
    }
    now = timezone.localtime()
    start, end = (now - timedelta(days=101)).isoformat(), (now - timedelta(days=20)).isoformat()
    assert codes_of(get(client, "requests", fmt, start_date=start, end_date=end), fmt) == [c["old"].code]
    assert codes_of(get(client, "requests", fmt, end_date=end), fmt) == [c["old"].code]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("params", "message"),
    [
        (dict(start_date="2026-01-01T00:00:00+08:00", end_date="2026-05-01T00:00:00+08:00"), "不能超过 90 天"),
        (dict(start_date="2026-05-01T00:00:00Z", end_date="2026-04-01T00:00:00Z"), "不能晚于"),
        (dict(start_date="last week"), "W3C"),
        (dict(end_date="2026-02-30T00:00:00Z"), "W3C"),
        (dict(status="pending"), "open 或 closed"),
    ],
)
def test_requests_bad_filters_are_400(world, client, fmt, params, message):
    response = get(client, "requests", fmt, **params)
    assert response.status_code == 400
    code, description = error_of(response, fmt)
    assert code == 400 and message in description


def test_request_fields_json(world, cases, client):
    case = Case.objects.get(pk=cases["open"].pk)
    response = client.get(f"{BASE}/requests/{case.code}.json")
    (item,) = response.json()
    assert item["service_request_id"] == case.code
    assert (item["status"], item["status_notes"]) == ("open", "已立案")
    assert (item["service_code"], item["service_name"]) == ("E0101", "暴露垃圾")
    assert item["agency_responsible"] == "市容环境管理所"
    # A resident's own words are public; the address is not (address_id locates to the cell).
    assert item["description"] == "路口垃圾" and item["address"] is None
    assert item["address_id"] == world["cells"][4].code
    assert isinstance(item["lat"], float) and isinstance(item["long"], float)
    assert abs(item["lat"] - world["lat"]) < 1e-9 and abs(item["long"] - world["lon"]) < 1e-9
    assert item["requested_datetime"] == timezone.localtime(case.reported_at).isoformat(timespec="seconds")
    assert item["requested_datetime"].endswith("+08:00")
    assert datetime.fromisoformat(item["expected_datetime"]) == case.due_at.replace(microsecond=0)
    assert item["service_notice"] == "立案后 1 工作日内处置"
    assert item["media_url"].startswith("http://testserver/media/cases/")
    assert [(n["type"], n["summary"]) for n in item["notes"]] == [("reported", "上报"), ("filed", "立案")]
    assert PHONE not in response.content.decode() and "李四" not in response.content.decode()


def test_request_fields_xml(world, cases, client):
    case = cases["closed"]
    response = client.get(f"{BASE}/requests/{case.code}.xml")
    (item,) = xml_items(parse(response, "xml"), "service_requests", "request")
    assert item["service_request_id"].text == case.code
    assert (item["status"].text, item["status_notes"].text) == ("closed", "已作废")
    assert float(item["lat"].text) == pytest.approx(world["lat"], abs=1e-9)
    assert item["agency_responsible"].text is None  # empty element, as in the spec's example
    notes = item["notes"].findall("note")
    assert [n.find("type").text for n in notes] == ["reported", "voided"]
    assert all(n.find("datetime").text.endswith("+08:00") for n in notes)


@pytest.mark.parametrize("fmt", FORMATS)
def test_sensitive_request_is_not_public(world, cases, client, fmt):
    response = get(client, f"requests/{cases['sensitive'].code}", fmt)
    assert response.status_code == 404
    assert "加盖" not in response.content.decode() and "5 号" not in response.content.decode()


@pytest.mark.parametrize("fmt", FORMATS)
def test_unknown_request_is_404(world, client, fmt):
    response = get(client, "requests/nope", fmt)
    assert response.status_code == 404 and error_of(response, fmt)[0] == 404


def test_requests_list_query_count_is_constant(world, client, django_assert_num_queries):
    for _ in range(5):
        case = report(world, photos=[jpeg()])
        services.case_file(case_id=case.pk, actor=world["users"][User.Role.DISPATCHER])
    with django_assert_num_queries(3):  # cases (+category, department, cell), events, photos
        response = client.get(f"{BASE}/requests.json")
    assert len(response.json()) == 5


# --- POST requests --------------------------------------------------------------------------------------------


def post_body(world, **extra) -> dict:
    body = {
        "api_key": world["api_key"],
        "service_code": "E0101",
        "lat": str(world["lat"]),
        "long": str(world["lon"]),
        "attribute[urgency]": "urgent",
        "description": "绿化带里有建筑垃圾",
        "first_name": "三",
        "last_name": "张",
        "phone": PHONE,
        "email": "zhang@example.com",
        "address_string": "张杨路 2 号",
    }
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def post_form(client, world, fmt="json", **extra):
    return client.post(f"{BASE}/requests.{fmt}", post_body(world, **extra))


@pytest.mark.parametrize("fmt", FORMATS)
def test_post_with_media_upload_creates_case(world, fmt):
    client = Client(enforce_csrf_checks=True)  # other systems post without a CSRF token
    response = post_form(client, world, fmt, media=jpeg())
    assert response.status_code == 200, response.content
    data = parse(response, fmt)
    if fmt == "json":
        (item,) = data
    else:
        item = {k: v.text for k, v in xml_items(data, "service_requests", "request")[0].items()}
    assert set(item) == {"service_request_id", "service_notice", "account_id"}
    assert item["account_id"] is None
    case = Case.objects.get(code=item["service_request_id"])
    assert (case.source, case.urgency, case.category.code) == (Case.Source.OPEN311, "urgent", "E0101")
    assert (case.reporter_name, case.reporter_phone, case.reporter) == ("张三", PHONE, None)
    assert case.address == "张杨路 2 号" and case.description == "绿化带里有建筑垃圾"
    assert case.photos.get().kind == CasePhoto.Kind.BEFORE
    assert case.events.get().photos.count() == 1
    assert item["service_notice"] == "立案后 4 工作时内处置"  # the urgent limit of the category
    public = client.get(f"{BASE}/requests/{case.code}.json")
    assert public.json()[0]["media_url"].endswith(".jpg")
    assert PHONE not in public.content.decode() and "zhang@example.com" not in public.content.decode()


@pytest.mark.parametrize("fmt", FORMATS)
def test_post_without_api_key_is_403(world, client, fmt):
    # GeoReport v2 requires an api_key on POST; before, anyone could post anonymously.
    response = post_form(client, world, fmt, api_key=None)
    assert response.status_code == 403 and error_of(response, fmt) == (403, "缺少 api_key")
    assert Case.objects.count() == 0


def test_post_with_revoked_api_key_is_403(world, client):
    assert post_form(client, world).status_code == 200
    world["app"].is_active = False  # revoked in the admin
    world["app"].save()
    response = post_form(client, world)
    assert response.status_code == 403 and error_of(response, "json") == (403, "api_key 无效")
    assert Case.objects.count() == 1


def test_post_with_valid_api_key_and_key_stored_hashed(world, client):
    response = client.post(f"{BASE}/requests.json?api_key={world['api_key']}", post_body(world, api_key=None))
    assert response.status_code == 200, response.content
    (item,) = response.json()
    assert item["account_id"] is None and Case.objects.get().reporter is None
    app = Open311Client.objects.get()
    assert world["api_key"] not in (app.key_hash, app.key_prefix) and len(world["api_key"]) >= 40
    assert Open311Client.by_key(world["api_key"]) == app and Open311Client.by_key(world["api_key"] + "x") is None


def test_post_throttled_per_api_key(world, client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "open311_post": "2/hour"},
    }
    other = Open311Client(name="另一个应用")
    other_key = other.key_issue()
    other.save()
    assert [post_form(client, world).status_code for _ in range(3)] == [200, 200, 429]
    response = post_form(client, world, fmt="xml")
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert error_of(response, "xml")[0] == 429
    assert post_form(client, world, api_key=other_key).status_code == 200  # a key of its own, a count of its own
    assert Case.objects.count() == 3


@pytest.mark.parametrize("fmt", FORMATS)
def test_post_with_bad_api_key_is_403(world, client, fmt):
    response = post_form(client, world, fmt, api_key="nope")
    assert response.status_code == 403 and error_of(response, fmt) == (403, "api_key 无效")
    assert Case.objects.count() == 0


def test_post_json_body_and_media_url(world, client):
    body = {
        "api_key": world["api_key"],
        "service_code": "E0404",
        "lat": world["lat"],
        "long": world["lon"],
        "attribute": {"urgency": "normal"},
        "media_url": "https://img.example.org/p/1.jpg",
    }
    response = client.post(f"{BASE}/requests.json", body, content_type="application/json")
    assert response.status_code == 200, response.content
    code = response.json()[0]["service_request_id"]
    assert client.get(f"{BASE}/requests/{code}.json").json()[0]["media_url"] == "https://img.example.org/p/1.jpg"


def test_post_by_address_id_locates_at_cell(world, client):
    cell = world["cells"][0]
    response = post_form(client, world, lat=None, long=None, address_id=cell.code)
    assert response.status_code == 200, response.content
    case = Case.objects.get()
    assert case.cell == cell and case.point.equals_exact(cell.center, tolerance=1e-9)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("extra", "status", "message"),
    [
        (dict(lat="30.0", long="120.0"), 400, "不在服务范围"),
        (dict(service_code="E9999"), 404, "service_code E9999 不存在"),
        (dict(service_code="E0104"), 404, "service_code E0104 不存在"),  # sensitive: not offered publicly
        (dict(service_code=None), 400, "缺少 service_code"),
        (dict(lat="abc"), 400, "坐标不是数字"),
        (dict(lat="95", long="121.5"), 400, "坐标超出有效范围"),
        (dict(long=None), 400, "须同时提供"),
        (dict(lat=None, long=None), 400, "仅凭地址文字无法定位"),
        (dict(lat=None, long=None, address_string=None), 400, "缺少位置"),
        (dict(lat=None, long=None, address_id="999"), 400, "不是有效的单元网格编码"),
        (dict(**{"attribute[urgency]": None}), 400, "attribute[urgency] 为必填项"),
        (dict(**{"attribute[urgency]": "asap"}), 400, "只能是 normal 或 urgent"),
        (dict(media_url="javascript:alert(1)"), 400, "media_url"),
        (dict(description="长" * 2001), 400, "描述不能超过"),
    ],
)
def test_post_errors_in_spec_format(world, client, fmt, extra, status, message):
    response = post_form(client, world, fmt, **extra)
    assert response.status_code == status, response.content
    code, description = error_of(response, fmt)
    assert code == status and message in description
    assert Case.objects.count() == 0


def test_post_broken_media_refused(world, client):
    bad = SimpleUploadedFile("x.jpg", b"not an image", content_type="image/jpeg")
    response = post_form(client, world, media=bad)
    assert response.status_code == 400 and "无法识别" in response.json()[0]["description"]
    assert Case.objects.count() == 0


def test_errors_follow_accept_language(world, client):
    zh = post_form(client, world, lat="30.0", long="120.0")
    en = client.post(
        f"{BASE}/requests.json",
        {
            "api_key": world["api_key"],
            "service_code": "E0101",
            "lat": "30.0",
            "long": "120.0",
            "attribute[urgency]": "normal",
        },
        headers={"accept-language": "en"},
    )
    assert zh.json()[0]["description"] == "该位置不在服务范围内"
    assert en.json()[0]["description"] == "This location is outside the service area"
    window = {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"}
    en_xml = client.get(f"{BASE}/requests.xml", window, headers={"accept-language": "en-US,en;q=0.9"})
    assert error_of(en_xml, "xml") == (400, "The date range may not span more than 90 days")


@pytest.mark.parametrize("fmt", FORMATS)
def test_wrong_method_and_unknown_resource(world, client, fmt):
    response = client.put(f"{BASE}/requests.{fmt}")
    assert response.status_code == 405 and error_of(response, fmt)[0] == 405
    response = client.get(f"{BASE}/tokens/123.{fmt}")
    assert response.status_code == 404 and error_of(response, fmt)[0] == 404


def test_unknown_format_answers_spec_error_in_xml(world, client):
    response = client.get(f"{BASE}/services.csv")
    assert response.status_code == 404 and error_of(response, "xml")[0] == 404


# --- a published client over real HTTP ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_georeport_client_reads_our_endpoint(transactional_db, live_server, fmt):
    from georeport import GeoReport

    world = build_world()
    case = report(world, description="路边垃圾", photos=[jpeg()])
    client = GeoReport(f"{live_server.url}{BASE}/", output_format=fmt)

    listed = client.get_service_list()
    assert [s["service_code"] for s in listed] == ["E0101", "E0404"]
    definition = client.get_service_definition("E0101")
    attributes = definition["attributes"] if fmt == "json" else [definition["attributes"]["attribute"]]
    assert attributes[0]["code"] == "urgency"

    found = client.get_service_requests(service_code="E0101", status="open")
    found = found if isinstance(found, list) else [found]  # xmltodict gives one item as a dict
    assert [r["service_request_id"] for r in found] == [case.code]
    single = client.get_service_request(case.code)
    assert single["service_request_id"] == case.code and single["status"] == "open"
    assert float(single["lat"]) == pytest.approx(world["lat"], abs=1e-9)
    assert single["media_url"].startswith(live_server.url)


# --- issue 9: bad input is a 4xx in the spec's error shape, never a 500 -------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "params",
    [
        dict(end_date="0001-01-02T00:00:00Z"),  # before: the default start, end − 90 days, overflowed
        dict(start_date="9999-12-31T00:00:00Z"),  # before: start + 90 days overflowed
        dict(start_date="0001-01-01T00:00:00+14:00"),
        dict(start_date="２０２６-11-01T00:00:00Z"),  # non-ASCII digits
        dict(start_date="2026-11-01T00:00:00Z\x00"),
        dict(service_code="E01\x0001"),
        dict(status="open\x00"),
    ],
)
def test_requests_out_of_range_dates_and_nul_bytes_are_400(world, client, fmt, params):
    response = get(client, "requests", fmt, **params)
    assert response.status_code == 400, response.content
    assert error_of(response, fmt)[0] == 400


@pytest.mark.parametrize("fmt", FORMATS)
def test_nul_in_a_path_id_is_a_4xx(world, client, fmt):
    for path in ("requests/2026%0001", "services/E01%0001"):
        response = client.get(f"{BASE}/{path}.{fmt}")
        assert response.status_code in (400, 404), (path, response.content)
        assert error_of(response, fmt)[0] == response.status_code


@pytest.mark.parametrize(
    "field", ["description", "first_name", "last_name", "phone", "address_string", "service_code", "media_url"]
)
def test_post_nul_in_any_text_field_is_400_and_writes_nothing(world, client, field):
    before = Case.objects.count()
    form = post_form(client, world, **{field: "绿化带\x00里"})
    assert (form.status_code, error_of(form, "json")[0]) == (400, 400), form.content
    as_json = client.post(
        f"{BASE}/requests.json", json.dumps(post_body(world, **{field: "a\x00b"})), content_type="application/json"
    )
    assert (as_json.status_code, error_of(as_json, "json")[0]) == (400, 400), as_json.content
    attribute = post_form(client, world, **{"attribute[urgency]": "urgent\x00"})
    assert attribute.status_code == 400
    assert Case.objects.count() == before
