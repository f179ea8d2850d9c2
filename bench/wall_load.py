"""The live wall under the full Pudong grid and 100,000 cases (issue 5, item 8).

    .venv/bin/python bench/wall_load.py [--cases 100000] [--tiles 40] [--runs 3]

Runs against the benchmark database `<DATABASE_URL's name>_bench` (created and loaded with the demo by
bench/intake.py's set-up), topped up with synthetic cases to `--cases` (inserted by one SQL statement,
spread over the grid and the last 30 days, ~10 % open; they stay there for later runs). Measures:

1. time to the first complete wall render in Chromium (1920×1080 and 3840×2160): navigation start until
   the snapshot (KPIs, per-cell counts, 7-day heat, cameras, ticker), the viewport's open cases and the
   teams are drawn; median of `--runs` (the first run is cold), with the bytes the page transferred;
2. cell vector tiles: response time p50/p95 and bytes per zoom 11–17, over `--tiles` tiles per zoom
   around random cells (below zoom 13 the endpoint answers an empty tile by design);
3. the baseline: the same cells as one GeoJSON document through the REST serializer (CellSerializer, as
   /api/cells/ would render them without its bbox guard), time and bytes, and the ratios.

Targets: first render ≤ 3 s, tile p95 ≤ 100 ms, ≥ 10× less time than the single-GeoJSON baseline.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
DISTRICT = "310115"

_TOP_UP_SQL = """
WITH cells AS (
    SELECT array_agg(id ORDER BY id) AS ids FROM geo_gridcell
    WHERE district_id = (SELECT id FROM geo_adminarea WHERE code = %(district)s)
), cats AS (
    SELECT array_agg(id ORDER BY id) AS ids FROM gridmgmt_category WHERE parent_id IS NOT NULL AND is_active
), picks AS (
    -- A join, not scalar subqueries: those would be evaluated once and put every case in one cell.
    SELECT g,
           cells.ids[1 + floor(random() * array_length(cells.ids, 1))::int] AS cell_id,
           cats.ids[1 + floor(random() * array_length(cats.ids, 1))::int] AS category_id,
           random() AS r,
           now() - random() * interval '30 days' AS at
    FROM generate_series(1, %(n)s) g CROSS JOIN cells CROSS JOIN cats
)
INSERT INTO gridmgmt_case (code, point, address, cell_id, community_id, street_id, district_id,
    responsibility_grid_id, category_id, source, urgency, status, level, description, reporter_name,
    reporter_phone, external_id, supporters, reported_at, updated_at, version, deadline_at, warn_at,
    closed_at, due_at, satisfaction)
SELECT 'WB' || lpad((%(start)s + g)::text, 10, '0'), c.center, '', c.id, c.community_id, c.street_id,
    c.district_id, c.responsibility_grid_id, p.category_id, 'patrol', 'normal',
    CASE WHEN p.r < 0.03 THEN 'reported' WHEN p.r < 0.06 THEN 'filed' WHEN p.r < 0.10 THEN 'handling'
         ELSE 'closed' END,
    0, 'bench', '', '', '', 0, p.at, now(), 0,
    CASE WHEN p.r >= 0.03 AND p.r < 0.10 THEN p.at + interval '2 days' END,
    CASE WHEN p.r >= 0.03 AND p.r < 0.10 THEN p.at + interval '36 hours' END,
    CASE WHEN p.r >= 0.10 THEN p.at + interval '1 day' END,
    CASE WHEN p.r >= 0.03 THEN p.at + interval '3 days' END,
    CASE WHEN p.r >= 0.10 THEN 3 + floor(random() * 3)::int END
FROM picks p JOIN geo_gridcell c ON c.id = p.cell_id
"""


def cases_top_up(target: int) -> dict:
    from django.db import connection

    from gridmgmt.models import Case

    have = Case.objects.count()
    added = 0
    if have < target:
        started = time.perf_counter()
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM gridmgmt_case WHERE code LIKE 'WB%%'")
            start = cur.fetchone()[0]
            cur.execute(_TOP_UP_SQL, {"district": DISTRICT, "n": target - have, "start": start})
            added = cur.rowcount
            cur.execute("ANALYZE gridmgmt_case")
        print(f"added {added} synthetic cases in {time.perf_counter() - started:.1f} s")
    return {"cases": Case.objects.count(), "added": added}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_start(db_url: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "DEBUG": "0", "SERVE_STATIC": "1", "LOG_LEVEL": "ERROR"}
    cmd = [sys.executable, "-m", "uvicorn", "gridmgmt.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--ws-max-size", "65536"]  # the protocol's 64 KiB frame limit, before buffering
    cmd += ["--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/accounts/login/", timeout=2).read()
            return proc, base
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.terminate()
                raise RuntimeError("uvicorn did not start") from None
            time.sleep(0.2)


def wall_render(base: str, *, runs: int, viewports: list[tuple[int, int]]) -> dict:
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for width, height in viewports:
            context = browser.new_context(
                locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": width, "height": height}
            )
            login = context.new_page()
            login.goto(base + "/accounts/login/")
            login.fill("input[name=username]", "wall")
            login.fill("input[name=password]", "demo1234")
            login.click("main button[type=submit]")
            login.wait_for_load_state("networkidle")
            login.close()
            times, sizes, cases = [], [], None
            for _ in range(runs):
                page = context.new_page()
                started = time.perf_counter()
                page.goto(base + "/wall/")
                page.wait_for_function("window.gridmgmtWall && window.gridmgmtWall.ready === true", timeout=60_000)
                times.append(time.perf_counter() - started)
                sizes.append(
                    page.evaluate(
                        "performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))"
                        ".reduce((s, e) => s + (e.transferSize || e.encodedBodySize || 0), 0)"
                    )
                )
                cases = page.evaluate("[gridmgmtWall.viewportCases, gridmgmtWall.viewportTotal, gridmgmtMap.getZoom()]")
                page.close()
            context.close()
            out[f"{width}x{height}"] = {
                "first_render_s": [round(t, 3) for t in times],
                "median_s": round(statistics.median(times), 3),
                "cold_s": round(times[0], 3),
                "bytes": sizes[0],
                "viewport_cases_drawn": cases[0],
                "viewport_open_cases": cases[1],
                "zoom": cases[2],
            }
        browser.close()
    return out


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def tiles(base: str, *, per_zoom: int) -> dict:
    import http.client
    from urllib.parse import urlsplit

    from geo.models import GridCell

    rng = random.Random(11)
    centers = list(
        GridCell.objects.filter(district__code=DISTRICT).order_by("?").values_list("center", flat=True)[:2000]
    )
    host = urlsplit(base)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
    out = {}
    for z in range(11, 18):
        addresses = list({_tile_of(p.x, p.y, z) for p in centers})
        rng.shuffle(addresses)
        addresses = addresses[:per_zoom]
        times, sizes = [], []
        for x, y in addresses:
            started = time.perf_counter()
            conn.request("GET", f"/tiles/cells/{z}/{x}/{y}.pbf")
            body = conn.getresponse().read()
            times.append((time.perf_counter() - started) * 1000)
            sizes.append(len(body))
        times.sort()
        out[str(z)] = {
            "tiles": len(times),
            "p50_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)], 2),
            "mean_bytes": round(statistics.mean(sizes)),
        }
    conn.close()
    return out


def geojson_baseline() -> dict:
    from rest_framework.renderers import JSONRenderer

    from geo.models import GridCell
    from gridmgmt.api.serializers import CellSerializer

    qs = GridCell.objects.filter(district__code=DISTRICT).select_related(
        "district", "street", "community", "responsibility_grid"
    )
    started = time.perf_counter()
    data = CellSerializer(qs, many=True).data
    body = JSONRenderer().render(data)
    seconds = time.perf_counter() - started
    return {"cells": len(data["features"]), "seconds": round(seconds, 2), "bytes": len(body)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--tiles", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-baseline", action="store_true", help="reuse the last baseline measurement")
    args = parser.parse_args()

    from intake import _ensure_bench_db

    db_url = _ensure_bench_db()
    os.environ["DATABASE_URL"] = db_url
    import _setup

    from geo.models import GridCell

    data = cases_top_up(args.cases)
    data["cells"] = GridCell.objects.filter(district__code=DISTRICT).count()
    proc, base = server_start(db_url)
    try:
        data["wall"] = wall_render(base, runs=args.runs, viewports=[(1920, 1080), (3840, 2160)])
        data["tiles"] = tiles(base, per_zoom=args.tiles)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    for size, w in data["wall"].items():
        print(f"wall {size}: first render {w['first_render_s']} s (median {w['median_s']} s), {w['bytes']} bytes")
    for z, t in data["tiles"].items():
        print(f"tiles z{z}: p50 {t['p50_ms']} ms, p95 {t['p95_ms']} ms, {t['mean_bytes']} bytes/tile")
    previous = _setup.RESULTS / "wall_load.json"
    if args.skip_baseline and previous.exists() and "baseline_geojson" in json.loads(previous.read_text()):
        # The baseline takes minutes and does not depend on the wall: reuse the last measurement.
        data["baseline_geojson"] = {**json.loads(previous.read_text())["baseline_geojson"], "reused": True}
    elif not args.skip_baseline:
        data["baseline_geojson"] = geojson_baseline()
    if "baseline_geojson" in data:
        base_line = data["baseline_geojson"]
        wall = data["wall"]["1920x1080"]
        data["ratios"] = {
            "time": round(base_line["seconds"] / wall["cold_s"], 1),
            "bytes": round(base_line["bytes"] / max(1, wall["bytes"]), 1),
        }
        print(
            f"baseline: {base_line['cells']} cells as one GeoJSON via CellSerializer in {base_line['seconds']} s, "
            f"{base_line['bytes']} bytes → wall is {data['ratios']['time']}× faster, "
            f"{data['ratios']['bytes']}× fewer bytes"
        )
    p95 = max(t["p95_ms"] for t in data["tiles"].values())
    data["targets"] = {
        "first_render_le_3s": all(w["cold_s"] <= 3 for w in data["wall"].values()),
        "tile_p95_le_100ms": p95 <= 100,
        "ten_times_faster_than_geojson": data.get("ratios", {}).get("time", 0) >= 10,
    }
    path = _setup.results_write("wall_load", data)
    print(f"targets: {data['targets']} → {path}")


if __name__ == "__main__":
    main()
