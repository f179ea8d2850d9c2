"""Real-time fixtures: a small world with two streets, live uvicorn servers on the test database, and a
WebSocket "screen" that waits for messages with a timeout (never a fixed sleep)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from geo.models import AdminArea, GridCell
from gridmgmt.models import User
from gridmgmt.services import case_report
from tests.factories import UserFactory
from tests.live import Uvicorn, uvicorn_start
from tests.world import World, world_build

# Servers in tests: fast polls, small limits, a short heartbeat.
SERVER_ENV = {"RT_POLL_SECONDS": "2", "RT_REPLAY_MAX": "150", "RT_HEARTBEAT_SECONDS": "1", "RT_MAX_SCOPES": "3"}


@dataclass
class StreetWorld:
    world: World
    street_a: AdminArea
    street_b: AdminArea
    users: dict[str, User]

    def report(self, street: str = "a", **kw):
        """A resident's report in street a (cells 0–2) or b (cells 3–8), committed."""
        cell = 0 if street == "a" else 5
        lon, lat = self.world.centre(cell)
        case, _ = case_report(source="resident", category_code="E0404", lon=lon, lat=lat, **kw)
        return case


def streets_build() -> StreetWorld:
    world = world_build()
    district = world.district
    a = AdminArea.objects.create(
        code=f"{district.code}001",
        name="甲街道",
        level=AdminArea.Level.STREET,
        parent=district,
        boundary=district.boundary,
        area_m2=1,
    )
    b = AdminArea.objects.create(
        code=f"{district.code}002",
        name="乙街道",
        level=AdminArea.Level.STREET,
        parent=district,
        boundary=district.boundary,
        area_m2=1,
    )
    ids = [c.id for c in world.cells]
    GridCell.objects.filter(id__in=ids[:3]).update(street=a)
    GridCell.objects.filter(id__in=ids[3:]).update(street=b)
    world.team.street = a
    world.team.save(update_fields=["street"])
    users = {
        "wall": world.users["wall"],  # unrestricted
        "street_a": UserFactory(username="disp_a", role=User.Role.DISPATCHER, area=a),
        "street_b": UserFactory(username="disp_b", role=User.Role.DISPATCHER, area=b),
        "patrol": world.users["patrol"],
        "other_patrol": world.users["other_patrol"],
        "resident": world.users["resident"],
    }
    return StreetWorld(world, a, b, users)


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


@dataclass
class Screen:
    """One WebSocket client. `events()` checks every frame as it comes: seq strictly increasing."""

    ws: object
    frames: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    last: dict[str, int] = field(default_factory=dict)  # scope → last seq seen

    def send(self, **message) -> None:
        self.ws.send(json.dumps(message))

    def recv(self, timeout: float = 10.0) -> dict:
        message = json.loads(self.ws.recv(timeout=timeout))
        self.frames.append(message)
        if message.get("t") == "events":
            scope = message["scope"]
            for env in message["events"]:
                assert env["seq"] > self.last.get(scope, 0), f"seq went back or repeated in {scope}: {env['seq']}"
                self.last[scope] = env["seq"]
                assert set(env) == {"seq", "type", "at", "data"}
                self.events.append({**env, "scope": scope})
        return message

    def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 10.0) -> dict:
        """The first frame that matches, waiting at most `timeout` seconds in all."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching frame within {timeout} s; got {self.frames[-5:]}")
            message = self.recv(timeout=left)
            if predicate(message):
                return message

    def wait_events(self, predicate: Callable[[list[dict]], bool], timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while not predicate(self.events):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"events incomplete after {timeout} s: {len(self.events)} received")
            try:
                self.recv(timeout=left)
            except TimeoutError:
                continue
        return self.events

    def subscribe(self, scope: str, last: int | None = None) -> dict:
        self.send(op="subscribe", scope=scope, last=last)
        return self.wait_for(lambda m: m.get("scope") == scope and m["t"] in {"subscribed", "reload", "error"})

    def close(self) -> None:
        self.ws.close()

    def closed_with(self, timeout: float = 10.0):
        """Wait for the server to close the socket; returns the close frame (code, reason)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.recv(timeout=deadline - time.monotonic())
        except ConnectionClosed as exc:
            return exc.rcvd
        raise TimeoutError("socket still open")


def screen_open(server: Uvicorn, user: User | None, *, origin: str | None = None) -> Screen:
    headers = {"Cookie": session_cookie(user)} if user is not None else {}
    ws = connect(
        server.ws_url + "/ws/feed/",
        origin=origin or server.url,
        additional_headers=headers,
        compression=None,
        open_timeout=10,
        ping_interval=None,  # the server's heartbeat is what we test; no client pings after close
        legacy=True,  # a plain connection, not a context manager
    )
    screen = Screen(ws)
    assert screen.recv()["t"] == "hello"
    return screen


@pytest.fixture(autouse=True)
def hub_reader_released() -> Iterator[None]:
    """The hub reads the log on a thread that keeps its database connection: close it after each in-process
    test, or the test database could not be dropped at the end."""
    yield
    from realtime.hub import read

    read.release(wait=True)


@pytest.fixture(scope="module")
def live(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Uvicorn]:
    from django.db import connection

    server = uvicorn_start(
        settings_dict=connection.settings_dict, log_dir=tmp_path_factory.mktemp("uvicorn"), env=SERVER_ENV
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def streets(transactional_db) -> StreetWorld:
    return streets_build()
