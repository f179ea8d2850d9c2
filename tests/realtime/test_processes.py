"""Several server processes on one Redis, and Redis stopped and restarted under a stream of reports."""

import json
import urllib.request

import pytest
from channels.layers import channel_layers
from rest_framework.authtoken.models import Token

from gridmgmt.models import Case
from realtime.models import FeedEvent
from tests.live import RedisServer, uvicorn_start
from tests.realtime.conftest import SERVER_ENV, screen_open

pytestmark = pytest.mark.django_db(transaction=True)


def post_case(server, *, token: str, lon: float, lat: float, description: str) -> dict:
    body = {"category": "E0404", "lon": lon, "lat": lat, "description": description}
    request = urllib.request.Request(
        server.url + "/api/cases/",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        return json.loads(response.read())


@pytest.fixture(scope="module")
def second(django_db_setup, tmp_path_factory):
    from django.db import connection

    server = uvicorn_start(
        settings_dict=connection.settings_dict, log_dir=tmp_path_factory.mktemp("uvicorn-b"), env=SERVER_ENV
    )
    yield server
    server.stop()


def test_report_posted_to_one_process_reaches_a_screen_on_another_and_catch_up_crosses_them(live, second, streets):
    token = Token.objects.create(user=streets.users["patrol"]).key
    on_b = screen_open(second, streets.users["wall"])
    on_b.subscribe("all")
    lon, lat = streets.world.centre(5)
    codes = []
    for i in range(5):
        codes.append(post_case(live, token=token, lon=lon, lat=lat, description=f"A{i}")["properties"]["code"])
    events = on_b.wait_events(lambda evs: len(evs) >= 5)
    assert [e["data"]["code"] for e in events] == codes
    last = events[-1]["seq"]
    on_b.close()

    # Missed while away (posted to B this time), replayed by A.
    missed = [post_case(second, token=token, lon=lon, lat=lat, description=f"B{i}") for i in range(3)]
    missed = [case["properties"]["code"] for case in missed]
    on_a = screen_open(live, streets.users["wall"])
    on_a.last["all"] = last
    assert on_a.subscribe("all", last=last)["replay"] == 3
    assert [e["data"]["code"] for e in on_a.wait_events(lambda evs: len(evs) >= 3)] == missed


@pytest.fixture
def own_redis(tmp_path, settings):
    """A throwaway redis-server for this test only; the test process publishes to it too."""
    redis = RedisServer(tmp_path / "redis.sock")
    redis.start()
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]  # the servers' layer, on this Redis
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": backend, "CONFIG": {"hosts": [redis.url]}}}
    yield redis
    redis.stop()
    channel_layers.backends.clear()


def test_redis_stopped_and_restarted_mid_stream_loses_nothing(own_redis, streets, tmp_path):
    from django.db import connection

    env = {**SERVER_ENV, "REDIS_URL": own_redis.url}
    server = uvicorn_start(settings_dict=connection.settings_dict, log_dir=tmp_path, env=env)
    try:
        screen = screen_open(server, streets.users["wall"])
        head = screen.subscribe("all")["seq"]
        before = [streets.report("a").code for _ in range(3)]
        screen.wait_events(lambda evs: len(evs) >= 3)

        own_redis.stop()
        during = [streets.report("b").code for _ in range(10)]  # every write succeeds with Redis down
        token = Token.objects.create(user=streets.users["patrol"]).key
        lon, lat = streets.world.centre(1)
        via_http = post_case(server, token=token, lon=lon, lat=lat, description="redis down")["properties"]["code"]
        assert Case.objects.filter(code__in=[*during, via_http]).count() == 11

        own_redis.start()
        after = [streets.report("a").code for _ in range(3)]
        stored = list(FeedEvent.objects.filter(seq__gt=head).values_list("seq", flat=True))
        events = screen.wait_events(lambda evs: len(evs) >= len(stored), timeout=30)
        assert [e["seq"] for e in events] == stored
        assert [e["data"]["code"] for e in events] == [*before, *during, via_http, *after]

        # A screen that reconnects now catches up from the log as usual.
        again = screen_open(server, streets.users["wall"])
        assert again.subscribe("all", last=events[2]["seq"])["replay"] == len(stored) - 3
    finally:
        server.stop()
