"""The production configuration end to end, through nginx over HTTPS (`make prod-check`): a resident reports
with a photo and no account, staff see the photo and an anonymous person only when the public view shows it,
the wall's WebSocket receives the report, static files come gzipped with a year's cache, probes answer, plain
HTTP is redirected, HTTP/2 is offered."""

from __future__ import annotations

import io
import json
import socket
import threading
import time

import pytest
import requests
from PIL import Image
from websockets.sync.client import connect

from gridmgmt.models import Category, User
from tests.factories import CategoryFactory
from tests.world import world_build

pytestmark = [pytest.mark.prod_check, pytest.mark.django_db(transaction=True)]


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 60, 40)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def world():
    world = world_build()
    base = world.category
    CategoryFactory(
        code="E0405",
        name="敏感事项",
        is_sensitive=True,
        parent=base.parent,
        limit_unit=base.limit_unit,
        limit_normal=base.limit_normal,
        limit_urgent=base.limit_urgent,
        urgent_limit_unit=base.urgent_limit_unit,
        dispatch_minutes_normal=base.dispatch_minutes_normal,
        dispatch_minutes_urgent=base.dispatch_minutes_urgent,
        default_department=base.default_department,
    )
    return world


def session(stack, tls) -> requests.Session:
    s = requests.Session()
    s.verify = str(stack.cert)
    s.trust_env = False  # no proxy, no CA bundle from the environment: this run's certificate only
    return s


def login(stack, tls, username: str) -> requests.Session:
    """The login form over HTTPS through nginx: CSRF and secure cookies work behind the proxy."""
    s = session(stack, tls)
    page = s.get(f"{stack.url}/accounts/login/", timeout=10)
    assert page.status_code == 200, page.text[:500]
    token = s.cookies["csrftoken"]
    answer = s.post(
        f"{stack.url}/accounts/login/",
        data={"username": username, "password": "demo1234", "csrfmiddlewaretoken": token},
        headers={"Referer": f"{stack.url}/accounts/login/", "Origin": stack.url},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text[:500]
    assert "sessionid" in s.cookies
    return s


def report(stack, tls, world, category: str) -> dict:
    lon, lat = world.centre(4)
    answer = session(stack, tls).post(
        f"{stack.url}/api/public/reports/",
        data={"category": category, "lon": lon, "lat": lat, "description": "人行道上堆满了建筑垃圾"},
        files=[("photos", ("p.jpg", jpeg(), "image/jpeg"))],
        timeout=20,
    )
    assert answer.status_code == 201, answer.text[:500]
    return answer.json()


class Wall:
    """The wall's feed socket on `all`, collecting frames on a thread."""

    def __init__(self, ws):
        self.ws = ws
        self.frames: list[dict] = []
        assert json.loads(self.ws.recv(timeout=10))["t"] == "hello"
        self.ws.send(json.dumps({"op": "subscribe", "scope": "all", "last": None}))
        while json.loads(self.ws.recv(timeout=10))["t"] != "subscribed":
            pass
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for message in self.ws:
                self.frames.append(json.loads(message))
        except Exception:  # closed
            pass

    def wait_for(self, type_: str, code: str, timeout: float = 15) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for frame in list(self.frames):
                for event in frame.get("events", []):
                    if event["type"] == type_ and event["data"]["code"] == code:
                        return event
            time.sleep(0.05)
        raise AssertionError(f"no {type_} for {code} within {timeout} s; frames: {self.frames}")


def test_production_configuration_end_to_end(stack, tls, world):
    assert User.objects.filter(username="wall", role=User.Role.WALL).exists()
    assert Category.objects.get(code="E0405").is_sensitive
    wall_session = login(stack, tls, "wall")
    with connect(
        f"wss://{stack.url.removeprefix('https://')}/ws/feed/",
        ssl=tls,
        origin=stack.url,
        additional_headers={"Cookie": f"sessionid={wall_session.cookies['sessionid']}"},
        open_timeout=10,
    ) as ws:
        wall = Wall(ws)
        # A resident reports with a photo, no account; the wall hears of it.
        public = report(stack, tls, world, "E0404")
        sensitive = report(stack, tls, world, "E0405")
        event = wall.wait_for("case.created", public["code"])
        assert event["data"]["source"] == "resident"
        wall.wait_for("case.created", sensitive["code"])

    anonymous = session(stack, tls)
    staff = login(stack, tls, "dispatcher")
    public_photo = public["photos"][0]["url"]
    assert public_photo.startswith(f"{stack.url}/media/cases/")
    # The resident's own photo of a public case: anyone, sent by nginx (X-Accel-Redirect, never shown).
    for who in (anonymous, staff):
        answer = who.get(public_photo, timeout=10)
        assert answer.status_code == 200
        assert answer.content.startswith(b"\xff\xd8")
        assert answer.headers["Content-Type"] == "image/jpeg"
        assert answer.headers["Cache-Control"] == "private, max-age=3600"
        assert "X-Accel-Redirect" not in answer.headers
    # A sensitive case does not exist for the public, nor its photo; staff see both.
    assert sensitive["photos"], sensitive
    sensitive_photo = sensitive["photos"][0]["url"]
    assert anonymous.get(sensitive_photo, timeout=10).status_code == 404
    assert staff.get(sensitive_photo, timeout=10).content.startswith(b"\xff\xd8")
    # The internal location answers nobody directly.
    name = public_photo.split("/media/", 1)[1]
    assert staff.get(f"{stack.url}/protected-media/{name}", timeout=10).status_code == 404
    assert anonymous.get(f"{stack.url}/media/../etc/passwd", timeout=10).status_code in (400, 404)

    # A page: DEBUG off, the request id from nginx echoed, HSTS from Django, hashed static names.
    page = anonymous.get(f"{stack.url}/report/", timeout=10)
    assert page.status_code == 200
    assert len(page.headers["X-Request-ID"]) == 32  # nginx's $request_id
    assert page.headers["Strict-Transport-Security"].startswith("max-age=3600")
    manifest = json.loads((stack.static_root / "staticfiles.json").read_text())["paths"]
    hashed = manifest["js/faces/wall.js"]
    assert f"/static/{hashed}" in staff.get(f"{stack.url}/wall/", timeout=10).text

    # Static files: gzip, a year for hashed names, revalidation for source names (modules import those).
    asset = anonymous.get(f"{stack.url}/static/{hashed}", headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert asset.status_code == 200
    assert asset.headers["Content-Encoding"] == "gzip"
    assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert asset.text == (stack.static_root / hashed).read_text()
    source = anonymous.get(f"{stack.url}/static/js/faces/wall.js", timeout=10)
    assert source.headers["Cache-Control"] == "public, no-cache"
    assert "../realtime.js" in source.text  # why: a module imported by its source name

    # Probes from inside, over HTTPS and over plain HTTP (not redirected); the rest of HTTP goes to HTTPS.
    assert anonymous.get(f"{stack.url}/healthz", timeout=10).status_code == 200
    assert anonymous.get(f"{stack.http_url}/healthz", timeout=10).status_code == 200
    metrics = anonymous.get(f"{stack.url}/metrics", timeout=10)
    assert metrics.status_code == 200 and "django_http_requests" in metrics.text
    redirect = anonymous.get(f"{stack.http_url}/report/?x=1", allow_redirects=False, timeout=10)
    assert redirect.status_code == 301
    assert redirect.headers["Location"] == f"{stack.url}/report/?x=1"

    # HTTP/2 offered (ALPN) with TLS 1.2+.
    tls.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", stack.https_port), timeout=5) as raw:
        with tls.wrap_socket(raw, server_hostname="localhost") as conn:
            assert conn.selected_alpn_protocol() == "h2"
            assert conn.version() in ("TLSv1.2", "TLSv1.3")

    # nginx logged the request id and no query string (tracking tokens travel there).
    access = (stack.base / "nginx" / "logs" / "access.log").read_text()
    assert page.headers["X-Request-ID"] in access
    assert "x=1" not in access
