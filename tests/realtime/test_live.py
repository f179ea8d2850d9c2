"""The feed end to end: a real uvicorn on the test database, the shared Redis, a WebSocket client."""

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.test import Client
from rest_framework.authtoken.models import Token
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from gridmgmt.models import Case
from gridmgmt.services import case_support
from realtime.models import FeedEvent
from tests.realtime.conftest import Screen, screen_open

pytestmark = pytest.mark.django_db(transaction=True)


def http_post(server, path: str, body: dict, *, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_street_screen_gets_its_case_and_never_another_streets(live, streets):
    a = screen_open(live, streets.users["street_a"])
    b = screen_open(live, streets.users["street_b"])
    assert a.subscribe(f"street:{streets.street_a.id}")["t"] == "subscribed"
    assert b.subscribe(f"street:{streets.street_b.id}")["t"] == "subscribed"
    case_b = streets.report("b")
    case_a = streets.report("a")
    got_a = a.wait_events(lambda evs: any(e["data"]["code"] == case_a.code for e in evs))
    got_b = b.wait_events(lambda evs: any(e["data"]["code"] == case_b.code for e in evs))
    assert [e["data"]["code"] for e in got_a] == [case_a.code]
    assert [e["data"]["code"] for e in got_b] == [case_b.code]
    assert got_a[0]["type"] == "case.created"
    assert got_a[0]["data"]["status"] == "reported"


def test_rolled_back_report_is_never_pushed(live, streets):
    s = screen_open(live, streets.users["wall"])
    s.subscribe("all")
    with pytest.raises(RuntimeError), transaction.atomic():
        ghost = streets.report("a", description="rolled back")
        raise RuntimeError("undo")
    real = streets.report("a", description="committed")
    events = s.wait_events(lambda evs: any(e["data"]["code"] == real.code for e in evs))
    assert ghost.code not in {e["data"]["code"] for e in events}
    assert [e["data"]["code"] for e in events] == [real.code]


# --- who may connect and subscribe -------------------------------------------------------------------


def test_anonymous_and_cross_origin_connections_are_refused(live, streets):
    with pytest.raises(InvalidStatus) as anonymous:
        screen_open(live, None)
    assert anonymous.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as foreign:
        screen_open(live, streets.users["wall"], origin="http://evil.example")
    assert foreign.value.response.status_code == 403


def test_scopes_follow_the_access_rules(live, streets):
    w = streets.world
    street_a = screen_open(live, streets.users["street_a"])
    assert street_a.subscribe(f"street:{streets.street_a.id}")["t"] == "subscribed"
    for scope in ("all", f"district:{w.district.id}", f"street:{streets.street_b.id}", "street:999999"):
        reply = street_a.subscribe(scope)
        assert (reply["t"], reply["code"]) == ("error", "not_found"), scope
    assert street_a.subscribe(f"team:{w.team.id}")["t"] == "subscribed"  # the team works in street a
    assert street_a.subscribe(f"team:{w.other_team.id}")["code"] == "not_found"  # no street: district-wide

    patrol = screen_open(live, streets.users["patrol"])
    assert patrol.subscribe(f"team:{w.team.id}")["t"] == "subscribed"
    assert patrol.subscribe(f"team:{w.other_team.id}")["code"] == "not_found"
    assert patrol.subscribe(f"street:{streets.street_a.id}")["code"] == "not_found"

    resident = screen_open(live, streets.users["resident"])
    assert resident.subscribe("all")["code"] == "not_found"
    assert resident.subscribe("nonsense")["code"] == "bad_scope"


def test_a_connection_changes_scope_without_reconnecting(live, streets):
    s = screen_open(live, streets.users["wall"])
    s.subscribe(f"street:{streets.street_a.id}")
    s.send(op="subscribe", scope=f"street:{streets.street_b.id}", last=None, replace=True)
    s.wait_for(lambda m: m["t"] == "subscribed")
    case_a = streets.report("a")
    case_b = streets.report("b")
    events = s.wait_events(lambda evs: any(e["data"]["code"] == case_b.code for e in evs))
    assert case_a.code not in {e["data"]["code"] for e in events}
    assert {e["scope"] for e in events} == {f"street:{streets.street_b.id}"}


# --- order, catch-up, reload ----------------------------------------------------------------------------


def test_concurrent_writers_arrive_in_seq_order_without_gaps(live, streets):
    s = screen_open(live, streets.users["wall"])
    head = s.subscribe("all")["seq"]
    cases = [streets.report("a" if i % 2 else "b") for i in range(4)]

    def support(case):
        try:
            for _ in range(15):
                case_support(case_id=case.id, actor=None)
        finally:
            connection.close()

    threads = [threading.Thread(target=support, args=(c,)) for c in cases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = list(FeedEvent.objects.filter(seq__gt=head).values_list("seq", flat=True))
    assert len(stored) == 4 + 60
    events = s.wait_events(lambda evs: len(evs) >= len(stored))
    assert [e["seq"] for e in events] == stored  # every stored row, in seq (= commit) order, once


def test_reconnect_after_100_missed_events_replays_them_in_order(live, streets):
    s = screen_open(live, streets.users["street_b"])
    scope = f"street:{streets.street_b.id}"
    s.subscribe(scope)
    first = streets.report("b")
    last = s.wait_events(lambda evs: len(evs) == 1)[0]["seq"]
    s.close()

    missed = [streets.report("b").code for _ in range(20)]
    for code in missed[:16]:  # 20 reports + 80 supports = 100 events
        for _ in range(5):
            case_support(case_id=Case.objects.get(code=code).id, actor=None)
    streets.report("a")  # another street: not replayed here
    expected = list(FeedEvent.objects.filter(seq__gt=last, street_id=streets.street_b.id).values_list("seq", flat=True))
    assert len(expected) == 100

    back = screen_open(live, streets.users["street_b"])
    back.last[scope] = last
    reply = back.subscribe(scope, last=last)
    assert (reply["t"], reply["replay"], reply["seq"]) == ("subscribed", 100, expected[-1])
    events = back.wait_events(lambda evs: len(evs) >= 100)
    assert [e["seq"] for e in events] == expected
    assert first.code not in {e["data"]["code"] for e in events}
    live_case = streets.report("b")  # and the live stream goes on after the replay
    events = back.wait_events(lambda evs: evs[-1]["data"]["code"] == live_case.code)
    assert len(events) == 101


def test_too_far_behind_or_unknown_seq_is_told_to_reload(live, streets):
    scope = f"street:{streets.street_a.id}"
    s = screen_open(live, streets.users["street_a"])
    s.subscribe(scope)
    case = streets.report("a")
    last = s.wait_events(lambda evs: len(evs) == 1)[0]["seq"]
    s.close()
    for _ in range(151):  # RT_REPLAY_MAX is 150 on the test server
        case_support(case_id=case.id, actor=None)
    head = FeedEvent.objects.filter(street_id=streets.street_a.id).order_by("-seq").first().seq

    back = screen_open(live, streets.users["street_a"])
    assert back.subscribe(scope, last=last) == {"t": "reload", "scope": scope, "seq": head, "reason": "too_many"}
    assert back.subscribe(scope, last=head + 10**6)["reason"] == "unknown_seq"
    # After a reload the screen is live from the seq it was given.
    newer = streets.report("a")
    assert back.wait_events(lambda evs: len(evs) == 1)[0]["data"]["code"] == newer.code


# --- limits and heartbeat -----------------------------------------------------------------------------


def test_heartbeat_and_ping(live, streets):
    s = screen_open(live, streets.users["wall"])
    s.wait_for(lambda m: m["t"] == "hb", timeout=5)  # RT_HEARTBEAT_SECONDS=1 on the test server
    s.send(op="ping", ref="x1")
    assert s.wait_for(lambda m: m["t"] == "pong")["ref"] == "x1"


def test_oversized_frame_closes_the_socket_with_a_reason(live, streets):
    s = screen_open(live, streets.users["wall"])
    s.ws.send("x" * (64 * 1024 + 1))
    close = s.closed_with()
    # uvicorn's --ws-max-size refuses it first (its own reason); without it the consumer's "frame too large".
    assert close.code == 1009


def test_more_than_ten_messages_a_second_close_the_socket(live, streets):
    s = screen_open(live, streets.users["wall"])
    for i in range(11):
        s.send(op="ping", ref=str(i))
    close = s.closed_with()
    assert (close.code, close.reason) == (1008, "too many messages")


def test_scopes_per_connection_are_bounded(live, streets):
    s = screen_open(live, streets.users["wall"])
    w = streets.world
    for scope in ("all", f"street:{streets.street_a.id}", f"team:{w.team.id}"):
        assert s.subscribe(scope)["t"] == "subscribed"
    assert s.subscribe(f"street:{streets.street_b.id}")["code"] == "too_many_scopes"  # RT_MAX_SCOPES=3


# --- team positions and status ------------------------------------------------------------------------


def test_positions_are_stored_at_most_every_5_s_and_pushed_to_the_team_scope(live, streets):
    w = streets.world
    screen = screen_open(live, streets.users["street_a"])
    screen.subscribe(f"team:{w.team.id}")
    token = Token.objects.create(user=streets.users["patrol"]).key
    lon, lat = w.centre(1)
    first = http_post(live, "/realtime/position/", {"lon": lon, "lat": lat}, token=token)
    second = http_post(live, "/realtime/position/", {"lon": lon + 0.001, "lat": lat}, token=token)
    assert (first, second) == ((202, {"stored": True}), (202, {"stored": False}))
    event = screen.wait_events(lambda evs: len(evs) == 1)[0]
    assert event["type"] == "team.position"
    assert (event["data"]["team"], event["data"]["lon"], event["data"]["lat"]) == ("PT-A", round(lon, 6), round(lat, 6))
    assert http_post(live, "/realtime/position/", {"lon": 500, "lat": lat}, token=token)[0] == 400

    device = screen_open(live, streets.users["patrol"])  # the device may also send over its WebSocket
    device.send(op="position", lon=lon, lat=lat, ref="p1")
    assert device.wait_for(lambda m: m["t"] == "position") == {"t": "position", "stored": False, "ref": "p1"}

    status = http_post(live, f"/realtime/teams/{w.team.id}/status/", {"status": "busy"}, token=token)
    assert status == (200, {"team_id": w.team.id, "status": "busy"})
    event = screen.wait_events(lambda evs: len(evs) == 2)[-1]
    assert (event["type"], event["data"]["status"], event["data"]["from_status"]) == ("team.status", "busy", "on_duty")


# --- issue 9: the session on every heartbeat, exact Origin, the frame limit at the server ------------------


def test_logout_closes_the_open_socket_within_one_heartbeat(live, streets):
    """Before: the socket of a logged-out session kept streaming case events. The live server beats every
    second (SERVER_ENV); the session is read again on each beat."""
    client = Client()
    client.force_login(streets.users["wall"])
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    ws = connect(live.ws_url + "/ws/feed/", origin=live.url, additional_headers={"Cookie": cookie}, legacy=True)
    screen = Screen(ws)
    assert screen.recv()["t"] == "hello"
    screen.subscribe("all")
    case = streets.report("a")
    screen.wait_events(lambda evs: any(e["data"]["code"] == case.code for e in evs))
    client.logout()
    logged_out = time.monotonic()
    closed = screen.closed_with(timeout=5)
    assert (closed.code, closed.reason) == (4003, "session ended")
    assert time.monotonic() - logged_out < 1 + 1  # one heartbeat (1 s) and a margin
    assert not any(e["data"]["code"] != case.code for e in screen.events)
    with pytest.raises(InvalidStatus) as again:
        connect(live.ws_url + "/ws/feed/", origin=live.url, additional_headers={"Cookie": cookie}, legacy=True)
    assert again.value.response.status_code == 403


def test_origin_must_match_scheme_host_and_port(live, streets):
    wall = streets.users["wall"]
    port = int(live.url.rsplit(":", 1)[1])
    for origin in (
        f"http://localhost:{port + 1}",  # before: any port of an allowed host was accepted
        f"http://127.0.0.1:{port + 1}",
        f"https://127.0.0.1:{port}",  # another scheme is another origin
        "http://127.0.0.1",
        "null",
    ):
        with pytest.raises(InvalidStatus) as refused:
            screen_open(live, wall, origin=origin)
        assert refused.value.response.status_code == 403, origin
    screen_open(live, wall, origin=live.url).close()  # the page's own origin


def test_a_frame_over_64_kib_is_refused_by_the_server_not_buffered(live, streets):
    """uvicorn runs with --ws-max-size 65536: a 1 MiB frame closes the socket with 1009."""
    screen = screen_open(live, streets.users["wall"])
    screen.ws.send(json.dumps({"op": "ping", "ref": "x" * (1024 * 1024)}))
    assert screen.closed_with(timeout=10).code == 1009


def test_every_uvicorn_command_caps_frames_at_the_protocol_limit():
    """Makefile demo/serve, the README's commands, the tests' and benchmarks' servers: each uvicorn
    start carries --ws-max-size 65536 (uvicorn's default buffers 16 MiB before our 64 KiB check)."""
    root = Path(__file__).resolve().parents[2]
    starts = []
    for path in ("Makefile", "README.md"):
        starts += [(path, line) for line in (root / path).read_text().splitlines() if "bin/uvicorn " in line]
    scripts = ("tests/live.py", "tests/e2e/conftest.py", "scripts/face_screenshots.py")
    for path in [*sorted((root / "bench").glob("*.py")), *(root / p for p in scripts)]:
        text = path.read_text()
        if '"-m", "uvicorn"' in text:
            starts.append((path.name, text))
    assert len(starts) >= 6
    for where, text in starts:
        assert "--ws-max-size" in text and "65536" in text, where
    assert "--ws-max-size 65536" in (root / "README.md").read_text()
