"""The consumer alone, through an in-process ASGI WebSocket communicator and the in-memory layer (unit tests only).

Not `channels.testing.WebsocketCommunicator`: importing `channels.testing` imports its live-server test case,
which needs daphne and Twisted — a whole second ASGI server for nothing. `WebsocketCommunicator` below is the
part of it these tests use, on asgiref's `ApplicationCommunicator` (as Channels' own is).
"""

import asyncio
import json
from unittest import mock

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from django.contrib.auth.models import AnonymousUser

from realtime.consumers import FeedConsumer
from realtime.hub import hub
from tests.realtime.conftest import streets_build

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    yield
    channel_layers.backends.clear()


def _no_op():
    pass


class WebsocketCommunicator(ApplicationCommunicator):
    """Drives a WebSocket ASGI app in process: connect, send/receive text frames, disconnect."""

    def __init__(self, application, path: str):
        super().__init__(application, {"type": "websocket", "path": path, "query_string": b"", "headers": []})

    # Like Channels' communicator: database_sync_to_async must not close the test's connections.
    async def send_input(self, message):
        with mock.patch("channels.db.close_old_connections", _no_op):
            return await super().send_input(message)

    async def receive_output(self, timeout=1):
        with mock.patch("channels.db.close_old_connections", _no_op):
            return await super().receive_output(timeout)

    async def connect(self, timeout=1) -> tuple[bool, object]:
        """(True, subprotocol) when accepted, (False, close code) when refused."""
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(timeout)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        assert response["type"] == "websocket.accept", response
        return True, response.get("subprotocol")

    async def send_to(self, *, text_data: str):
        await self.send_input({"type": "websocket.receive", "text": text_data})

    async def send_json_to(self, data):
        await self.send_to(text_data=json.dumps(data))

    async def receive_json_from(self, timeout=1):
        response = await self.receive_output(timeout)
        assert response["type"] == "websocket.send" and isinstance(response.get("text"), str), response
        return json.loads(response["text"])

    async def disconnect(self, code=1000, timeout=1):
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)


def communicator(user) -> WebsocketCommunicator:
    com = WebsocketCommunicator(FeedConsumer.as_asgi(), "/ws/feed/")
    com.scope["user"] = user
    return com


async def until(predicate, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def test_anonymous_is_refused(memory_layer):
    async def run():
        connected, _ = await communicator(AnonymousUser()).connect()
        assert not connected

    asyncio.run(run())


def test_a_closed_connection_leaves_its_scope_feeds(memory_layer):
    streets = streets_build()
    wall = streets.users["wall"]

    async def run():
        screens = [communicator(wall) for _ in range(2)]
        for com in screens:
            assert (await com.connect())[0]
            assert (await com.receive_json_from())["t"] == "hello"
            await com.send_json_to({"op": "subscribe", "scope": "all", "last": None})
            assert (await com.receive_json_from())["t"] == "subscribed"
        assert len(hub.feeds["all"].members) == 2
        await screens[0].disconnect()
        await until(lambda: len(hub.feeds["all"].members) == 1)
        await screens[1].send_json_to({"op": "unsubscribe", "scope": "all"})
        assert (await screens[1].receive_json_from())["t"] == "unsubscribed"
        await until(lambda: "all" not in hub.feeds)  # the feed's task ends with its last member
        await screens[1].disconnect()

    asyncio.run(run())


def test_bad_messages_get_an_error_not_a_close(memory_layer):
    streets = streets_build()

    async def run():
        com = communicator(streets.users["wall"])
        await com.connect()
        await com.receive_json_from()
        await com.send_to(text_data="not json")
        assert (await com.receive_json_from())["code"] == "bad_message"
        await com.send_json_to({"op": "explode"})
        assert (await com.receive_json_from())["code"] == "bad_op"
        await com.send_json_to({"op": "subscribe", "scope": "all", "last": -3})
        assert (await com.receive_json_from())["code"] == "bad_seq"
        await com.disconnect()

    asyncio.run(run())


# --- issue 9: malformed frames, the session re-checked on every heartbeat -------------------------------


async def _open(user):
    com = communicator(user)
    assert (await com.connect())[0]
    assert (await com.receive_json_from())["t"] == "hello"
    return com


def test_malformed_frames_get_an_error_and_leave_the_socket_working(memory_layer, settings):
    """`team:²` (isdigit() but not int()), an impossible date, non-ASCII digits, a seq past bigint, JSON
    nested too deep or with a 5,000-digit number: each gets an `error` frame, never a dead consumer."""
    settings.RT_MAX_INBOUND_PER_SECOND = 100
    streets = streets_build()
    patrol = streets.users["patrol"]
    team = streets.world.team.id

    async def run():
        com = await _open(patrol)
        cases = [
            ({"op": ["subscribe"]}, "bad_op"),
            ({"op": "subscribe", "scope": "team:²", "last": None}, "bad_scope"),
            ({"op": "subscribe", "scope": "team:١٢", "last": None}, "bad_scope"),
            ({"op": "subscribe", "scope": "team:" + "9" * 30, "last": None}, "bad_scope"),
            ({"op": "unsubscribe", "scope": "street:³"}, "bad_scope"),
            ({"op": "subscribe", "scope": f"team:{team}", "last": 2**80}, "bad_seq"),
            ({"op": "position", "lon": 121.5, "lat": 31.2, "at": "2026-13-01T00:00:00"}, "bad_datetime"),
            ({"op": "position", "lon": 121.5, "lat": 31.2, "at": "garbage"}, "bad_datetime"),
            ({"op": "position", "lon": 121.5, "lat": 31.2, "at": "２０２６-11-01T00:00:00Z"}, "bad_datetime"),
            ({"op": "position", "lon": 121.5, "lat": 31.2, "at": "2026-11-01T00:00:00"}, "bad_datetime"),  # naive
            ({"op": "position", "lon": 121.5, "lat": 31.2, "at": "9999-12-31T23:59:59-23:59"}, "out_of_range"),
            ({"op": "position", "lon": 121.5, "lat": 31.2, "at": 12}, "bad_datetime"),
        ]
        for message, code in cases:
            await com.send_json_to(message)
            reply = await com.receive_json_from()
            assert (reply["t"], reply["code"]) == ("error", code), (message, reply)
        for text in ("[" * 60_000, '{"op": "ping", "ref": ' + "9" * 5000 + "}"):
            await com.send_to(text_data=text)
            assert (await com.receive_json_from())["code"] == "bad_message"
        await com.send_json_to({"op": "subscribe", "scope": f"team:{team}", "last": None})
        assert (await com.receive_json_from())["t"] == "subscribed"  # still alive, and useful
        await com.send_json_to({"op": "ping", "ref": 7})
        assert await com.receive_json_from() == {"t": "pong", "ref": 7}
        await com.disconnect()
        await until(lambda: f"team:{team}" not in hub.feeds)

    asyncio.run(run())


def test_an_oversized_frame_closes_with_1009_and_leaves_its_feeds(memory_layer):
    streets = streets_build()

    async def run():
        com = await _open(streets.users["wall"])
        await com.send_json_to({"op": "subscribe", "scope": "all", "last": None})
        assert (await com.receive_json_from())["t"] == "subscribed"
        await com.send_to(text_data=json.dumps({"op": "ping", "ref": "x" * (64 * 1024)}))
        closed = await com.receive_output()
        assert (closed["type"], closed["code"]) == ("websocket.close", 1009)
        await until(lambda: "all" not in hub.feeds)
        await com.disconnect()

    asyncio.run(run())


def test_a_deactivated_account_is_closed_within_one_heartbeat(memory_layer, settings):
    settings.RT_HEARTBEAT_SECONDS = 0.2
    streets = streets_build()
    wall = streets.users["wall"]

    async def run():
        com = await _open(wall)
        await com.send_json_to({"op": "subscribe", "scope": "all", "last": None})
        assert (await com.receive_json_from())["t"] == "subscribed"
        assert (await com.receive_json_from())["t"] == "hb"  # still allowed: the beat goes on
        await database_sync_to_async(type(wall).objects.filter(pk=wall.pk).update)(is_active=False)
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            out = await com.receive_output(timeout=1)
            if out["type"] == "websocket.close":
                break
        assert out["code"] == 4003
        assert loop.time() - started <= 0.2 + 0.3  # one heartbeat, and a little
        await until(lambda: "all" not in hub.feeds)
        await com.disconnect()

    asyncio.run(run())


def test_a_scope_no_longer_allowed_is_dropped_at_the_next_heartbeat(memory_layer, settings):
    settings.RT_HEARTBEAT_SECONDS = 0.2
    streets = streets_build()
    dispatcher = streets.users["street_a"]
    street_a = f"street:{streets.street_a.id}"

    async def run():
        com = await _open(dispatcher)
        await com.send_json_to({"op": "subscribe", "scope": street_a, "last": None})
        assert (await com.receive_json_from())["t"] == "subscribed"
        moved = {"area": streets.street_b}
        await database_sync_to_async(type(dispatcher).objects.filter(pk=dispatcher.pk).update)(**moved)
        reply = await com.receive_json_from(timeout=1)
        assert (reply["t"], reply["code"], reply["scope"]) == ("error", "not_found", street_a)
        await until(lambda: street_a not in hub.feeds)
        assert (await com.receive_json_from(timeout=1))["t"] == "hb"  # the socket itself stays
        await com.disconnect()

    asyncio.run(run())
