"""Intake throughput on the Pudong demo data (issue 3, item 9; targets from issue 8, item 7).

    .venv/bin/python bench/intake.py [--service 2000] [--http 300] [--rounds 3] [--locate 5000] [--clients 8]

Runs against its own database, `<DATABASE_URL's name>_bench`, loaded once with `migrate` + `demo_load`
(the case-event table is append-only, so benchmark reports must not land in the demo database):

1. reports/s through `services.case_report` (one transaction per report, no photo), one process;
2. the locate step (`geo.selectors.cell_locate`) against a raw prepared `ST_Covers` query on the same points,
   as a ratio (target ≤ 1.5×), and the same lookup written with the ORM (`GridCell.objects.filter(
   geom__covers=…)`), for the record: it is why `cell_locate` stays hand-written;
3. reports/s through HTTP with the same ~200 KB photo on both paths, from `--clients` concurrent client
   threads (one keep-alive `http.client` connection each, the multipart body around the photo built once:
   the client shares the 2 cores with both servers, so it is kept cheap, the same for both paths), each path
   on its own uvicorn server with 2 workers: the product's `POST /api/cases/` (its own
   settings, token authentication) and the naive baseline of `bench/intake_naive.py` (`POST
   /bench/naive/cases/`, with `bench/intake_naive_settings.py`: Django's and DRF's defaults, so a new
   PostgreSQL connection per request and session authentication; a DRF ModelSerializer create, `save()` per
   photo, Pillow decode + re-encode, a separate ORM locate query — its docstring gives the recipe), in
   `--rounds` alternating rounds of `--http` reports each, so load from elsewhere on the machine falls on
   both. Both servers run throughout (an idle one costs nothing). Target: the product ≥ 3× the naive
   baseline, measured in this one run (absolute rates differ several-fold between machines). Each path's
   server CPU per report (user + system of its uvicorn processes, from /proc) is recorded with it.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import random
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _bench_db_url() -> tuple[str, str]:
    # The same server as the app's DATABASE_URL (environment, else var/local.env as settings read it), but
    # without importing settings: Django must be set up later, on the bench database.
    url = os.environ.get("DATABASE_URL")
    env_file = ROOT / "var" / "local.env"
    if not url and env_file.exists():
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "DATABASE_URL":
                url = value.strip()
    if not url:
        raise SystemExit("DATABASE_URL is not set and var/local.env is missing: run `make services` first")
    os.environ["DATABASE_URL"] = url
    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/") + "_bench"
    return urllib.parse.urlunsplit(parts._replace(path="/" + name)), name


def _ensure_bench_db() -> str:
    url, name = _bench_db_url()
    import psycopg

    admin = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
    host = urllib.parse.unquote(admin.hostname or "") or urllib.parse.unquote(admin.netloc.split("@")[-1])
    conninfo = dict(dbname="postgres", user=urllib.parse.unquote(admin.username or ""), host=host or None)
    if admin.port:
        conninfo["port"] = admin.port
    if admin.password:
        conninfo["password"] = urllib.parse.unquote(admin.password)
    with psycopg.connect(**{k: v for k, v in conninfo.items() if v}, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": url}
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run([py, "manage.py", "demo_load"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return url


def _photo_200kb() -> bytes:
    from PIL import Image

    rng = random.Random(7)
    # Noise compresses badly, so a modest size reaches ~200 KB like a phone photo downscaled by the app.
    img = Image.frombytes("RGB", (480, 360), bytes(rng.getrandbits(8) for _ in range(480 * 360 * 3)))
    for quality in (95, 90, 85, 80, 75, 70):
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        if buf.tell() <= 220_000:
            break
    return buf.getvalue()


def _points(n: int, seed: int) -> list[tuple[float, float]]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT setseed(%s)", [seed / 10_000])
        cur.execute(
            """
            SELECT ST_X(p), ST_Y(p) FROM (
                SELECT (ST_Dump(ST_GeneratePoints(geom, 1, (random() * 1e6)::int + 1))).geom AS p
                FROM geo_gridcell WHERE district_id = (SELECT id FROM geo_adminarea WHERE code = '310115')
                ORDER BY random() LIMIT %s
            ) s
            """,
            [n],
        )
        return cur.fetchall()


def bench_service(n: int) -> dict:
    from gridmgmt import services
    from gridmgmt.models import Case, User

    reporter = User.objects.get(username="patrol")
    points = _points(n + 50, seed=1)
    for lon, lat in points[:50]:  # warm up connections, plans and caches
        services.case_report(source=Case.Source.PATROL, category_code="E0404", lon=lon, lat=lat, reporter=reporter)
    started = time.perf_counter()
    for lon, lat in points[50:]:
        services.case_report(
            source=Case.Source.PATROL,
            category_code="E0404",
            lon=lon,
            lat=lat,
            reporter=reporter,
            idempotency_key=uuid.uuid4().hex,
        )
    seconds = time.perf_counter() - started
    return {"reports": n, "seconds": round(seconds, 3), "reports_per_second": round(n / seconds, 1)}


def _cell_locate_orm(*, lon: float, lat: float):
    """`cell_locate` written with the ORM: what it would cost to move it back (measured, not used)."""
    from django.contrib.gis.geos import Point

    from geo.models import GridCell
    from geo.selectors import CellRef

    fields = ("id", "code", "district_id", "street_id", "community_id", "responsibility_grid_id")
    point = Point(float(lon), float(lat), srid=4326)
    row = GridCell.objects.filter(geom__covers=point).order_by("code").values_list(*fields).first()
    return CellRef(*row) if row else None


def bench_locate(n: int, chunk: int = 250) -> dict:
    """The three lookups over the same points, in alternating chunks (so load from elsewhere on the
    machine falls on all three): `cell_locate`, its ORM version, a raw prepared ST_Covers."""
    from django.db import connection

    from geo.selectors import cell_locate

    points = _points(n, seed=2)
    cur = connection.connection.cursor()  # the same psycopg connection, bypassing the ORM
    sql = (
        "SELECT id FROM geo_gridcell "
        "WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) ORDER BY code LIMIT 1"
    )

    def raw_locate(*, lon: float, lat: float) -> int:
        cur.execute(sql, [lon, lat], prepare=True)
        return cur.fetchone()[0]

    lookups = {
        "ours": lambda lon, lat: cell_locate(lon=lon, lat=lat).id,
        "orm": lambda lon, lat: _cell_locate_orm(lon=lon, lat=lat).id,
        "raw": lambda lon, lat: raw_locate(lon=lon, lat=lat),
    }
    seconds = dict.fromkeys(lookups, 0.0)
    ids: dict[str, list[int]] = {name: [] for name in lookups}
    for lookup in lookups.values():  # warm-up: plans, caches, the prepared statement
        for lon, lat in points[:200]:
            lookup(lon, lat)
    for i, start in enumerate(range(0, n, chunk)):
        batch = points[start : start + chunk]
        names = list(lookups)
        names = names[i % 3 :] + names[: i % 3]
        for name in names:
            lookup = lookups[name]
            t0 = time.perf_counter()
            ids[name] += [lookup(lon, lat) for lon, lat in batch]
            seconds[name] += time.perf_counter() - t0
    cur.close()
    return {
        "points": n,
        "ours_ms_per_point": round(seconds["ours"] / n * 1000, 3),
        "orm_ms_per_point": round(seconds["orm"] / n * 1000, 3),
        "raw_ms_per_point": round(seconds["raw"] / n * 1000, 3),
        "ratio": round(seconds["ours"] / seconds["raw"], 2),
        "orm_ratio": round(seconds["orm"] / seconds["raw"], 2),
        "same_cells": sum(a == b == c for a, b, c in zip(ids["ours"], ids["orm"], ids["raw"], strict=True)),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PATHS = {"service": "/api/cases/", "naive": "/bench/naive/cases/"}
WORKERS = 2


def _tree_cpu_seconds(root: int) -> float:
    """User + system CPU of process `root` and its descendants, reaped children included (Linux /proc)."""
    parents: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry)] = fields
            parents.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += sum(int(x) for x in stats[pid][11:15])  # utime stime cutime cstime
        todo += parents.get(pid, [])
    return total / os.sysconf("SC_CLK_TCK")


def _server_start(name: str, env: dict) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    if name == "service":  # the product as deployed: its ASGI application (HTTP + WebSocket), its settings
        app = ["gridmgmt.asgi:application", "--ws-max-size", "65536"]  # the protocol's 64 KiB frame limit
        env = {**env, "DJANGO_SETTINGS_MODULE": "gridmgmt.settings"}
    else:  # the naive baseline: plain Django ASGI, startproject + DRF settings
        app = ["--factory", "django.core.asgi:get_asgi_application"]
        env = {**env, "DJANGO_SETTINGS_MODULE": "bench.intake_naive_settings"}
    cmd = [sys.executable, "-m", "uvicorn", *app, "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(WORKERS), "--no-access-log", "--log-level", "warning"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env), f"http://127.0.0.1:{port}"


def _wait_up(server: subprocess.Popen, base: str) -> None:
    import requests

    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(base + "/", timeout=2)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("uvicorn did not start") from None
            time.sleep(0.2)


def _credentials(user) -> dict[str, dict[str, str]]:
    """Request headers per path: the product's API token; for the naive path (DRF's default session
    authentication) a session opened once, as a logged-in browser would hold it, and its CSRF token."""
    import string

    from django.test import Client
    from rest_framework.authtoken.models import Token

    token = Token.objects.get_or_create(user=user)[0].key
    browser = Client()
    browser.force_login(user)
    session = browser.cookies["sessionid"].value
    csrf = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    return {
        "service": {"Authorization": f"Token {token}"},
        "naive": {"Cookie": f"sessionid={session}; csrftoken={csrf}", "X-CSRFToken": csrf},
    }


BOUNDARY = uuid.uuid4().hex
MULTIPART_HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def _multipart(*, fields: dict | None = None, files: dict | None = None, last: bool = False) -> bytes:
    """multipart/form-data parts (as a browser or `requests` sends them); `last` closes the body."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in (fields or {}).items()
    ]
    for name, (filename, content_type, content) in (files or {}).items():
        head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        parts.append(f"{head}Content-Type: {content_type}\r\n\r\n".encode() + content + b"\r\n")
    if last:
        parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


def bench_http(n: int, rounds: int, clients: int, db_url: str) -> dict:
    """`rounds` alternating rounds of `n` reports on each path, each on its own server: reports/s per path,
    the ratio, and each server's CPU per report."""
    from gridmgmt.models import User

    headers = _credentials(User.objects.get(username="patrol"))
    warm_n = clients * 5
    points = _points((n * rounds + warm_n) * len(PATHS), seed=3)
    photo = _photo_200kb()
    photo_part = _multipart(files={"photos": ("photo.jpg", "image/jpeg", photo)}, last=True)
    # Production settings on loopback HTTP, as behind a proxy that terminates TLS.
    # No access log on either path: uvicorn's is off for both (--no-access-log), and so is the product's own.
    env = {**os.environ, "DATABASE_URL": db_url, "DEBUG": "0", "LOG_LEVEL": "ERROR", "ACCESS_LOG_LEVEL": "WARNING"}
    env.update(ALLOWED_HOSTS="127.0.0.1", SECURE_SSL_REDIRECT="0")
    servers = {name: _server_start(name, env) for name in PATHS}
    results = {
        name: {"reports": 0, "seconds": 0.0, "cpu_seconds": 0.0, "statuses": {}, "rounds_rps": []} for name in PATHS
    }

    def run(name: str, batch: list[tuple[float, float]]) -> tuple[float, dict[int, int]]:
        lock = threading.Lock()
        queue = list(batch)
        statuses: dict[int, int] = {}
        address = urllib.parse.urlsplit(servers[name][1])

        def worker() -> None:
            # The client shares the 2 cores with both servers, so it is kept cheap, the same for both paths: one
            # keep-alive connection per thread, http.client, the multipart body around the photo built once.
            conn = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
            while True:
                with lock:
                    if not queue:
                        conn.close()
                        return
                    lon, lat = queue.pop()
                body = _multipart(fields={"category": "E0404", "lon": lon, "lat": lat, "description": "bench"})
                conn.request(
                    "POST",
                    PATHS[name],
                    body=body + photo_part,
                    headers={**headers[name], **MULTIPART_HEADERS, "Idempotency-Key": uuid.uuid4().hex},
                )
                response = conn.getresponse()
                response.read()
                with lock:
                    statuses[response.status] = statuses.get(response.status, 0) + 1

        started = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(clients)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        return time.perf_counter() - started, statuses

    try:
        for server, base in servers.values():
            _wait_up(server, base)
        for name in PATHS:  # warm-up: each worker process loads its code (and the product its pool)
            _, statuses = run(name, [points.pop() for _ in range(warm_n)])
            if set(statuses) != {201}:
                raise RuntimeError(f"warm-up of {name}: statuses {statuses}")
        for _ in range(rounds):
            for name in PATHS:
                cpu = _tree_cpu_seconds(servers[name][0].pid)
                seconds, statuses = run(name, [points.pop() for _ in range(n)])
                res = results[name]
                res["cpu_seconds"] += _tree_cpu_seconds(servers[name][0].pid) - cpu
                res["reports"] += n
                res["seconds"] += seconds
                for code, count in statuses.items():
                    res["statuses"][str(code)] = res["statuses"].get(str(code), 0) + count
                res["rounds_rps"].append(round(statuses.get(201, 0) / seconds, 1))
    finally:
        for server, _ in servers.values():
            server.terminate()
        for server, _ in servers.values():
            server.wait(timeout=20)
    for res in results.values():
        res["seconds"] = round(res["seconds"], 3)
        res["server_cpu_ms_per_report"] = round(res.pop("cpu_seconds") / res["reports"] * 1000, 1)
        res["reports_per_second"] = round(res["statuses"].get("201", 0) / res["seconds"], 1)
    return {
        "photo_bytes": len(photo),
        "clients": clients,
        "server_workers": WORKERS,
        "rounds": rounds,
        **results,
        "ratio": round(results["service"]["reports_per_second"] / results["naive"]["reports_per_second"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service", type=int, default=2000)
    parser.add_argument("--http", type=int, default=300, help="reports per path per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--locate", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    # One key for this process and both servers: the naive server must accept the session opened here.
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))

    db_url = _ensure_bench_db()
    os.environ["DATABASE_URL"] = db_url
    import _setup
    from django.db import connection

    assert connection.settings_dict["NAME"].endswith("_bench"), connection.settings_dict["NAME"]

    service = bench_service(args.service)
    print(f"service: {service['reports_per_second']} reports/s ({service['reports']} in {service['seconds']} s)")
    locate = bench_locate(args.locate)
    print(
        f"locate: ours {locate['ours_ms_per_point']} ms/point, ORM {locate['orm_ms_per_point']} ms/point, "
        f"raw prepared ST_Covers {locate['raw_ms_per_point']} ms/point → ratio {locate['ratio']} "
        f"(ORM {locate['orm_ratio']}; same cell {locate['same_cells']}/{args.locate})"
    )
    http = bench_http(args.http, args.rounds, args.clients, db_url)
    for name in PATHS:
        res = http[name]
        print(
            f"http {name}: {res['reports_per_second']} reports/s with a {http['photo_bytes'] // 1024} KB photo "
            f"(rounds {res['rounds_rps']}; {args.clients} clients, statuses {res['statuses']}; "
            f"server CPU {res['server_cpu_ms_per_report']} ms a report)"
        )
    print(f"http ratio: service / naive = {http['ratio']}")
    targets = {"http_ratio_min": 3.0, "locate_ratio_max": 1.5}
    passed = http["ratio"] >= targets["http_ratio_min"] and locate["ratio"] <= targets["locate_ratio_max"]
    path = _setup.results_write(
        "intake",
        {"service": service, "http": http, "locate": locate, "targets": targets, "pass": passed},
    )
    print(f"{'PASS' if passed else 'FAIL'} → {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
