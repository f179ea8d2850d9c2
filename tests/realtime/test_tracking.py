"""Tracking devices: golden requests of the OsmAnd protocol (`/track/osmand`, as Traccar's server reads it) and
the position history partitioned by day (realtime/positions.py), on the real PostgreSQL, the clock frozen
with time_machine."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
import time_machine
from asgiref.sync import async_to_sync
from django.core import signals
from django.core.management import call_command
from django.db import close_old_connections, connection
from django.test import Client

from gridmgmt.models import PatrolTeam
from realtime import positions
from realtime.models import Device, FeedEvent, Position
from realtime.services import team_position_report
from realtime.tracking import KNOT_MPS
from tests.realtime.conftest import streets_build

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 24, 10, 0, 0, tzinfo=SH)
FIX = NOW - timedelta(seconds=30)  # the fix's time in every golden request
URL = "/track/osmand"


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def world(frozen):
    streets = streets_build()
    patrol = streets.users["patrol"]
    device = Device.objects.create(user=patrol, kind=Device.Kind.TRACKER, identifier="demo-patrol")
    return streets.world, patrol, device


def _rows():
    return list(Position.objects.order_by("at"))


def _lonlat(world):
    return world.centre(4)


def _golden(world):
    lon, lat = _lonlat(world)
    seconds = int(FIX.timestamp())
    query = {"id": "demo-patrol", "lat": lat, "lon": lon, "speed": 10, "bearing": 90, "altitude": 5, "batt": 80}
    return {
        "GET query": ("get", {**query, "timestamp": seconds}, None),
        "POST form": ("post", {**query, "timestamp": seconds}, None),
        "deviceid alias": (
            "get",
            {**{k: v for k, v in query.items() if k != "id"}, "deviceid": "demo-patrol", "timestamp": seconds},
            None,
        ),
        "timestamp in ms": ("get", {**query, "timestamp": seconds * 1000}, None),
        "timestamp ISO": ("get", {**query, "timestamp": FIX.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}, None),
        "Traccar JSON": (
            "json",
            {
                "device_id": "demo-patrol",
                "location": {
                    "timestamp": FIX.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                    "coords": {
                        "latitude": lat,
                        "longitude": lon,
                        "speed": 10 * KNOT_MPS,
                        "heading": 90,
                        "altitude": 5,
                        "accuracy": 4,
                    },
                    "is_moving": True,
                    "battery": {"level": 0.8, "is_charging": False},
                },
            },
            None,
        ),
    }


class AsgiClient:
    """Requests through `gridmgmt.asgi.application` — the ASGI app uvicorn runs, so /track/osmand's fast path
    (realtime/track_asgi.py) — in this thread and so in the test's transaction; `django.test.Client`'s
    interface as far as these tests use it. A form POST is url-encoded, as trackers send it."""

    def _call(self, method, query=None, body=b"", content_type=None, extra=()):
        from gridmgmt.asgi import application

        headers = [(b"host", b"testserver"), *extra]
        if method != "GET":
            headers += [(b"content-length", str(len(body)).encode())]
        if content_type:
            headers += [(b"content-type", content_type.encode())]
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": URL, "raw_path": URL.encode(), "query_string": urlencode(query or {}, doseq=True).encode(),
            "headers": headers, "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
        }  # fmt: skip
        sent, messages = [], [{"type": "http.request", "body": body, "more_body": False}]

        async def receive():
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # no disconnect: the app answers first

        async def send(message):
            sent.append(message)

        # as django.test.Client does: the test's transaction must survive Django's end-of-request close
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        try:
            async_to_sync(application)(scope, receive, send)
        finally:
            signals.request_started.connect(close_old_connections)
            signals.request_finished.connect(close_old_connections)
        start = sent[0]
        return SimpleNamespace(
            status_code=start["status"],
            headers={k.decode(): v.decode() for k, v in start["headers"]},
            content=b"".join(m.get("body", b"") for m in sent[1:]),
        )

    def get(self, url, data=None):
        return self._call("GET", query=data)

    def post(self, url, data=None, content_type=None):
        if content_type is None:
            return self._call("POST", body=urlencode(data, doseq=True).encode(), content_type=FORM)
        return self._call("POST", body=data.encode(), content_type=content_type)

    def put(self, url):
        return self._call("PUT")


FORM = "application/x-www-form-urlencoded"


@pytest.fixture(params=["django", "asgi"])
def client(request):
    """Each golden request through Django's view and through the ASGI fast path: same answers, same rows."""
    return Client(enforce_csrf_checks=True) if request.param == "django" else AsgiClient()


def _send(client: Client, method: str, data):
    if method == "get":
        return client.get(URL, data)
    if method == "post":
        return client.post(URL, data)
    return client.post(URL, json.dumps(data) if not isinstance(data, str) else data, content_type="application/json")


@pytest.mark.parametrize(
    "form", ["GET query", "POST form", "deviceid alias", "timestamp in ms", "timestamp ISO", "Traccar JSON"]
)
def test_each_accepted_form_stores_exactly_one_fix(world, form, client):
    w, patrol, device = world
    method, data, _ = _golden(w)[form]
    response = _send(client, method, data)
    assert response.status_code == 200 and response.content == b""
    rows = _rows()
    assert len(rows) == 1
    row = rows[0]
    lon, lat = _lonlat(w)
    assert (row.device_id, row.user_id, row.team_id) == (device.id, patrol.id, w.team.id)
    assert row.at == FIX
    assert row.point.x == pytest.approx(lon, abs=1e-9) and row.point.y == pytest.approx(lat, abs=1e-9)
    assert row.speed == pytest.approx(10 * 1852 / 3600, rel=1e-3)  # 10 kn (form) = 5.144 m/s (JSON)
    assert row.course == 90 and row.altitude == 5
    assert row.battery == pytest.approx(80)
    device.refresh_from_db()
    assert device.last_seen_at == NOW
    # The wall moves: the member's team has the fix as its live position, with its feed row.
    team = PatrolTeam.objects.get(pk=w.team.id)
    assert team.last_position_at == FIX and team.last_position.x == pytest.approx(lon)
    feed = FeedEvent.objects.filter(type="team.position", team_id=w.team.id).get()
    assert feed.data["lon"] == round(lon, 6)


def test_location_field_and_unknown_values(world, client):
    w, *_ = world
    lon, lat = _lonlat(w)
    # OsmAnd's `location=lat,lon`; no timestamp means now.
    assert client.get(URL, {"id": "demo-patrol", "location": f"{lat},{lon}"}).status_code == 200
    # Traccar Client's -1 means unknown: nothing is stored for it.
    body = {
        "device_id": "demo-patrol",
        "location": {
            "timestamp": "2026-11-24T01:59:00Z",
            "coords": {"latitude": lat, "longitude": lon, "speed": -1, "heading": -1, "accuracy": -1, "altitude": 0},
            "battery": {"level": -1},
        },
    }
    assert _send(client, "json", body).status_code == 200
    first, second = _rows()
    assert first.at == datetime(2026, 11, 24, 1, 59, tzinfo=UTC)
    assert (first.speed, first.course, first.accuracy, first.battery) == (None, None, None, None)
    assert second.at == NOW and second.point.y == pytest.approx(lat)


def test_the_same_fix_sent_twice_is_stored_once(world, client):
    w, *_ = world
    method, data, _ = _golden(w)["GET query"]
    assert _send(client, method, data).status_code == 200
    assert _send(client, method, data).status_code == 200
    assert len(_rows()) == 1


def _bad_requests(world, patrol):
    lon, lat = _lonlat(world)
    ok = {"id": "demo-patrol", "lat": lat, "lon": lon, "timestamp": int(FIX.timestamp())}
    future = int((NOW + timedelta(seconds=positions.future_seconds() + 60)).timestamp())
    return {
        "unknown id": ("get", {**ok, "id": "nobody"}),
        "missing id": ("get", {k: v for k, v in ok.items() if k != "id"}),
        "lat 91": ("get", {**ok, "lat": 91}),
        "lon abc": ("get", {**ok, "lon": "abc"}),
        "lon nan": ("get", {**ok, "lon": "nan"}),
        "missing lat": ("get", {k: v for k, v in ok.items() if k != "lat"}),
        "timestamp garbage": ("get", {**ok, "timestamp": "yesterday"}),
        "future timestamp": ("get", {**ok, "timestamp": future}),
        "timestamp past year 9999": ("get", {**ok, "timestamp": "9" * 16}),
        "timestamp before 1900": ("get", {**ok, "timestamp": "1800-01-01T00:00:00Z"}),
        "garbage JSON": ("json", "{not json"),
        "JSON without coords": ("json", {"device_id": "demo-patrol", "location": {"timestamp": "2026-11-24T02:00Z"}}),
        "JSON list": ("json", [1, 2]),
    }


@pytest.mark.parametrize(
    "case",
    [
        "unknown id",
        "missing id",
        "lat 91",
        "lon abc",
        "lon nan",
        "missing lat",
        "timestamp garbage",
        "future timestamp",
        "timestamp past year 9999",
        "timestamp before 1900",
        "garbage JSON",
        "JSON without coords",
        "JSON list",
    ],
)
def test_bad_requests_are_400_and_store_nothing(world, case, client):
    w, patrol, _ = world
    method, data = _bad_requests(w, patrol)[case]
    response = _send(client, method, data)
    assert response.status_code == 400
    assert _rows() == []
    assert PatrolTeam.objects.get(pk=w.team.id).last_position_at is None
    assert not FeedEvent.objects.filter(type="team.position").exists()


@pytest.mark.parametrize("how", ["inactive device", "inactive user", "not patrol", "no team", "a phone"])
def test_a_device_that_is_not_an_active_patrol_trackers_is_400(world, how, client):
    w, patrol, device = world
    if how == "inactive device":
        Device.objects.filter(pk=device.pk).update(active=False)
    elif how == "inactive user":
        type(patrol).objects.filter(pk=patrol.pk).update(is_active=False)
    elif how == "not patrol":
        type(patrol).objects.filter(pk=patrol.pk).update(role="dispatcher")
    elif how == "no team":
        type(patrol).objects.filter(pk=patrol.pk).update(team=None)
    else:
        Device.objects.filter(pk=device.pk).update(kind=Device.Kind.PHONE)
    method, data, _ = _golden(w)["GET query"]
    assert _send(client, method, data).status_code == 400
    assert _rows() == []


def test_other_methods_are_405_and_limits_are_429(world, settings, client):
    w, *_ = world
    assert client.put(URL).status_code == 405
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "track_device": "2/min"},
    }
    method, data, _ = _golden(w)["GET query"]
    codes = [_send(client, method, {**data, "timestamp": int(FIX.timestamp()) + i}).status_code for i in range(3)]
    assert codes == [200, 200, 429]
    assert len(_rows()) == 2


def test_an_old_buffered_fix_goes_to_history_only_and_one_past_retention_is_acknowledged(world, client):
    w, *_ = world
    method, data, _ = _golden(w)["GET query"]
    old = NOW - timedelta(hours=3)
    assert _send(client, method, {**data, "timestamp": int(old.timestamp())}).status_code == 200
    assert [r.at for r in _rows()] == [old]
    assert PatrolTeam.objects.get(pk=w.team.id).last_position_at is None  # the team has moved on since
    ancient = NOW - timedelta(days=positions.retention_days() + 2)
    assert _send(client, method, {**data, "timestamp": int(ancient.timestamp())}).status_code == 200
    assert len(_rows()) == 1


def test_phone_positions_enter_the_history_every_one_while_the_team_stays_coalesced(world):
    w, patrol, _ = world
    lon, lat = _lonlat(w)
    assert team_position_report(actor=patrol, lon=lon, lat=lat, at=NOW - timedelta(seconds=20))
    assert not team_position_report(actor=patrol, lon=lon, lat=lat + 1e-4, at=NOW - timedelta(seconds=18))
    phone = Device.objects.get(identifier=positions.phone_identifier(patrol.id))
    assert phone.kind == Device.Kind.PHONE and phone.user_id == patrol.id
    rows = _rows()
    assert [r.device_id for r in rows] == [phone.id, phone.id]
    assert FeedEvent.objects.filter(type="team.position").count() == 1  # the feed keeps its interval rule


def _partition_of(at):
    with connection.cursor() as cur:
        cur.execute("SELECT tableoid::regclass::text FROM realtime_position WHERE at = %s", [at])
        return cur.fetchone()[0]


def test_a_position_lands_in_its_days_partition(world, client):
    w, *_ = world
    method, data, _ = _golden(w)["GET query"]
    late = datetime(2026, 11, 23, 23, 59, 30, tzinfo=SH)  # Shanghai days, not UTC ones
    for at in (FIX, late):
        assert _send(client, method, {**data, "timestamp": int(at.timestamp())}).status_code == 200
    assert _partition_of(FIX) == "realtime_position_p20261124"
    assert _partition_of(late) == "realtime_position_p20261123"


def test_retention_drops_old_partitions_and_keeps_newer_ones(world):
    w, patrol, device = world
    lon, lat = _lonlat(w)
    days = [datetime(2026, 10, 20, 12, tzinfo=SH), datetime(2026, 10, 26, 12, tzinfo=SH), FIX]
    for at in days:
        with time_machine.travel(at, tick=False):
            positions.positions_append(
                device_id=device.id, user_id=patrol.id, team_id=None, fixes=[positions.Fix(lon=lon, lat=lat, at=at)]
            )
    assert len(_rows()) == 3
    report = positions.partitions_maintain(today=NOW.date(), ahead=2, keep_days=30)  # keeps 2026-10-25 on
    assert report.dropped == [datetime(2026, 10, 20).date()]
    assert [r.at for r in _rows()] == days[1:]
    assert {datetime(2026, 11, 24).date() + timedelta(days=n) for n in range(3)} <= set(positions.partitions_list())
    again = positions.partitions_maintain(today=NOW.date(), ahead=2, keep_days=30)
    assert again.created == [] and again.dropped == []


def test_the_commands_maintain_the_partitions(frozen, capsys):
    call_command("positions_partitions", "--ahead", "3")
    assert "created" in capsys.readouterr().out
    have = set(positions.partitions_list())
    assert {NOW.date() + timedelta(days=n) for n in range(4)} <= have
    call_command("realtime_prune", "--days", "7")
    assert "position partitions" in capsys.readouterr().out


def test_trackers_are_registered_in_the_admin(world):
    _, patrol, device = world
    admin_client = Client()
    admin_client.force_login(type(patrol).objects.create_superuser("root", "root@example.org", "x"))
    assert admin_client.get("/admin/realtime/device/").status_code == 200
    assert admin_client.get(f"/admin/realtime/device/{device.pk}/change/").status_code == 200
    response = admin_client.post(
        "/admin/realtime/device/add/",
        {"user": patrol.pk, "kind": "tracker", "identifier": "tracker-2", "active": "on"},
    )
    assert response.status_code == 302
    assert Device.objects.filter(identifier="tracker-2", user=patrol).exists()


def test_requests_arriving_together_are_written_together_and_answered_each(world):
    """The fast path's batch: one flush for all three, each its own answer; the team gets the newest fix."""
    from gridmgmt.asgi import application

    w, *_ = world
    _method, data, _ = _golden(w)["GET query"]
    queries = [
        {**data, "timestamp": int(FIX.timestamp()) - 10},
        {**data, "id": "nobody"},
        {**data, "timestamp": int(FIX.timestamp())},
    ]

    async def one(query):
        sent = []
        scope = {
            "type": "http", "method": "GET", "path": URL, "query_string": urlencode(query).encode(),
            "headers": [], "client": ("127.0.0.1", 50000),
        }  # fmt: skip

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        await application(scope, receive, send)
        return sent[0]["status"], sent[1]["body"]

    async def together():
        return await asyncio.gather(*(one(q) for q in queries))

    assert async_to_sync(together)() == [(200, b""), (400, b"unknown_device"), (200, b"")]
    assert [r.at for r in _rows()] == [FIX - timedelta(seconds=10), FIX]
    assert PatrolTeam.objects.get(pk=w.team.id).last_position_at == FIX
    assert FeedEvent.objects.filter(type="team.position", team_id=w.team.id).count() == 1


def test_the_fast_path_adds_what_the_middleware_adds(world, settings):
    """HSTS on a request the proxy marks secure, the proxy's request id echoed, the same security headers as the
    view's answer (gridmgmt.asgi_headers reads the middleware's settings)."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_SSL_REDIRECT = False
    w, *_ = world
    lon, lat = _lonlat(w)
    query = {"id": "demo-patrol", "lat": lat, "lon": lon}
    view = Client().get(URL, query, headers={"X-Forwarded-Proto": "https", "X-Request-ID": "proxy-id-0002"})
    fast = AsgiClient()._call(
        "GET", query=query, extra=[(b"x-forwarded-proto", b"https"), (b"x-request-id", b"proxy-id-0002")]
    )
    assert (view.status_code, fast.status_code) == (200, 200)
    names = ["Content-Type", "Strict-Transport-Security", "X-Request-ID", "X-Content-Type-Options"]
    names += ["Referrer-Policy", "Cross-Origin-Opener-Policy", "X-Frame-Options"]
    assert {n: fast.headers.get(n.lower()) for n in names} == {n: view.get(n) for n in names}
    assert fast.headers["strict-transport-security"] == "max-age=3600; includeSubDomains"
