"""Reads that tolerate lag from a real streaming replica (gridmgmt/dbrouter.py): a primary of the test's own
(tests/pgcluster.py, the test database copied in), a hot standby made from it with `pg_basebackup -R`, and
a server with DATABASE_URL on the primary and DATABASE_REPLICA_URL on the standby. With the standby's replay
paused, a report written on the primary is in its own detail at once (primary read) but not yet in the wall
snapshot's or /api/kpis/'s figures (replica reads); once replay resumes, both show it."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid

import pytest
from rest_framework.authtoken.models import Token

from tests.live import uvicorn_start
from tests.pgcluster import Cluster, cluster_with_copy
from tests.realtime.conftest import SERVER_ENV, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def call(url: str, *, headers: dict, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(request, timeout=15) as response:
        return response.status, json.loads(response.read())


def caught_up(primary: Cluster, replica: Cluster, timeout: float = 20) -> None:
    # The insert position, not pg_current_wal_lsn() (the write position): the test clusters run with
    # synchronous_commit off, so a commit just answered may not be written yet — waiting for the write
    # position once let the figures be read before the replica had the report (a clean-clone run).
    target = primary.psql("SELECT pg_current_wal_insert_lsn()")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if replica.psql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") == "t":
            return
        time.sleep(0.05)
    raise TimeoutError("replica did not catch up")


def test_wall_snapshot_and_kpis_read_from_the_replica(streets, tmp_path):
    from django.db import connection

    token = Token.objects.create(user=streets.users["patrol"]).key
    wall = session_cookie(streets.users["wall"])
    dispatcher = Token.objects.create(user=streets.users["wall"]).key
    primary = cluster_with_copy(source=connection.settings_dict, name="grid", prefix="gm-primary-")
    replica = None
    try:
        replica = Cluster.replica_of(primary)
        env = {**SERVER_ENV, "DATABASE_REPLICA_URL": replica.url("grid")}
        server = uvicorn_start(settings_dict=primary.settings_dict("grid"), log_dir=tmp_path, env=env)
    except Exception:
        for cluster in (replica, primary):
            if cluster is not None:
                cluster.destroy()
        raise
    lon, lat = streets.world.centre(1)

    def open_on_wall() -> int:
        return call(server.url + "/wall/snapshot.json?only=kpis", headers={"Cookie": wall})[1]["kpis"]["open"]

    def open_in_kpis() -> int:
        return call(server.url + "/api/kpis/", headers={"Authorization": f"Token {dispatcher}"})[1]["stock"]["open"]

    try:
        caught_up(primary, replica)
        before = (open_on_wall(), open_in_kpis())
        replica.psql("SELECT pg_wal_replay_pause()")
        body = {"category": "E0404", "lon": lon, "lat": lat, "description": "lag", "idempotency_key": str(uuid.uuid4())}
        status, case = call(server.url + "/api/cases/", headers={"Authorization": f"Token {token}"}, body=body)
        assert status == 201
        code = case["properties"]["code"]
        status, detail = call(server.url + f"/api/cases/{case['id']}/", headers={"Authorization": f"Token {token}"})
        assert (status, detail["properties"]["code"]) == (200, code)  # your own write: the primary
        assert (open_on_wall(), open_in_kpis()) == before  # figures: the paused replica, one report behind

        replica.psql("SELECT pg_wal_replay_resume()")
        caught_up(primary, replica)
        assert (open_on_wall(), open_in_kpis()) == (before[0] + 1, before[1] + 1)
    finally:
        server.stop()
        replica.destroy()
        primary.destroy()
