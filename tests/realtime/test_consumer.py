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
