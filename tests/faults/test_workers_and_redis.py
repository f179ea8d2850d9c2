"""Two faults of the real-time path, against real processes:

- one of two uvicorn workers killed with `kill -9` while it streams to a wall: the wall reconnects to the
  other worker with its `last` and replays exactly what it missed (realtime/PROTOCOL.md, client algorithm);
- Redis stopped (the channel layer's notices and the cache's counters gone): reports — a resident's public
  one, limits and all, and staff's — are written, and the screen still receives them while Redis is down,
  from the feed's poll of the log (RT_POLL_SECONDS), as documented (README, "Faults").
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request

import pytest
from channels.layers import channel_layers
from websockets.exceptions import ConnectionClosed

from gridmgmt import services
from gridmgmt.models import Case
from realtime.models import FeedEvent
from tests.live import RedisServer, uvicorn_start
from tests.realtime.conftest import SERVER_ENV, screen_open

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def test_worker_killed_mid_stream_its_screen_reconnects_to_the_other_and_catches_up(streets, tmp_path):
    from django.db import connection

    other = uvicorn_start(settings_dict=connection.settings_dict, log_dir=tmp_path, env=SERVER_ENV)
    victim = uvicorn_start(settings_dict=connection.settings_dict, log_dir=tmp_path, env=SERVER_ENV)
    try:
        screen = screen_open(victim, streets.users["wall"])
        head = screen.subscribe("all")["seq"]
        before = [streets.report("a").code for _ in range(3)]
        screen.wait_events(lambda evs: len(evs) >= 3)

        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait(timeout=10)
        during = [streets.report("b").code for _ in range(4)]  # written while the screen has no server
        with pytest.raises(ConnectionClosed):
            screen.wait_events(lambda evs: False, timeout=5)

        # Reconnect (to the other worker, as nginx's upstream does when one is gone) with `last`.
        again = screen_open(other, streets.users["wall"])
        again.last["all"] = screen.last["all"]
        assert again.subscribe("all", last=screen.last["all"])["replay"] == 4
        after = [streets.report("a").code for _ in range(2)]
        again.wait_events(lambda evs: len(evs) >= 6)

        seen = screen.events + again.events
        stored = list(FeedEvent.objects.filter(seq__gt=head).order_by("seq").values_list("seq", flat=True))
        assert [e["seq"] for e in seen] == stored  # each row once, in order, none missing
        assert [e["data"]["code"] for e in seen] == [*before, *during, *after]
    finally:
        other.stop()
        victim.stop()


@pytest.fixture
def own_redis(tmp_path, settings):
    redis = RedisServer(tmp_path / "redis.sock")
    redis.start()
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": backend, "CONFIG": {"hosts": [redis.url]}}}
    yield redis
    redis.stop()
    channel_layers.backends.clear()


def public_report(server, *, lon: float, lat: float, key: str) -> tuple[int, dict]:
    body = {"category": "E0404", "lon": lon, "lat": lat, "description": "redis down", "idempotency_key": key}
    headers = {"Content-Type": "application/json"}
    url = server.url + "/api/public/reports/"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_redis_down_writes_succeed_and_screens_fall_back_to_polling(own_redis, streets, tmp_path):
    from django.db import connection

    env = {**SERVER_ENV, "REDIS_URL": own_redis.url}  # the channel layer and the cache (CACHE_URL unset)
    server = uvicorn_start(settings_dict=connection.settings_dict, log_dir=tmp_path, env=env)
    try:
        screen = screen_open(server, streets.users["wall"])
        head = screen.subscribe("all")["seq"]
        lon, lat = streets.world.centre(1)
        assert public_report(server, lon=lon, lat=lat, key="k-up")[0] == 201
        screen.wait_events(lambda evs: len(evs) >= 1)

        own_redis.stop()
        down_at = time.monotonic()
        status, body = public_report(server, lon=lon, lat=lat, key="k-down")
        assert status == 201, body  # limits not counted while Redis is away (fail open), the report stored
        staff = [streets.report("b").code for _ in range(3)]
        # No notice can arrive: the screen gets them from the feed's poll of the log, within a poll interval.
        events = screen.wait_events(lambda evs: len(evs) >= 5, timeout=3 * float(SERVER_ENV["RT_POLL_SECONDS"]))
        polled_after = time.monotonic() - down_at
        assert [e["data"]["code"] for e in events[1:]] == [body["code"], *staff]

        own_redis.start()
        after = streets.report("a").code
        events = screen.wait_events(lambda evs: len(evs) >= 6)
        stored = list(FeedEvent.objects.filter(seq__gt=head).order_by("seq").values_list("seq", flat=True))
        assert [e["seq"] for e in events] == stored
        assert events[-1]["data"]["code"] == after
        assert Case.objects.filter(idempotency_key__in=["k-up", "k-down"]).count() == 2
        print(f"\nRedis down: 4 reports written, on the screen {polled_after:.1f} s later by polling")
    finally:
        server.stop()


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_redis_down_where_a_request_needs_it_is_a_503_not_a_500(settings, tmp_path, language):
    """The +1-once mark lives in the cache: with Redis gone, a +1 is a clear 503 in the user's language."""
    from django.test import Client

    from tests.gridmgmt.api.conftest import api_world_build

    world = api_world_build()
    lon, lat = world.centre()
    case, _ = services.case_report(source="resident", category_code="E0404", lon=lon, lat=lat)
    working = settings.CACHES
    settings.CACHES = {"default": {**working["default"], "LOCATION": f"unix://{tmp_path}/gone.sock"}}
    try:
        url = f"/api/public/cases/{case.code}/support/"
        response = Client().post(url, {}, content_type="application/json", HTTP_ACCEPT_LANGUAGE=language)
    finally:
        settings.CACHES = working  # the suite's per-test cache cleanup needs the real one
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "5"
    detail = "服务暂时不可用,请稍后重试" if language == "zh-hans" else "The service is briefly unavailable."
    assert response.json()["code"] == "unavailable" and response.json()["detail"].startswith(detail)
