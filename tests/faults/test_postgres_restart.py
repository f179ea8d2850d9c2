"""PostgreSQL restarted while reports come in and a wall screen is live — on a cluster of the test's own
(tests/pgcluster.py), so stopping it touches nothing else. Requests in the gap get a 503 in the user's
language; the phone's queue resends the same report under its idempotency key once the database is back;
the screen catches up from the log. In the end every report is stored once and the screen has seen exactly
the log's rows, each once, in order."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

import psycopg
import pytest
from rest_framework.authtoken.models import Token
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.live import uvicorn_start
from tests.pgcluster import cluster_with_copy
from tests.realtime.conftest import SERVER_ENV, Screen, session_cookie

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def post(url: str, body: dict, *, token: str, language: str = "zh-hans") -> tuple[int, dict]:
    request = urllib.request.Request(
        url + "/api/cases/",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}", "Accept-Language": language},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {**json.loads(exc.read()), "retry_after": exc.headers.get("Retry-After")}


def get_status(url: str, *, cookie: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Cookie": cookie, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def screen_connect(server, cookie: str) -> Screen:
    ws = connect(
        server.ws_url + "/ws/feed/",
        origin=server.url,
        additional_headers={"Cookie": cookie},
        compression=None,
        open_timeout=10,
        ping_interval=None,
        legacy=True,
    )
    screen = Screen(ws)
    assert screen.recv()["t"] == "hello"
    return screen


def test_postgres_restart_mid_stream_loses_and_duplicates_nothing(streets, tmp_path):
    from django.db import connection

    # Everything the clients need exists before the copy: the world, the phone's token, the wall's session.
    token = Token.objects.create(user=streets.users["patrol"]).key
    cookie = session_cookie(streets.users["wall"])
    dbname = "grid"
    own_cluster = cluster_with_copy(source=connection.settings_dict, name=dbname, prefix="gm-fault-")
    env = {**SERVER_ENV, "DB_POOL_TIMEOUT": "1"}
    try:
        server = uvicorn_start(settings_dict=own_cluster.settings_dict(dbname), log_dir=tmp_path, env=env)
    except Exception:
        own_cluster.destroy()
        raise
    lon, lat = streets.world.centre(1)
    keys = [str(uuid.uuid4()) for _ in range(5)]

    def report(i: int, **kw) -> tuple[int, dict]:
        body = {"category": "E0404", "lon": lon, "lat": lat, "description": f"r{i}", "idempotency_key": keys[i]}
        return post(server.url, body, token=token, **kw)

    try:
        screen = screen_connect(server, cookie)
        head = screen.subscribe("all")["seq"]
        for i in range(3):
            assert report(i)[0] == 201
        screen.wait_events(lambda evs: len(evs) >= 3)

        own_cluster.stop()
        gap_at = time.monotonic()
        status, body = report(3)
        assert (status, body["code"], body["retry_after"]) == (503, "unavailable", "5")
        assert body["detail"] == "服务暂时不可用(数据库连接中断),请稍后重试"
        status, body = report(3, language="en")
        assert (status, body["detail"]) == (
            503,
            "The service is briefly unavailable (database connection lost). Please try again in a few seconds.",
        )
        status, text = get_status(server.url + "/wall/snapshot.json", cookie=cookie)
        assert status == 503 and "unavailable" in text
        own_cluster.start()
        gap = time.monotonic() - gap_at

        def resend(i: int) -> tuple[int, dict]:
            # As the phone's queue does: a 503 (the pool's first connections after the restart can still be
            # the dead ones, or PostgreSQL just up) is answered by sending the same entry again a little later.
            deadline = time.monotonic() + 15
            while True:
                status, body = report(i)
                if status != 503 or time.monotonic() > deadline:
                    return status, body
                time.sleep(0.5)

        # The phone's queue resends what failed, and (not knowing whether r2's answer arrived) r2 too.
        assert resend(3)[0] == 201
        status, first = resend(2)
        assert status == 200  # the first case, not a second one
        assert first["properties"]["description"] == "r2"
        assert report(4)[0] == 201

        # The screen: still connected (the feed re-reads the log once the database answers) or, if the socket
        # dropped, reconnected with its `last` and replayed — either way exactly the log's rows.
        with psycopg.connect(host=own_cluster.socket_dir, dbname=dbname, user="gridmgmt") as db:
            cases = db.execute(
                "SELECT idempotency_key, count(*) FROM gridmgmt_case WHERE idempotency_key = ANY(%s) "
                "GROUP BY idempotency_key",
                [keys],
            ).fetchall()
            rows = db.execute("SELECT seq FROM realtime_feedevent WHERE seq > %s ORDER BY seq", [head])
            stored = [r[0] for r in rows]
        assert sorted(cases) == sorted((k, 1) for k in keys)  # each report once
        seen = list(screen.events)
        try:
            screen.wait_events(lambda evs: len(evs) >= len(stored), timeout=20)
            seen = list(screen.events)
        except ConnectionClosed:
            seen = list(screen.events)
            again_screen = screen_connect(server, cookie)
            again_screen.last["all"] = screen.last["all"]
            again_screen.subscribe("all", last=screen.last["all"])
            again_screen.wait_events(lambda evs: len(seen) + len(evs) >= len(stored), timeout=20)
            seen += again_screen.events
        assert [e["seq"] for e in seen] == stored
        print(f"\nPostgreSQL down {gap:.2f} s; {len(stored)} feed rows, all seen once")
    finally:
        server.stop()
        own_cluster.destroy()
