"""Tracker positions at fleet scale (issue 10, item 7): OsmAnd devices in, screens watching.

    .venv/bin/python bench/positions.py [--devices 500] [--screens 50] [--seconds 20] [--interval 0.5]
        [--workers 2] [--floor 3000]

Database: `<DATABASE_URL's name>_positions`, a copy of bench/scale.py's migrated demo set-up (its 78 teams and
308 patrol members), with `--devices` trackers `bench-pos-NNN` registered to the patrol members in turn
(realtime.models.Device; several per member when there are more devices than members).

1. **Floor** (same run, same database): a bare prepared `INSERT` of the same history row
   (`realtime_position`, the partitioned table) from one connection, one autocommitted row at a time:
   rows/s — what PostgreSQL alone takes from one client.
2. **Ours**: `gridmgmt.asgi` under uvicorn with `--workers` processes; `--screens` WebSocket screens (the
   wall user's session) subscribed to its area (Pudong) on /ws/feed/; `--devices` devices, each on its own HTTP/1.1
   keep-alive connection, sending `GET /track/osmand?id=…&lat=…&lon=…&timestamp=<ms>&speed=…` every
   `--interval` s for `--seconds` s (offered: devices / interval positions/s), then after a pause longer
   than the team-position interval one final fix each. The per-address throttle is raised for the run (all
   devices share 127.0.0.1 here; in the field each has its own address) and RT_POSITION_SECONDS = 1.

Each device keeps a fixed schedule (a late answer delays its next fix, never the schedule). Reported: positions/s
accepted (fixes sent in the steady window — from one interval after the start, when every device is sending,
to the end of sending — and answered 200, over that window's length) and the ratio to the floor; ingest → screen
latency p50/p99 over every (screen, team.position event) pair (the fix's `timestamp` is its send time, the
screen takes the time of receipt); lost latest positions: screens × teams whose last `team.position` is not
the team's stored latest position (`PatrolTeam.last_position_at`) after the run. The load average is
recorded: the machine is shared. Targets: ≥ 1,000 positions/s, p99 ≤ 1 s, 0 lost.
Results: bench/results/positions.json (another offered rate: positions-<rate>.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def db_ensure() -> str:
    import scale

    return scale.demo_copy_ensure("_positions", commands=(("positions_partitions",),))


SCOPE = ["all"]  # the wall user's area (world)


def world(n_devices: int) -> tuple[list[tuple[str, int]], str, dict[int, tuple[float, float]]]:
    """(identifier, team id) per device, the wall's session key, and a point per team."""
    from django.contrib.sessions.backends.db import SessionStore

    from gridmgmt.models import User
    from realtime.models import Device

    members = list(User.objects.filter(role=User.Role.PATROL, is_active=True, team__isnull=False).order_by("id"))
    devices = []
    for i in range(n_devices):
        member = members[i % len(members)]
        identifier = f"bench-pos-{i:03d}"
        Device.objects.update_or_create(
            identifier=identifier, defaults={"user": member, "kind": Device.Kind.TRACKER, "active": True}
        )
        devices.append((identifier, member.team_id))
    wall = User.objects.get(username="wall")
    if wall.area_id:
        SCOPE[0] = f"{wall.area.level}:{wall.area_id}"
    session = SessionStore()
    session["_auth_user_id"] = str(wall.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = wall.get_session_auth_hash()
    session.create()
    from gridmgmt.models import PatrolTeam

    points = {}
    for team in PatrolTeam.objects.select_related("street"):
        c = (team.street.boundary if team.street else None) or None
        p = c.point_on_surface if c else None
        points[team.id] = (p.x, p.y) if p else (121.55, 31.22)
    return devices, session.session_key, points


def floor(n: int, team_id: int) -> dict:
    """A bare prepared INSERT of the history row, from one connection, autocommitted row by row."""
    from django.db import connection

    from realtime.models import Device

    device = Device.objects.filter(identifier="bench-pos-000").select_related("user").get()
    conn = connection.connection  # the driver's connection (psycopg 3)
    sql = """INSERT INTO realtime_position
        (device_id, at, received_at, user_id, team_id, point, speed, course, altitude, accuracy, battery)
        VALUES (%s, %s, now(), %s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s, %s, %s, %s, %s)
        ON CONFLICT (device_id, at) DO NOTHING"""
    conn.autocommit = True
    started = time.perf_counter()
    from datetime import UTC, timedelta

    base = datetime.now(UTC)
    with conn.cursor() as cur:
        for i in range(n):
            at = base - timedelta(milliseconds=n - i)
            cur.execute(
                sql, (device.pk, at, device.user_id, team_id, 121.5, 31.2, 1.0, 90.0, 4.0, 5.0, 80.0), prepare=True
            )
    took = time.perf_counter() - started
    return {"rows": n, "rows_per_s": round(n / took, 1)}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_start(db_url: str, workers: int) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "LOG_LEVEL": "WARNING",
        "THROTTLE_TRACK_ADDRESS": "1000000/min",
        "THROTTLE_TRACK_DEVICE": "100000/min",
        "RT_POSITION_SECONDS": "1",
    }
    cmd = [sys.executable, "-m", "uvicorn", "gridmgmt.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers), "--no-access-log", "--log-level", "warning", "--ws-max-size", "65536"]
    log = (ROOT / "var" / "bench-positions-server.log").open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    import urllib.request

    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return proc, port
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.terminate()
                raise RuntimeError("uvicorn did not start") from None
            time.sleep(0.3)


async def screen(port: int, session: str, seen: dict, latencies: list, ready: asyncio.Event, counter: list) -> None:
    import websockets

    headers = {"Cookie": f"sessionid={session}", "Origin": f"http://127.0.0.1:{port}"}
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/ws/feed/", additional_headers=headers, max_size=2**22, compression=None
    ) as ws:
        await ws.recv()  # hello
        await ws.send(json.dumps({"op": "subscribe", "scope": SCOPE[0], "last": None}))
        counter[0] += 1
        if counter[0] == counter[1]:
            ready.set()
        async for raw in ws:
            now = time.time()
            msg = json.loads(raw)
            counter.append(msg.get("t"))
            if msg.get("t") == "error" and len(counter) < 8:
                print(f"screen error: {msg}", flush=True)
            if msg.get("t") != "events":
                continue
            for e in msg["events"]:
                if e["type"] == "team.position":
                    at = datetime.fromisoformat(e["data"]["at"]).timestamp()
                    latencies.append((now - at) * 1000)
                    team = e["data"]["team_id"]
                    if at > seen.get(team, 0):
                        seen[team] = at


async def device(
    port: int,
    identifier: str,
    point,
    interval: float,
    until: float,
    tally: dict,
    jitter: float,
    accepted_at: list[float],
):
    """One tracker on its own keep-alive connection, on a fixed schedule (start + jitter + k × interval): a late
    answer delays the next fix, never shifts the schedule, so a server that keeps up is offered exactly
    devices / interval positions/s. `accepted_at` gets the send time of each fix answered 200."""
    conn = list(await asyncio.open_connection("127.0.0.1", port))
    rng = random.Random(identifier)

    async def send() -> None:
        lon, lat = point[0] + rng.uniform(-0.003, 0.003), point[1] + rng.uniform(-0.003, 0.003)
        sent = time.time()
        ts = int(sent * 1000)
        query = f"id={identifier}&lat={lat:.6f}&lon={lon:.6f}&timestamp={ts}&speed=3.2&bearing=90&batt=80"
        request = f"GET /track/osmand?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        try:
            conn[1].write(request)
            status_line = await conn[0].readline()
        except ConnectionError:
            status_line = b""
        if not status_line:  # the server closed an idle keep-alive connection (as a device sees it): reconnect
            conn[1].close()
            conn[:] = await asyncio.open_connection("127.0.0.1", port)
            conn[1].write(request)
            status_line = await conn[0].readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await conn[0].readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        if length:
            await conn[0].readexactly(length)
        tally[status] = tally.get(status, 0) + 1
        if status == 200:
            accepted_at.append(sent)

    next_at = time.time() + jitter
    while next_at < until:
        await asyncio.sleep(max(0.0, next_at - time.time()))
        await send()
        next_at += interval
    return send, conn


async def run(port: int, session: str, devices, points, args) -> dict:
    seen_by_screen: list[dict] = [{} for _ in range(args.screens)]
    latencies: list[float] = []
    ready = asyncio.Event()
    counter = [0, args.screens]
    screens = [
        asyncio.create_task(screen(port, session, seen_by_screen[i], latencies, ready, counter))
        for i in range(args.screens)
    ]
    await asyncio.wait_for(ready.wait(), 60)
    await asyncio.sleep(1.0)  # subscriptions confirmed
    tally: dict = {}
    accepted_at: list[float] = []
    started = time.time()
    until = started + args.seconds
    results = await asyncio.gather(
        *[
            device(port, ident, points[team], args.interval, until, tally, random.random() * args.interval, accepted_at)
            for ident, team in devices
        ]
    )
    sending = time.time() - started
    # The steady window: from when every device has started (one interval in) to the end of sending.
    window = (started + args.interval, until)
    accepted = sum(1 for t in accepted_at if window[0] <= t < window[1])
    steady_latencies = list(latencies)
    await asyncio.sleep(1.5)  # past the team-position interval: each device's final fix
    await asyncio.gather(*[send() for send, _ in results])
    await asyncio.sleep(6.0)  # the feed's batch interval and poll
    for _, conn in results:
        conn[1].close()
    frames = {t: counter[2:].count(t) for t in set(counter[2:])}
    print(f"screens' frames by kind: {frames}", flush=True)
    for t in screens:
        if t.done() and t.exception():
            print(f"screen failed: {t.exception()!r}")
        t.cancel()
    return {
        "sending_s": round(sending, 1),
        "offered_per_s": round(len(devices) / args.interval, 1),
        "answers": {str(k): v for k, v in tally.items() if k != "_final_wait"},
        "accepted_per_s": round(accepted / (window[1] - window[0]), 1),
        "latency_events": len(steady_latencies),
        "latency_p50_ms": round(statistics.median(steady_latencies), 1) if steady_latencies else None,
        "latency_p99_ms": round(sorted(steady_latencies)[int(0.99 * (len(steady_latencies) - 1))], 1)
        if steady_latencies
        else None,
        "seen": seen_by_screen,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=500)
    ap.add_argument("--screens", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--floor", type=int, default=3000)
    args = ap.parse_args()
    db_url = db_ensure()
    from _setup import results_write
    from django.db import connection

    assert connection.settings_dict["NAME"].endswith("_positions"), connection.settings_dict["NAME"]
    devices, session, points = world(args.devices)
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    fl = floor(args.floor, devices[0][1])
    print(f"floor: bare prepared INSERT, one connection: {fl['rows_per_s']} rows/s", flush=True)
    connection.close()
    proc, port = server_start(db_url, args.workers)
    try:
        # the load generator shares the cores: keep it lean
        out = uvloop.run(run(port, session, devices, points, args))
    finally:
        proc.terminate()
        proc.wait(20)
    from gridmgmt.models import PatrolTeam

    latest = {
        t.id: t.last_position_at.timestamp()
        for t in PatrolTeam.objects.filter(id__in={team for _, team in devices}, last_position_at__isnull=False)
    }
    lost = sum(1 for seen in out.pop("seen") for team, at in latest.items() if abs(seen.get(team, 0) - at) > 0.001)
    out |= {
        "devices": args.devices,
        "screens": args.screens,
        "workers": args.workers,
        "teams": len(latest),
        "lost_latest_positions": lost,
        "floor": fl,
        "ratio_to_floor": round(out["accepted_per_s"] / fl["rows_per_s"], 2),
        "loadavg_before": load_before,
        "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
    }
    out["targets"] = {
        "1000_per_s": out["accepted_per_s"] >= 1000,
        "p99_1s": (out["latency_p99_ms"] or 1e9) <= 1000,
        "none_lost": lost == 0,
    }
    print(
        f"ours: {out['accepted_per_s']} positions/s accepted (offered {out['offered_per_s']}/s;"
        f" answers {out['answers']})"
        f" = {out['ratio_to_floor']}× the floor; ingest→screen p50 {out['latency_p50_ms']} ms, p99"
        f" {out['latency_p99_ms']} ms over {out['latency_events']} deliveries; lost latest positions {lost}"
        f" ({len(latest)} teams × {args.screens} screens); targets {out['targets']}"
    )
    offered = round(args.devices / args.interval)
    path = results_write("positions" if offered == 1000 else f"positions-{offered}", out)  # the 1,000/s
    print(f"→ {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
