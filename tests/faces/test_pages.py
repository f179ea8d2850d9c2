"""The faces as the server renders them: who may open which page, what start-up data each gets, and that
nothing points outside this server. The browser side is in tests/e2e/test_faces.py."""

import json
import re
from datetime import timedelta

import pytest
from django.contrib.staticfiles import finders
from django.utils import timezone

from gridmgmt.models import Case, CaseEvent, User
from tests.factories import CameraFactory, CaseEventFactory, CaseFactory, UserFactory
from tests.geo.test_offline_pages import assert_offline
from tests.world import world_build

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_basemap(settings):
    settings.BASEMAP_URL = ""
    settings.BASEMAP_MBTILES = ""
    settings.BASEMAP_DATUM = "wgs84"


@pytest.fixture
def world():
    return world_build()


def config_of(html: str) -> dict:
    m = re.search(r'<script id="gm-config" type="application/json">(.*?)</script>', html, re.S)
    assert m, "the page has no gm-config"
    return json.loads(m.group(1))


def login(client, user: User):
    client.force_login(user)
    return client


def test_report_page_is_public_offline_and_in_chinese(client, world):
    response = client.get("/report/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "随手拍" in html and 'capture="environment"' in html and 'accept="image/*"' in html
    config = config_of(html)
    assert [c["code"] for c in config["categories"]] == ["E0404"]
    assert config["messages"]["outside"] == "该位置不在服务范围内,请在区界内选择。"
    assert config["cellTiles"] == "/tiles/cells/{z}/{x}/{y}.pbf"
    assert_offline(html)


def test_report_page_in_english(client, world, settings):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = client.get("/report/").content.decode()
    assert '<html lang="en">' in html


def test_report_page_category_names_in_english(client, world, settings):
    """English pages show the taxonomy's English names (access.category_public_name), Chinese ones the plain words."""
    from gridmgmt.models import Category

    Category.objects.filter(code="E0404").update(name_en="Piled materials", plain_name="路边乱堆东西")
    Category.objects.filter(code="E04").update(name_en="Street order")
    zh = config_of(client.get("/report/").content.decode())["categories"]
    assert [(c["plain"], c["major"]) for c in zh] == [("路边乱堆东西", "街面秩序")]
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    en = config_of(client.get("/report/").content.decode())["categories"]
    assert [(c["plain"], c["major"]) for c in en] == [("Piled materials", "Street order")]


def test_public_case_category_in_english(client, world, settings):
    from gridmgmt.models import Category

    Category.objects.filter(code="E0404").update(name_en="Piled materials")
    case = CaseFactory(category=world.category, cell=world.cells[4])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert client.get(f"/api/public/cases/{case.code}/").json()["category"] == "Piled materials"


def test_track_page_says_how_a_case_ended_and_polls(client, world):
    """No public reply exists: the page gets the closing words per ending status, photo kind labels and the
    poll interval (no public feed) from the server."""
    config = config_of(client.get("/report/track/20260101-0000001").content.decode())
    assert set(config["closing"]) == {Case.Status.CLOSED, Case.Status.ARCHIVED, Case.Status.VOIDED}
    assert config["photoKinds"]["after"] == "处置后"
    assert config["poll"] == 20
    assert "评价" in config["messages"]["keep_link"]


FACES = [
    ("/", None),
    ("/report/", None),
    ("/report/track/20260101-0000001", None),
    ("/map/", None),
    ("/patrol/", User.Role.PATROL),
    ("/wall/", User.Role.WALL),
    ("/dispatch/", User.Role.DISPATCHER),
    ("/accounts/login/", None),
]


@pytest.mark.parametrize("path,role", FACES)
def test_no_page_disables_pinch_zoom(client, world, path, role):
    """One viewport tag per page, and it lets people zoom (folium's own tag, maximum-scale=1 and
    user-scalable=no, is dropped by geo.folium_offline.render_parts)."""
    if role:
        login(client, world.users[role])
    response = client.get(path)
    assert response.status_code == 200, path
    tags = re.findall(r"<meta[^>]+name=[\"']viewport[\"'][^>]*>", response.content.decode(), re.I)
    assert len(tags) == 1, (path, tags)
    flat = tags[0].replace(" ", "").lower()
    assert "user-scalable=no" not in flat and "maximum-scale" not in flat, (path, tags)


def test_track_page_renders_for_any_code(client, world):
    response = client.get("/report/track/20260101-0000001")
    assert response.status_code == 200
    html = response.content.decode()
    assert config_of(html)["code"] == "20260101-0000001"
    assert_offline(html)


@pytest.mark.parametrize("path", ["/patrol/", "/wall/", "/dispatch/", "/wall/snapshot.json"])
def test_staff_faces_ask_anonymous_visitors_to_log_in(client, world, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


@pytest.mark.parametrize(
    ("path", "role", "status"),
    [
        ("/patrol/", User.Role.PATROL, 200),
        ("/patrol/", User.Role.DISPATCHER, 403),
        ("/wall/", User.Role.WALL, 200),
        ("/wall/", User.Role.PATROL, 403),
        ("/dispatch/", User.Role.DISPATCHER, 200),
        ("/dispatch/", User.Role.SHIFT_LEADER, 200),
        ("/dispatch/", User.Role.WALL, 403),
        ("/dispatch/", User.Role.RESIDENT, 403),
    ],
)
def test_staff_faces_by_role(client, world, path, role, status):
    user = world.users[role]
    response = login(client, user).get(path)
    assert response.status_code == status
    html = response.content.decode()
    if status == 403:
        assert "不能使用此页面" in html
    assert_offline(html)


def test_patrol_page_is_an_installable_pwa(client, world):
    html = login(client, world.users[User.Role.PATROL]).get("/patrol/").content.decode()
    assert '<link rel="manifest" href="/patrol/manifest.webmanifest">' in html
    assert config_of(html)["serviceWorker"] == "/patrol/sw.js"
    manifest = client.get("/patrol/manifest.webmanifest")
    assert manifest["Content-Type"] == "application/manifest+json"
    data = manifest.json()
    assert data["display"] == "standalone" and data["start_url"] == "/patrol/"
    for icon in data["icons"]:
        assert finders.find(icon["src"].removeprefix("/static/")), icon
    sw = client.get("/patrol/sw.js")
    assert sw["Content-Type"].startswith("text/javascript")
    assert "no-cache" in sw["Cache-Control"] or "max-age=0" in sw["Cache-Control"]
    assert "'/patrol/'" in sw.content.decode()


def test_login_page_and_role_landing(client, world):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert_offline(response.content.decode())
    response = client.post("/accounts/login/", {"username": "patrol", "password": "demo1234"})
    assert response.status_code == 302 and response["Location"] == "/patrol/"


def test_login_follows_next_but_not_to_another_host(client, world):
    form = {"username": "dispatcher", "password": "demo1234"}
    assert client.post("/accounts/login/?next=/wall/", form)["Location"] == "/wall/"
    client.logout()
    assert client.post("/accounts/login/?next=https://evil.example/", form)["Location"] == "/dispatch/"


def test_login_with_wrong_password_says_so_in_chinese(client, world):
    response = client.post("/accounts/login/", {"username": "patrol", "password": "nope"})
    assert response.status_code == 200
    assert "用户名或密码不正确" in response.content.decode()


def test_home_links_every_face(client, world):
    html = client.get("/").content.decode()
    for path in ("/wall/", "/dispatch/", "/patrol/", "/report/"):
        assert f'href="{path}"' in html


def test_wall_snapshot_counts(client, world, django_assert_max_num_queries):
    now = timezone.now()
    cell = world.cells[4]
    late = CaseFactory(
        cell=cell, category=world.category, status=Case.Status.DISPATCHED, deadline_at=now - timedelta(hours=1)
    )
    CaseFactory(cell=cell, category=world.category, status=Case.Status.FILED, deadline_at=now + timedelta(hours=3))
    closed = CaseFactory(
        cell=world.cells[0],
        category=world.category,
        status=Case.Status.CLOSED,
        closed_at=now,
        due_at=now + timedelta(hours=1),
        satisfaction=4,
    )
    old = CaseFactory(cell=world.cells[1], category=world.category, reported_at=now - timedelta(days=30))
    # The flow and the rates come from the event table (gridmgmt.kpi), as every KPI does.
    for case in (late, closed):
        CaseEventFactory(case=case, at=now - timedelta(minutes=5))
    CaseEventFactory(case=old, at=now - timedelta(days=30))
    CaseEventFactory(case=closed, type=CaseEvent.Type.CLOSED, to_status=Case.Status.CLOSED)
    CaseEventFactory(case=closed, type=CaseEvent.Type.RATED, to_status=Case.Status.CLOSED, data={"satisfaction": 4})
    event = CaseEventFactory(case=late, type=CaseEvent.Type.FILED, to_status=Case.Status.FILED)
    CameraFactory(district=world.district)
    login(client, world.users[User.Role.WALL])
    with django_assert_max_num_queries(16):  # 14, +2 for today's 巡查覆盖率 when it is not cached yet
        data = client.get("/wall/snapshot.json").json()
    assert data["last_event_id"] == event.id
    k = data["kpis"]
    assert (k["received"], k["filed"], k["closed"], k["open"], k["overdue"]) == (2, 1, 1, 3, 1)
    assert k["on_time_rate"] == 1.0 and k["satisfaction"] == 4.0
    assert k["on_time_of"] == [1, 1]  # the rate's part and whole, shown beside it
    assert data["cells"] == {str(cell.pk): [2, 1], str(world.cells[1].pk): [1, 0]}
    heat = {round(lat, 4): n for lat, _lon, n in data["heat"]}
    assert sorted(heat.values()) == [1, 2]  # the 30-day-old case is not in the 7-day heat
    assert len(data["cameras"]) == 1 and data["cameras"][0][2] is True
    assert [e["id"] for e in data["ticker"]] == sorted(CaseEvent.objects.values_list("id", flat=True))

    only = client.get("/wall/snapshot.json?only=kpis").json()
    assert set(only) == {"at", "last_event_id", "kpis"}
    # Category names in the page's language: the ticker here, the live envelopes through the page's table.
    world.category.name_en = "Dumped materials"
    world.category.save(update_fields=["name_en"])
    english = client.get("/wall/snapshot.json?only=ticker", HTTP_ACCEPT_LANGUAGE="en").json()
    assert {e["category"] for e in english["ticker"]} == {"Dumped materials"}
    chinese = client.get("/wall/snapshot.json?only=ticker").json()
    assert {e["category"] for e in chinese["ticker"]} == {world.category.name}


def test_wall_snapshot_is_scoped_to_the_user_area(client, world):
    CaseFactory(cell=world.cells[4], category=world.category)
    elsewhere = UserFactory(username="wall-elsewhere", role=User.Role.WALL, area=world.district)
    other_district_user = UserFactory(username="wall-other", role=User.Role.WALL)
    from tests.geodata import make_square_district

    other, _cells = make_square_district(code="310104", name="徐汇区", lon=121.40, lat=31.18, n=1)
    other_district_user.area = other
    other_district_user.save()
    assert login(client, elsewhere).get("/wall/snapshot.json").json()["kpis"]["open"] == 1
    assert login(client, other_district_user).get("/wall/snapshot.json").json()["kpis"]["open"] == 0


def test_public_map_shows_open_non_sensitive_cases_at_cell_centres(client, world):
    from tests.factories import CategoryFactory

    secret = CategoryFactory(code="E0999", name="敏感事项", is_sensitive=True, parent=world.category.parent)
    cell = world.cells[4]
    shown = CaseFactory(
        cell=cell, category=world.category, point=f"SRID=4326;POINT({cell.center.x + 0.0003} {cell.center.y})"
    )
    CaseFactory(cell=cell, category=secret)
    CaseFactory(cell=cell, category=world.category, status=Case.Status.CLOSED)
    ext = world.district.boundary.extent
    data = client.get(f"/report/map.json?bbox={ext[0]},{ext[1]},{ext[2]},{ext[3]}").json()
    assert data["cases"] == [[round(cell.center.y, 6), round(cell.center.x, 6), shown.code, "乱堆物堆料", "已上报"]]


@pytest.mark.parametrize("bbox", ["", "1,2,3", "a,b,c,d", "121.6,31.2,121.5,31.3", "0,0,200,1"])
def test_public_map_refuses_a_bad_bbox_with_a_message(client, world, bbox):
    response = client.get(f"/report/map.json?bbox={bbox}")
    assert response.status_code == 400
    assert response.json()["field"] == "bbox"


def _bbox_around(cell, d: float = 0.01) -> str:
    return f"{cell.center.x - d},{cell.center.y - d},{cell.center.x + d},{cell.center.y + d}"


def test_wall_viewport_cases_are_plain_rows_in_one_read(client, world, django_assert_num_queries):
    now = timezone.now()
    cell = world.cells[4]
    late = CaseFactory(
        cell=cell,
        category=world.category,
        status=Case.Status.DISPATCHED,
        deadline_at=now - timedelta(hours=1),
        reported_at=now - timedelta(hours=5),
    )
    fresh = CaseFactory(cell=cell, category=world.category, reported_at=now - timedelta(hours=1))
    CaseFactory(cell=cell, category=world.category, status=Case.Status.CLOSED, closed_at=now)
    far = world.cells[0]
    CaseFactory(cell=far, category=world.category, point=f"SRID=4326;POINT({far.center.x - 1} {far.center.y})")
    login(client, world.users[User.Role.WALL])
    # session, user, district, then in one transaction (a savepoint in a test) without parallel workers:
    # SAVEPOINT, SET LOCAL, the rows (fewer than the limit: no separate count), RELEASE
    with django_assert_num_queries(7):
        data = client.get(f"/wall/snapshot.json?only=cases&bbox={_bbox_around(cell)}").json()
    assert set(data) == {"at", "cases"}
    assert data["cases"]["count"] == 2 and data["cases"]["limit"] == 500
    rows = data["cases"]["cases"]
    assert [r[2] for r in rows] == [fresh.code, late.code]  # newest first, like /api/cases/
    lat, lon, _code, light, category, status, pk, level, urgency = rows[1]
    assert (round(lon, 6), round(lat, 6)) == (round(late.point.x, 6), round(late.point.y, 6))
    assert (light, category, status, pk, level, urgency) == ("red", "乱堆物堆料", "已派遣", late.pk, 0, "normal")
    assert rows[0][3] == "none"  # reported: no clock runs


def test_wall_viewport_counts_beyond_the_rows_drawn(world):
    from gridmgmt.faces.selectors import wall_viewport_cases

    cell = world.cells[4]
    for _ in range(3):
        CaseFactory(cell=cell, category=world.category)
    bbox = (cell.center.x - 0.01, cell.center.y - 0.01, cell.center.x + 0.01, cell.center.y + 0.01)
    data = wall_viewport_cases(cases=Case.objects.all(), bbox=bbox, now=timezone.now(), limit=2)
    assert (len(data["cases"]), data["count"]) == (2, 3)


@pytest.mark.parametrize("bbox", ["", "1,2,3", "121,31,120,32", "a,b,c,d"])
def test_wall_viewport_needs_a_valid_bbox(client, world, bbox):
    login(client, world.users[User.Role.WALL])
    response = client.get(f"/wall/snapshot.json?only=cases&bbox={bbox}")
    assert response.status_code == 400 and response.json()["code"] == "bbox_invalid"


def test_wall_teams_are_positions_in_one_read(client, world, django_assert_num_queries):
    world.team.last_position = "SRID=4326;POINT(121.5 31.2)"
    world.team.save()
    login(client, world.users[User.Role.WALL])
    # session, user, district, SAVEPOINT, SET LOCAL, the teams, RELEASE
    with django_assert_num_queries(7):
        data = client.get("/wall/snapshot.json?only=teams").json()
    team = world.team
    assert data["teams"] == [[team.pk, "PT-A", "甲队", team.status, 31.2, 121.5]]  # PT-B has no position


def test_wall_snapshot_is_compressed_for_browsers(client, world):
    # Enough body that gzip pays off even with Django's random (BREACH) filename padding of up to 100 bytes.
    CameraFactory.create_batch(30, district=world.district)
    login(client, world.users[User.Role.WALL])
    response = client.get("/wall/snapshot.json", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200 and response["Content-Encoding"] == "gzip"


def test_every_page_gets_the_case_states_from_the_server(client, world):
    from gridmgmt.states import states_describe

    pages = {
        "/report/": None,
        "/report/track/X": None,
        "/patrol/": "patrol",
        "/wall/": "wall",
        "/dispatch/": "dispatcher",
    }
    for path, username in pages.items():
        client.logout()
        if username:
            login(client, User.objects.get(username=username))
        states = config_of(client.get(path).content.decode())["states"]
        assert states == json.loads(json.dumps(states_describe())), path
    assert "handling" in states["open"] and "closed" not in states["open"]
    assert states["labels"]["sent_back"] == "已退单"


def test_dispatch_queues_and_patrol_tasks_follow_the_rules(client, world):
    html = login(client, world.users[User.Role.DISPATCHER]).get("/dispatch/").content.decode()
    options = re.findall(r'role="tab" data-statuses="([a-z_,]+)" data-label="([^"]+)"', html)
    assert options == [
        ("reported", "待立案"),
        ("filed,sent_back", "待派遣"),
        ("dispatched,handling", "处置中"),
        ("handled", "待核查"),
        ("checked", "待结案"),
        ("parked", "挂账"),
        ("reported,filed,dispatched,sent_back,handling,handled,checked,parked", "全部在办"),
    ]
    client.logout()
    config = config_of(login(client, world.users[User.Role.PATROL]).get("/patrol/").content.decode())
    assert config["tasks"] == "reported,dispatched,handling"
    assert config_of(client.get("/report/track/X").content.decode())["feedback"] == ["closed"]


def test_pages_carry_no_role_and_no_workflow_labels(client, world, settings):
    login(client, world.users[User.Role.SHIFT_LEADER])
    config = config_of(client.get("/dispatch/").content.decode())
    assert set(config["user"]) == {"id", "name"}  # no role: the server says what this user may do
    messages = config["messages"]
    assert not {k for k in messages if k.startswith("act_")}
    assert not {"accept", "send_back", "handle", "self_handle", "dispatch", "arbitrate", "merge"} & set(messages)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    en = config_of(client.get("/dispatch/").content.decode())
    assert en["messages"]["extension_pending"] == "Extension pending"
    assert en["states"]["labels"]["handling"] != "处置中"


# A role or a status as a string literal in the browser's code: "dispatcher", 'sent_back', `handling`, or a
# comma-separated list of them ("filed,sent_back"). The words are the models' own values.
def _role_and_status_words() -> set[str]:
    return set(User.Role.values) | set(Case.Status.values)


LITERAL = re.compile(r"""(["'`])((?:(?!\1)[^\\\n])*)\1""")
# The realtime client's connection states (realtime/PROTOCOL.md) are not case statuses.
ALLOWED = {("realtime.js", "closed")}
TABLES = re.compile(r"\b(DISPATCHERS|LEADERS|CHECKERS|ACTIONS|OPEN_SET)\b|\.role\b")


def js_rule_literals(text: str, name: str = "") -> list[str]:
    words = _role_and_status_words()
    found = []
    for m in LITERAL.finditer(text):
        literal = m.group(2)
        tokens = [tok for tok in re.split(r"[,\s]+", literal) if tok]
        if tokens and any(tok in words for tok in tokens) and (len(tokens) == 1 or "," in literal):
            if (name, literal) not in ALLOWED:
                found.append(literal)
    return found + [m.group(0) for m in TABLES.finditer(text)]


def test_the_rule_scanner_catches_what_it_should():
    assert js_rule_literals('const A = ["dispatcher", "admin"]; p.status === "handling"') == [
        "dispatcher",
        "admin",
        "handling",
    ]
    assert js_rule_literals("x = 'reported,filed,sent_back'; DISPATCHERS.includes(me.role)") == [
        "reported,filed,sent_back",
        "DISPATCHERS",
        ".role",
    ]
    assert js_rule_literals('h("li", {"data-light": p.light}); $("reported-at"); `${p.code} · reported`') == []


def test_static_js_holds_no_role_name_and_no_status_list():
    from django.conf import settings

    files = sorted((settings.BASE_DIR / "static" / "js").rglob("*.js"))
    assert len(files) >= 7
    found = {}
    for path in files:
        hits = js_rule_literals(path.read_text(encoding="utf-8"), path.name)
        if hits:
            found[str(path.relative_to(settings.BASE_DIR))] = hits
    assert found == {}


def test_page_scripts_are_modules_without_a_global_namespace(client, world):
    from django.conf import settings

    for path in sorted((settings.BASE_DIR / "static" / "js").rglob("*.js")):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"window\.(GM|GridRealtime)\b|\bGM\.", text), path
        assert not re.search(r"[\u4e00-\u9fff]", text), path  # no hard-coded Chinese: messages come translated
    login(client, world.users[User.Role.WALL])
    html = client.get("/wall/").content.decode()
    assert '<script type="module" src="/static/js/faces/wall.js">' in html
    assert "common.js" not in html and "GridRealtime" not in html  # the modules import what they use


def test_patrol_worker_is_versioned_by_the_static_files(client, world, settings, tmp_path):
    """A deploy reaches phones: the worker's cache name is a digest of the static files, so a changed file
    changes the worker (and its activation drops the old cache); the page is looked up ignoring Vary."""
    from gridmgmt.faces.views import static_version

    login(client, world.users[User.Role.PATROL])
    sw = client.get("/patrol/sw.js").content.decode()
    assert f'const CACHE = "gridmgmt-patrol-{static_version()}";' in sw
    assert "ignoreVary: true" in sw
    settings.STATICFILES_DIRS = [tmp_path]
    (tmp_path / "app.js").write_text("1")
    before = static_version()
    (tmp_path / "app.js").write_text("22")
    assert static_version() != before
    assert re.fullmatch(r"[0-9a-f]{12}", before)


def test_wall_area_labels_name_streets_and_communities_in_the_page_language(client, django_assert_num_queries):
    from django.contrib.gis.geos import GEOSGeometry

    from tests.world import world_with_levels_build

    w = world_with_levels_build()
    w.street.name_en = "Lujiazui Subdistrict"
    w.street.save(update_fields=["name_en"])
    login(client, w.users[User.Role.WALL])
    with django_assert_num_queries(7):  # session, user, district; SAVEPOINT, SET LOCAL, the labels, RELEASE
        with_labels = client.get("/wall/snapshot.json?only=areas").json()["areas"]
    assert [(level, name) for _lat, _lon, level, name in with_labels] == [
        ("community", "梅园社区"),
        ("street", "陆家嘴街道"),
    ]
    lat, lon = with_labels[1][:2]
    assert w.street.boundary.contains(GEOSGeometry(f"SRID=4326;POINT({lon} {lat})"))  # inside the area
    english = client.get("/wall/snapshot.json?only=areas", HTTP_ACCEPT_LANGUAGE="en").json()["areas"]
    assert [name for *_rest, name in english] == ["梅园社区", "Lujiazui Subdistrict"]  # no name_en: the name


def test_wall_alerts_list_escalated_and_urgent_open_cases_and_offline_cameras(client, world, django_assert_num_queries):
    from geo.models import Camera

    now = timezone.now()
    high = CaseFactory(cell=world.cells[1], category=world.category, status=Case.Status.DISPATCHED, level=2)
    low = CaseFactory(cell=world.cells[2], category=world.category, status=Case.Status.DISPATCHED, level=1)
    CaseFactory(cell=world.cells[3], category=world.category, status=Case.Status.CLOSED, level=3, closed_at=now)
    urgent = CaseFactory(cell=world.cells[4], category=world.category, urgency=Case.Urgency.URGENT)
    CaseFactory(cell=world.cells[4], category=world.category)  # normal, at grid level: no alert
    CameraFactory(cell=world.cells[0])
    silent = CameraFactory(cell=world.cells[5], status=Camera.Status.OFFLINE, last_seen_at=now - timedelta(hours=2))
    login(client, world.users[User.Role.WALL])
    # session, user, district; then SAVEPOINT, SET LOCAL, a count and the first rows of each list, RELEASE
    with django_assert_num_queries(12):
        alerts = client.get("/wall/snapshot.json?only=alerts").json()["alerts"]
    assert alerts["escalated"]["count"] == 2
    assert [(r["code"], r["level"]) for r in alerts["escalated"]["rows"]] == [(high.code, 2), (low.code, 1)]
    assert alerts["urgent"]["count"] == 1 and alerts["urgent"]["rows"][0]["code"] == urgent.code
    assert alerts["urgent"]["rows"][0]["light"] == "none" and alerts["urgent"]["rows"][0]["category"] == "乱堆物堆料"
    assert alerts["cameras"]["count"] == 1
    assert [(c["code"], c["name"]) for c in alerts["cameras"]["rows"]] == [(silent.code, silent.name)]
