"""Intake throughput on the Pudong demo data (issue 3, item 9).

    .venv/bin/python bench/intake.py [--service 2000] [--http 600] [--locate 5000] [--clients 8]

Runs against its own database, `<DATABASE_URL's name>_bench`, loaded once with `migrate` + `demo_load`
(the case-event table is append-only, so benchmark reports must not land in the demo database):

1. reports/s through `services.case_report` (one transaction per report, no photo), one process;
2. reports/s through the HTTP API (`POST /api/cases/`, multipart with a ~200 KB photo, token auth) against
   uvicorn with 2 workers, from `--clients` concurrent client threads;
3. the locate step (`geo.selectors.cell_locate`) against a raw prepared `ST_Contains` query on the same
   points, as a ratio (target ≤ 1.5×).

Targets: ≥ 300 reports/s through the service, ≥ 100 reports/s with a photo through HTTP.
"""

from __future__ import annotations

import argparse
import io
import os
import random
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


def bench_locate(n: int) -> dict:
    from django.db import connection

    from geo.selectors import cell_locate

    points = _points(n, seed=2)
    for lon, lat in points[:200]:
        cell_locate(lon=lon, lat=lat)
    t0 = time.perf_counter()
    ours = [cell_locate(lon=lon, lat=lat).id for lon, lat in points]
    t_ours = time.perf_counter() - t0
    raw_conn = connection.connection  # the same psycopg connection, bypassing the ORM
    sql = (
        "SELECT id FROM geo_gridcell "
        "WHERE ST_Contains(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) ORDER BY code LIMIT 1"
    )
    with raw_conn.cursor() as cur:
        for lon, lat in points[:200]:
            cur.execute(sql, [lon, lat], prepare=True)
            cur.fetchone()
        t0 = time.perf_counter()
        raw = []
        for lon, lat in points:
            cur.execute(sql, [lon, lat], prepare=True)
            raw.append(cur.fetchone()[0])
        t_raw = time.perf_counter() - t0
    return {
        "points": n,
        "ours_ms_per_point": round(t_ours / n * 1000, 3),
        "raw_ms_per_point": round(t_raw / n * 1000, 3),
        "ratio": round(t_ours / t_raw, 2),
        "same_cells": sum(a == b for a, b in zip(ours, raw, strict=True)),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_http(n: int, clients: int, db_url: str) -> dict:
    import requests
    from rest_framework.authtoken.models import Token

    from gridmgmt.models import User

    token = Token.objects.get_or_create(user=User.objects.get(username="patrol"))[0].key
    points = _points(n + clients * 5, seed=3)
    photo = _photo_200kb()
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "DEBUG": "0", "LOG_LEVEL": "ERROR"}
    cmd = [sys.executable, "-m", "uvicorn", "gridmgmt.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", "2", "--no-access-log", "--log-level", "warning"]
    server = subprocess.Popen(cmd, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(base + "/api/categories/", timeout=2, headers={"Authorization": f"Token {token}"})
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("uvicorn did not start") from None
                time.sleep(0.2)
        lock = threading.Lock()
        queue = list(points)
        statuses: dict[int, int] = {}

        def worker(count_only: bool = False) -> None:
            session = requests.Session()
            session.headers["Authorization"] = f"Token {token}"
            while True:
                with lock:
                    if not queue:
                        return
                    lon, lat = queue.pop()
                r = session.post(
                    base + "/api/cases/",
                    data={"category": "E0404", "lon": lon, "lat": lat, "description": "bench"},
                    files={"photos": ("photo.jpg", photo, "image/jpeg")},
                    headers={"Idempotency-Key": uuid.uuid4().hex},
                    timeout=60,
                )
                with lock:
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        # Warm-up: each worker process loads its code and connections.
        warm = queue[: clients * 5]
        del queue[: clients * 5]
        queue_backup, queue[:] = list(queue), warm
        threads = [threading.Thread(target=worker) for _ in range(clients)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        queue[:] = queue_backup
        statuses.clear()
        started = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(clients)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=20)
    ok = statuses.get(201, 0)
    return {
        "reports": n,
        "photo_bytes": len(photo),
        "clients": clients,
        "server_workers": 2,
        "seconds": round(seconds, 3),
        "statuses": {str(k): v for k, v in statuses.items()},
        "reports_per_second": round(ok / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service", type=int, default=2000)
    parser.add_argument("--http", type=int, default=600)
    parser.add_argument("--locate", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    db_url = _ensure_bench_db()
    os.environ["DATABASE_URL"] = db_url
    import _setup
    from django.db import connection

    assert connection.settings_dict["NAME"].endswith("_bench"), connection.settings_dict["NAME"]

    service = bench_service(args.service)
    print(f"service: {service['reports_per_second']} reports/s ({service['reports']} in {service['seconds']} s)")
    locate = bench_locate(args.locate)
    print(
        f"locate: ours {locate['ours_ms_per_point']} ms/point, raw prepared ST_Contains "
        f"{locate['raw_ms_per_point']} ms/point → ratio {locate['ratio']} "
        f"(same cell {locate['same_cells']}/{args.locate})"
    )
    http = bench_http(args.http, args.clients, db_url)
    print(
        f"http: {http['reports_per_second']} reports/s with a {http['photo_bytes'] // 1024} KB photo "
        f"({args.clients} clients, statuses {http['statuses']})"
    )
    targets = {"service_rps_min": 300, "http_rps_min": 100, "locate_ratio_max": 1.5}
    passed = (
        service["reports_per_second"] >= targets["service_rps_min"]
        and http["reports_per_second"] >= targets["http_rps_min"]
        and locate["ratio"] <= targets["locate_ratio_max"]
    )
    path = _setup.results_write(
        "intake",
        {"service": service, "http": http, "locate": locate, "targets": targets, "pass": passed},
    )
    print(f"{'PASS' if passed else 'FAIL'} → {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
