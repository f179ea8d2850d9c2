"""The consumer alone, through Channels' WebsocketCommunicator and the in-memory layer (unit tests only)."""

import asyncio

import pytest
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
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
