"""Real-time fan-out: N WebSocket screens on the running server, reports posted through the HTTP API (issue 4).

    .venv/bin/python bench/fanout.py [--clients 1000] [--rate 50] [--seconds 30] [--burst 2000]
        [--workers N (default: one per core)] [--layer core|pubsub (default: settings')] [--ws auto|websockets|…]

Runs against its own database, `<DATABASE_URL's name>_rtbench` (migrated, with a 3×3-cell test district;
benchmark reports must not land in the demo database), and its own uvicorn on it (`--workers` processes,
`--ws-per-message-deflate false`). Two systems, same clients:

1. **gridmgmt**: N screens subscribed to `all` on /ws/feed/ (wall user's session); reports posted with
   `POST /api/cases/` (token auth, no photo) from a thread pool — a steady `--rate`/s for `--seconds`, then
   a burst of `--burst` as fast as the API takes them.
2. **baseline** (the physical floor): a bare Redis `PUBLISH` per event, relayed by a minimal `websockets`
   broadcast server (one frame per event) to the same N clients; same steady rate, same burst size.

The N clients run in this process on one uvloop event loop (`FeedClient`, a minimal RFC 6455 client); the
posting runs in a process of its own, so its threads never delay a client's read (which would count as
latency). Per phase: commit → received latency p50/p95/p99 over every (client, event) pair (`at` of the
envelope is taken just before the transaction, so this slightly overstates), frames/s and events/s delivered,
lost / duplicated counts, and the CPU seconds of server, clients and posting (other work on the machine
skews every figure: the load average at start and end is recorded). Results: bench/results/fanout-<N>.json.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import functools
import json
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ENVELOPE = re.compile(rb'"seq" ?: ?(\d+), ?"type" ?: ?"case\.created", ?"at" ?: ?"([^"]+)"')


# --- database and servers ------------------------------------------------------------------------------


def _bench_db() -> str:
    url = os.environ.get("DATABASE_URL")
    env_file = ROOT / "var" / "local.env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            os.environ.setdefault(key.strip(), value.strip())
    url = os.environ["DATABASE_URL"]
    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/") + "_rtbench"
    import psycopg

    admin = parts._replace(path="/postgres")
    with psycopg.connect(urllib.parse.urlunsplit(admin).replace("postgis://", "postgresql://"), autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            c.execute(f'CREATE DATABASE "{name}"')
    bench_url = urllib.parse.urlunsplit(parts._replace(path="/" + name))
    os.environ["DATABASE_URL"] = bench_url
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
    return bench_url


def _django_world() -> tuple[str, str, tuple[float, float]]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gridmgmt.settings")
    import django

    django.setup()
    from django.contrib.sessions.backends.db import SessionStore
    from rest_framework.authtoken.models import Token

    from gridmgmt.models import Category, User
    from tests.world import world_build

    if not Category.objects.filter(code="E0404").exists():
        world_build()
    wall, patrol = User.objects.get(username="wall"), User.objects.get(username="patrol")
    session = SessionStore()
    session["_auth_user_id"] = str(wall.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = wall.get_session_auth_hash()
    session.create()
    token, _ = Token.objects.get_or_create(user=patrol)
    from geo.models import GridCell

    centre = GridCell.objects.order_by("id")[4].center
    return session.session_key, token.key, (centre.x, centre.y)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd: list[str], url: str, env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc
        except urllib.error.HTTPError:
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{cmd} did not come up")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def cpu_seconds(pid: int, tree: bool = True) -> float:
    """User + system CPU seconds of process `pid` and (`tree`) its descendants (uvicorn --workers forks)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        stats[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += stats.get(p, 0.0)
        todo += children.get(p, []) if tree else []
    return total


# --- the baseline relay (a separate process) -------------------------------------------------------------


async def relay_serve(port: int, redis_url: str) -> None:
    import redis.asyncio as aioredis
    from websockets.asyncio.server import broadcast, serve

    clients: set = set()

    async def handler(ws):
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async def health(connection, request):
        if request.path == "/health":
            return connection.respond(200, "ok\n")
        return None

    async with serve(handler, "127.0.0.1", port, compression=None, process_request=health):
        pubsub = aioredis.from_url(redis_url).pubsub()
        await pubsub.subscribe("bench.relay")
        async for message in pubsub.listen():
            if message["type"] == "message":
                broadcast(clients, message["data"].decode())


# --- clients -------------------------------------------------------------------------------------------


class Tally:
    """Deliveries per (client, seq) in a bytearray per client, latencies per phase."""

    def __init__(self, n: int):
        self.counts = [bytearray() for _ in range(n)]
        self.base = 0
        self.phase = "steady"
        self.latency: dict[str, array.array] = {}
        self.frames: dict[str, int] = {}
        self.events: dict[str, int] = {}
        self.last_delivery: dict[str, float] = {}
        self.stamps: dict[bytes, float] = {}  # `at` → epoch seconds, parsed once for all the clients

    def frame(self, i: int, text: bytes) -> None:
        now = time.time()
        stamps = self.stamps
        phase = self.phase
        self.frames[phase] = self.frames.get(phase, 0) + 1
        lat = self.latency.setdefault(phase, array.array("d"))
        counts = self.counts[i]
        n = 0
        for seq, at in ENVELOPE.findall(text):
            k = int(seq) - self.base
            if k >= len(counts):
                counts.extend(bytes(k + 1000 - len(counts)))
            if counts[k] < 255:
                counts[k] += 1
            stamp = stamps.get(at)
            if stamp is None:
                stamp = stamps[at] = datetime.fromisoformat(at.decode()).timestamp()
            lat.append(now - stamp)
            n += 1
        if n:
            self.events[phase] = self.events.get(phase, 0) + n
            self.last_delivery[phase] = now

    def check(self, expected: list[int]) -> tuple[int, int]:
        lost = dup = 0
        for counts in self.counts:
            for seq in expected:
                k = seq - self.base
                c = counts[k] if k < len(counts) else 0
                lost += c == 0
                dup += max(0, c - 1)
        return lost, dup

    def received_all(self, expected: list[int]) -> bool:
        k = max(expected) - self.base
        return all(len(c) > k and all(c[s - self.base] for s in expected[-50:]) for c in self.counts)


class FeedClient(asyncio.Protocol):
    """One screen: a minimal WebSocket client (RFC 6455 — handshake, unmasked server frames, fragments, ping →
    pong, close), used alike for gridmgmt and the baseline. 1,000 screens share the 2 cores with the server,
    so a client must cost little: one buffer, one parse per frame, the frame's bytes handed to the tally."""

    def __init__(self, path: str, host: str, headers: dict[str, str], on_message) -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n"
        ).encode()
        self.on_message = on_message
        self.buffer = bytearray()
        self.fragments: list[bytes] = []
        self.upgraded = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError(f"closed before the upgrade ({exc})"))

    def send(self, payload: bytes, opcode: int = 0x1) -> None:
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2))
        self.transport.write(head + mask + bytes(b ^ mask[k % 4] for k, b in enumerate(payload)))

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if not self.upgraded.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            del buf[: end + 4]
            if b" 101 " not in status:
                self.upgraded.set_exception(ConnectionError(status.decode()))
                self.transport.close()
                return
            self.upgraded.set_result(None)
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, length = buf[pos], buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4]), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10]), 10
            if size - pos < head + length:
                break
            payload = bytes(buf[pos + head : pos + head + length])
            pos += head + length
            opcode = b0 & 0x0F
            if opcode == 0x9:  # ping → pong (uvicorn closes a socket that does not answer its pings)
                self.send(payload, 0xA)
            elif opcode == 0x8:
                self.transport.close()
                return
            elif opcode in (0x0, 0x1, 0x2):
                if not b0 & 0x80:
                    self.fragments.append(payload)
                    continue
                if self.fragments:
                    payload = b"".join([*self.fragments, payload])
                    self.fragments = []
                self.on_message(payload)
        del buf[:pos]


async def clients_run(url: str, n: int, tally: Tally, *, cookie: str | None, origin: str, ready: asyncio.Event):
    loop = asyncio.get_running_loop()
    parts = urllib.parse.urlsplit(url)
    headers = {"Origin": origin, **({"Cookie": f"sessionid={cookie}"} if cookie else {})}
    connected = 0
    gate = asyncio.Semaphore(50)

    async def one(i: int):
        nonlocal connected
        async with gate:
            inbox: asyncio.Queue[bytes] = asyncio.Queue()
            transport, client = await loop.create_connection(
                lambda: FeedClient(parts.path, parts.netloc, headers, inbox.put_nowait), parts.hostname, parts.port
            )
            await asyncio.wait_for(client.upgraded, 120)
            if cookie:
                await inbox.get()  # hello
                client.send(json.dumps({"op": "subscribe", "scope": "all", "last": None}).encode())
                await inbox.get()  # subscribed
            client.on_message = functools.partial(tally.frame, i)
            while not inbox.empty():
                tally.frame(i, inbox.get_nowait())
        connected += 1
        if connected == n:
            ready.set()
        try:
            await asyncio.Future()  # frames are counted in data_received until this task is cancelled
        finally:
            transport.abort()

    return [asyncio.create_task(one(i)) for i in range(n)]


# --- posting -------------------------------------------------------------------------------------------


def post_reports(server: str, token: str, point: tuple[float, float], n: int, rate: float | None) -> list[str]:
    """n reports through the API, at `rate`/s (None: as fast as 16 threads get them in). Returns case codes."""
    body = json.dumps({"category": "E0404", "lon": point[0], "lat": point[1], "description": "bench"}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Token {token}"}

    def one(_):
        request = urllib.request.Request(server + "/api/cases/", data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())["properties"]["code"]

    with ThreadPoolExecutor(16) as pool:
        if rate is None:
            return list(pool.map(one, range(n)))
        futures, start = [], time.monotonic()
        for i in range(n):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(one, i))
        return [f.result() for f in futures]


def publish_bare(redis_url: str, first_seq: int, n: int, rate: float | None, sample: str) -> list[int]:
    import redis

    r = redis.Redis.from_url(redis_url)
    start, seqs = time.monotonic(), []
    for i in range(n):
        if rate is not None:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        seq = first_seq + i
        at = datetime.now().astimezone().isoformat()
        r.publish("bench.relay", f'{{"seq" : {seq}, "type" : "case.created", "at" : "{at}", "data" : {sample}}}')
        seqs.append(seq)
    return seqs


# --- one system ----------------------------------------------------------------------------------------


def pct(values: array.array, p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000, 1)


def run_system(
    name: str, *, ws_url: str, origin: str, cookie, n: int, args, send, expected_of, pids: dict[str, int]
) -> dict:
    """Connect n clients, run steady + burst through `send(count, rate)`, return the figures."""
    import uvloop

    loop = uvloop.new_event_loop()  # as the servers use (uvicorn picks uvloop when installed; so does the relay)
    tally = Tally(n)
    ready = asyncio.Event()
    out: dict = {"system": name, "clients": n}

    def runner():
        asyncio.set_event_loop(loop)
        loop.run_forever()

    thread = threading.Thread(target=runner, daemon=True)
    thread.start()
    t0 = time.monotonic()
    tasks = asyncio.run_coroutine_threadsafe(
        clients_run(ws_url, n, tally, cookie=cookie, origin=origin, ready=ready), loop
    ).result()
    asyncio.run_coroutine_threadsafe(asyncio.wait_for(ready.wait(), 300), loop).result()
    out["connect_seconds"] = round(time.monotonic() - t0, 1)
    tally.base = expected_of(None)

    for phase, count, rate in (("steady", int(args.rate * args.seconds), args.rate), ("burst", args.burst, None)):
        tally.phase = phase
        cpu = {who: cpu_seconds(pid, who != "clients") for who, pid in pids.items()}
        started = time.time()
        handles = send(count, rate)
        posted = time.time()
        expected = expected_of(handles)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not tally.received_all(expected):
            time.sleep(0.2)
        cpu = {who: round(cpu_seconds(pid, who != "clients") - cpu[who], 1) for who, pid in pids.items()}
        lost, dup = tally.check(expected)
        seconds = tally.last_delivery.get(phase, posted) - started
        lat = tally.latency.get(phase, array.array("d"))
        out[phase] = {
            "events": len(expected),
            "post_seconds": round(posted - started, 2),
            "posted_per_second": round(len(expected) / (posted - started), 1),
            "latency_ms": {"p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99), "max": pct(lat, 100)},
            "deliveries": tally.events.get(phase, 0),
            "frames_per_second": round(tally.frames.get(phase, 0) / seconds, 1),
            "events_per_second": round(tally.events.get(phase, 0) / seconds, 1),
            "lost": lost,
            "duplicated": dup,
            "cpu_seconds": cpu,  # from the phase's start to the last delivery (+ ≤ 0.2 s)
            "wall_seconds": round(time.time() - started, 1),
        }
        print(name, phase, json.dumps(out[phase]), flush=True)

    async def close_all():
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(close_all(), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="uvicorn processes (default: one a core)")
    parser.add_argument("--ws", default="auto", help="uvicorn's WebSocket implementation (--ws)")
    parser.add_argument("--layer", choices=["core", "pubsub"], help="the servers' channel layer (default: settings')")
    parser.add_argument("--name", help="results file name (default fanout-<clients>)")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--relay", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay:
        import uvloop

        uvloop.run(relay_serve(args.relay, os.environ["REDIS_URL"]))
        return

    _bench_db()
    session, token, point = _django_world()
    from django.conf import settings

    from realtime.models import FeedEvent

    redis_url = settings.REDIS_URL
    results: dict = {"args": vars(args), "load_average_at_start": os.getloadavg()}

    port = _free_port()
    server = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "uvicorn", "gridmgmt.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--ws-max-size", "65536"]  # the protocol's 64 KiB frame limit, before buffering
    cmd += ["--no-access-log", "--log-level", "warning", "--workers", str(args.workers)]
    cmd += ["--ws", args.ws, "--ws-per-message-deflate", "false"]
    env = {"DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1"}
    if args.layer:
        env.update(DJANGO_SETTINGS_MODULE="bench.fanout_settings", FANOUT_LAYER=args.layer)
    proc = _start(cmd, server + "/realtime/position/", env=env)

    def expected_ours(codes):
        if codes is None:
            return FeedEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        return sorted(FeedEvent.objects.filter(type="case.created", data__code__in=codes).values_list("seq", flat=True))

    # Posting runs in a process of its own: its threads must not take the GIL from the clients' event loop
    # (a client late to read a frame would add its own delay to the latency measured).
    poster = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    poster.submit(os.getpid).result()
    poster_pid = next(iter(poster._processes))
    try:
        poster.submit(post_reports, server, token, point, 20, None).result()  # warm up
        results["gridmgmt"] = run_system(
            "gridmgmt",
            ws_url=f"ws://127.0.0.1:{port}/ws/feed/",
            origin=server,
            cookie=session,
            n=args.clients,
            args=args,
            send=lambda count, rate: poster.submit(post_reports, server, token, point, count, rate).result(),
            expected_of=expected_ours,
            pids={"server": proc.pid, "clients": os.getpid(), "posting": poster_pid},
        )
    finally:
        _stop(proc)

    if not args.skip_baseline:
        sample = FeedEvent.objects.filter(type="case.created").order_by("-seq").values_list("data", flat=True).first()
        sample = json.dumps(sample, ensure_ascii=False)
        rport = _free_port()
        relay = _start(
            [sys.executable, __file__, "--relay", str(rport)],
            f"http://127.0.0.1:{rport}/health",
            {"REDIS_URL": redis_url},
        )
        counter = {"next": 1}

        def send_bare(count, rate):
            seqs = poster.submit(publish_bare, redis_url, counter["next"], count, rate, sample).result()
            counter["next"] += count
            return seqs

        try:
            results["baseline"] = run_system(
                "baseline",
                ws_url=f"ws://127.0.0.1:{rport}/",
                origin=f"http://127.0.0.1:{rport}",
                cookie=None,
                n=args.clients,
                args=args,
                send=send_bare,
                expected_of=lambda seqs: 0 if seqs is None else seqs,
                pids={"server": relay.pid, "clients": os.getpid(), "posting": poster_pid},
            )
        finally:
            _stop(relay)
        ours, bare = (
            results["gridmgmt"]["burst"]["events_per_second"],
            results["baseline"]["burst"]["events_per_second"],
        )
        results["burst_ratio_vs_baseline"] = round(ours / bare, 2) if bare else None

    from bench._setup import results_write

    poster.shutdown()
    results["load_average_at_end"] = os.getloadavg()  # other work on the machine skews every figure
    path = results_write(args.name or f"fanout-{args.clients}", results)
    print("written", path)


if __name__ == "__main__":
    main()
