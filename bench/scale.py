"""City scale (issue 13, item 6): 5,000,000 cases with their events over three years, and the reads that matter.

    .venv/bin/python bench/scale.py [--cases 5000000] [--reps 30] [--reload]

Runs on its own database, `<DATABASE_URL's name>_scale` on the same server (created, migrated and given the
Pudong demo set-up — grid, areas, categories, teams, users — by this script). The cases and events are made
inside PostgreSQL by set-based INSERT … SELECT over generate_series (no ORM, no Python loop), with the
non-constraint indexes of the two big tables dropped during the load and built afterwards:

- reports spread over three years up to now (ids in report order, as a live system appends them), over the
  Pudong cells with a skewed density (a few busy cells, a long quiet tail), each at one of 8 random points
  inside its cell; categories skewed the same way; sources patrol 30 %, inspector 12 %, camera 10 %,
  resident 14 %, hotline 32 %, assigned 2 %;
- each case walks the real workflow with random stage durations — reported → filed → dispatched → accepted
  (handling) → handled → check passed → closed → rated (30 %), or reported → self-handled → check passed →
  closed for 55 % of patrol/inspector finds, or reported → voided (3 %); 1 % are "stuck" (handling 20× longer)
  — and only the steps already in the past happened: the case's status, clocks and team are those of its
  last step, and its events are exactly those steps (from/to statuses chained, team and area ids copied,
  `on_time` / `on_time_overall` / `satisfaction` data as the services write them);
- then the KPI summary (gridmgmt.models.KpiDay, KpiDayDepartment) of every loaded event is built, as
  `manage.py kpi_summarize` (the deployed timer) builds and keeps it: part of the load's cost, timed as its own step.

Then measures p95 over `--reps` requests through the product's code paths (Django test client on the views,
or the selectors the views call), each next to the naive query a first version would run:

  desk queue page    GET /api/cases/?order=deadline&area=<street>       vs spatial join on the street polygon
  search             GET /api/cases/?search=<frag>&area=<street>          vs the same condition, indexes off
  case detail        GET /api/cases/<id>/ and its events                 vs the events by an unindexed scan
  KPIs month/street  GET /api/kpis/?start&end&group_by=street            vs areas by spatial join
  KPIs year/team     GET /api/kpis/?start&end&group_by=team (a year)     vs the same from the events (no summary)
  KPIs year/dept     GET /api/kpis/?start&end&group_by=department         vs the same from the events (no summary)
  wall snapshot      GET /wall/snapshot.json (every part)
  wall cells         GET /wall/snapshot.json?only=cells                 vs per-cell counts by spatial join
  statistics data    GET /api/kpis/?group_by=month over a year (the /stats/ page reads /api/kpis/, and the
  Excel export renders that same response: a month's export costs "KPIs month/street")

Targets: p95 ≤ 200 ms desk reads and search, ≤ 1 s month KPIs, ≤ 1.5 s wall snapshot.
Results: bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DISTRICT = "310115"  # Pudong


def _db_url() -> tuple[str, str, str]:
    """(app URL, scale URL, scale database name) from DATABASE_URL or var/local.env, without settings."""
    url = os.environ.get("DATABASE_URL")
    env_file = ROOT / "var" / "local.env"
    if not url and env_file.exists():
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "DATABASE_URL":
                url = value.strip()
    if not url:
        raise SystemExit("DATABASE_URL is not set and var/local.env is missing: run `make services` first")
    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/") + "_scale"
    return url, urllib.parse.urlunsplit(parts._replace(path="/" + name)), name


def _admin_connect(url: str):
    import psycopg

    admin = urllib.parse.urlsplit(url)
    host = urllib.parse.unquote(admin.hostname or "") or urllib.parse.unquote(admin.netloc.split("@")[-1])
    conninfo = dict(dbname="postgres", user=urllib.parse.unquote(admin.username or ""), host=host or None)
    if admin.port:
        conninfo["port"] = admin.port
    if admin.password:
        conninfo["password"] = urllib.parse.unquote(admin.password)
    return psycopg.connect(**{k: v for k, v in conninfo.items() if v}, autocommit=True)


def demo_copy_ensure(suffix: str, *, commands: tuple[tuple[str, ...], ...] = ()) -> str:
    """A database `<app name><suffix>` for another benchmark: a copy of this script's template (the Pudong demo
    set-up) when there is one, else migrated and given the demo; then `commands` (manage.py arguments, errors
    ignored). Points DATABASE_URL at it and returns its URL."""
    app_url, _scale_url, scale_name = _db_url()
    parts = urllib.parse.urlsplit(app_url)
    name = parts.path.lstrip("/") + suffix
    url = urllib.parse.urlunsplit(parts._replace(path="/" + name))
    template = scale_name + "_template"
    with _admin_connect(app_url) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        have_template = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [template]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if have_template else ""))
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    if not exists and not have_template:
        subprocess.run([sys.executable, "manage.py", "demo_load"], cwd=ROOT, env=env, check=True)
    for command in commands:
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=False)
    os.environ["DATABASE_URL"] = url
    return url


def db_ensure(*, reload: bool) -> tuple[str, bool]:
    """The scale database, migrated, with the demo set-up; True when it was (re)created."""
    app_url, url, name = _db_url()
    template = name + "_template"  # the migrated demo set-up, copied for a reload (demo_load takes minutes)
    with _admin_connect(app_url) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and reload:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        have_template = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [template]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if have_template else ""))
    env = {**os.environ, "DATABASE_URL": url}
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    if not exists and not have_template:
        subprocess.run([py, "manage.py", "demo_load"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        with _admin_connect(app_url) as conn:
            conn.execute(f'CREATE DATABASE "{template}" TEMPLATE "{name}"')
    os.environ["DATABASE_URL"] = url
    return url, not exists


# ---------------------------------------------------------------------------------------------------- loading

_PREP_SQL = """
DROP TABLE IF EXISTS scale_cells, scale_cats, scale_teams, scale_plan;
-- The district's cells in a fixed pseudo-random order (the density skew picks low ranks more often), each with
-- 8 random points inside it.
CREATE UNLOGGED TABLE scale_cells AS
SELECT row_number() OVER (ORDER BY md5(c.id::text)) AS rank, c.id, c.community_id, c.street_id, c.district_id,
       c.responsibility_grid_id,
       (SELECT array_agg((d).geom) FROM ST_Dump(ST_GeneratePoints(c.geom, 8, c.id::int)) d) AS points
FROM geo_gridcell c
WHERE c.district_id = (SELECT id FROM geo_adminarea WHERE code = %(district)s);
CREATE UNIQUE INDEX ON scale_cells (rank);
CREATE UNLOGGED TABLE scale_cats AS
SELECT row_number() OVER (ORDER BY md5(c.id::text)) AS rank, c.id, c.name, c.default_department_id,
       CASE WHEN c.limit_unit IN ('hours', 'working_hours') THEN greatest(c.limit_normal, 1) * interval '1 hour'
            ELSE greatest(c.limit_normal, 1) * interval '1 day' END AS handling_limit
FROM gridmgmt_category c WHERE c.parent_id IS NOT NULL AND c.is_active;
CREATE UNIQUE INDEX ON scale_cats (rank);
-- A street's teams (else the district's).
CREATE UNLOGGED TABLE scale_teams AS
SELECT s.street_id, coalesce(
           (SELECT array_agg(t.id ORDER BY t.id) FROM gridmgmt_patrolteam t WHERE t.street_id = s.street_id),
           (SELECT array_agg(t.id ORDER BY t.id) FROM gridmgmt_patrolteam t
            WHERE t.district_id = (SELECT id FROM geo_adminarea WHERE code = %(district)s))) AS ids
FROM (SELECT DISTINCT street_id FROM scale_cells) s;
"""

# One row per case: where, what, and when each workflow step happens (NULL: a step the case never takes).
_PLAN_SQL = """
CREATE UNLOGGED TABLE scale_plan AS
WITH base AS (
    SELECT g,
           %(t0)s::timestamptz + (g::float8 / %(n)s) * interval '1095 days' + random() * interval '20 minutes'
               AS t_rep,
           1 + floor((SELECT count(*) FROM scale_cells) * power(random(), 2.2))::int AS cell_rank,
           1 + floor((SELECT count(*) FROM scale_cats) * power(random(), 1.8))::int AS cat_rank,
           1 + floor(random() * 8)::int AS point_no,
           random() AS r_source, random() AS r_path, random() AS r_rated, random() AS r_stuck,
           random() AS r_urgent
    FROM generate_series(1::bigint, %(n)s::bigint) g
), sourced AS (
    SELECT b.*,
           CASE WHEN r_source < 0.30 THEN 'patrol' WHEN r_source < 0.42 THEN 'inspector'
                WHEN r_source < 0.52 THEN 'camera' WHEN r_source < 0.66 THEN 'resident'
                WHEN r_source < 0.98 THEN 'hotline' ELSE 'assigned' END AS source
    FROM base b
), pathed AS (
    SELECT s.*,
           CASE WHEN r_path < 0.03 THEN 'voided'
                WHEN source IN ('patrol', 'inspector') AND r_path < 0.58 THEN 'self'
                ELSE 'full' END AS path
    FROM sourced s
), timed AS (
    SELECT p.*,
           t_rep + (5 + random() * 55) * interval '1 minute' AS t_filed,  -- also the voiding time
           (2 + random() * 28) * interval '1 minute' AS d_disp,
           (5 + random() * 115) * interval '1 minute' AS d_acc,
           (1 + power(random(), 2) * 40) * interval '1 hour' * CASE WHEN r_stuck < 0.01 THEN 20 ELSE 1 END
               AS d_hand,
           (0.5 + random() * 23.5) * interval '1 hour' AS d_check,
           (10 + random() * 470) * interval '1 minute' AS d_close,
           (1 + random() * 47) * interval '1 hour' AS d_rate,
           1 + floor(power(random(), 0.4) * 5)::int AS satisfaction
    FROM pathed p
)
SELECT g, cell_rank, cat_rank, point_no, source, path, r_urgent < 0.08 AS urgent, satisfaction,
       t_rep,
       CASE WHEN path = 'voided' THEN t_filed END AS t_void,
       CASE WHEN path = 'full' THEN t_filed END AS t_filed,
       CASE WHEN path = 'full' THEN t_filed + d_disp END AS t_disp,
       CASE WHEN path = 'full' THEN t_filed + d_disp + d_acc END AS t_acc,
       CASE WHEN path = 'full' THEN t_filed + d_disp + d_acc + d_hand
            WHEN path = 'self' THEN t_rep + (10 + random() * 50) * interval '1 minute' END AS t_hand,
       CASE WHEN path = 'full' THEN t_filed + d_disp + d_acc + d_hand + d_check
            WHEN path = 'self' THEN t_rep + interval '1 hour' + d_check END AS t_check,
       CASE WHEN path = 'full' THEN t_filed + d_disp + d_acc + d_hand + d_check + d_close
            WHEN path = 'self' THEN t_rep + interval '1 hour' + d_check + d_close END AS t_close,
       CASE WHEN path = 'full' AND r_rated < 0.30 THEN t_filed + d_disp + d_acc + d_hand + d_check + d_close + d_rate
            END AS t_rate
FROM timed;
"""

# Steps in the past only (`now` cuts the story); the case row shows its last step.
_CASES_SQL = """
INSERT INTO gridmgmt_case (id, code, point, address, cell_id, community_id, street_id, district_id,
    responsibility_grid_id, category_id, source, urgency, status, level, description, reporter_name,
    reporter_phone, external_id, idempotency_scope, tracking_token_hash, sms_token_hash, supporters, satisfaction,
    reported_at, stage_started_at, due_at, warn_at, accepted_at, send_back_count, rework_count, extension_pending,
    hotline_reply, dispatch_deadline_at, deadline_at, closed_at, updated_at, version, team_id, department_id)
SELECT %(base)s + p.g, 'SC' || lpad((%(base)s + p.g)::text, 9, '0'), c.points[p.point_no],
    (%(roads)s::text[])[1 + (p.g * 7919) %% %(n_roads)s] || (1 + (p.g * 104729) %% 1500) || '号',
    c.id, c.community_id, c.street_id, c.district_id, c.responsibility_grid_id, k.id, p.source,
    CASE WHEN p.urgent THEN 'urgent' ELSE 'normal' END,
    st.status, 0,
    k.name || ':' || (%(phrases)s::text[])[1 + (p.g * 31) %% %(n_phrases)s] || ',' ||
        (%(phrases)s::text[])[1 + (p.g * 17 + p.g / 7) %% %(n_phrases)s] || '。编号' || p.g,
    '', '', CASE WHEN p.source = 'hotline' THEN 'H' || p.g ELSE '' END, '', '', '', 0,
    CASE WHEN p.t_rate <= %(now)s THEN p.satisfaction END,
    p.t_rep, st.stage_started_at,
    CASE WHEN p.t_filed <= %(now)s THEN p.t_filed + k.handling_limit + interval '1 day' END,
    CASE WHEN st.deadline_at IS NOT NULL THEN st.deadline_at - (st.deadline_at - st.stage_started_at) / 4 END,
    CASE WHEN p.t_acc <= %(now)s THEN p.t_acc END, 0, 0, false, '',
    CASE WHEN p.t_filed <= %(now)s THEN p.t_filed + interval '30 minutes' END,
    st.deadline_at,
    CASE WHEN p.t_close <= %(now)s THEN p.t_close END,
    greatest(p.t_rep, st.stage_started_at), st.version,
    CASE WHEN p.t_disp <= %(now)s OR p.t_hand <= %(now)s
         THEN tm.ids[1 + (p.g %% array_length(tm.ids, 1))] END,
    k.default_department_id  -- services.moves.department_route without a component
FROM scale_plan p
JOIN scale_cells c ON c.rank = p.cell_rank
JOIN scale_cats k ON k.rank = p.cat_rank
JOIN scale_teams tm ON tm.street_id IS NOT DISTINCT FROM c.street_id
CROSS JOIN LATERAL (
    SELECT CASE WHEN p.t_close <= %(now)s THEN 'closed' WHEN p.t_check <= %(now)s THEN 'checked'
                WHEN p.t_hand <= %(now)s THEN 'handled' WHEN p.t_acc <= %(now)s THEN 'handling'
                WHEN p.t_disp <= %(now)s THEN 'dispatched' WHEN p.t_filed <= %(now)s THEN 'filed'
                WHEN p.t_void <= %(now)s THEN 'voided' ELSE 'reported' END AS status,
           coalesce(CASE WHEN p.t_close <= %(now)s THEN p.t_close END,
                    CASE WHEN p.t_check <= %(now)s THEN p.t_check END,
                    CASE WHEN p.t_hand <= %(now)s THEN p.t_hand END, CASE WHEN p.t_acc <= %(now)s THEN p.t_acc END,
                    CASE WHEN p.t_disp <= %(now)s THEN p.t_disp END, CASE WHEN p.t_filed <= %(now)s THEN p.t_filed END,
                    CASE WHEN p.t_void <= %(now)s THEN p.t_void END, p.t_rep) AS stage_started_at,
           -- the current stage's deadline: dispatching 30 min after filing, handling the category's limit
           CASE WHEN p.t_disp <= %(now)s THEN p.t_disp + k.handling_limit
                WHEN p.t_filed <= %(now)s THEN p.t_filed + interval '30 minutes' END AS deadline_at,
           (SELECT count(*) FROM unnest(ARRAY[p.t_filed, p.t_disp, p.t_acc, p.t_hand, p.t_check, p.t_close, p.t_void]) t
            WHERE t <= %(now)s)::int AS version
) st
"""

_EVENTS_SQL = """
INSERT INTO gridmgmt_caseevent (case_id, type, actor_role, from_status, to_status, at, note, data,
    district_id_copy, street_id_copy, community_id_copy, team_id_copy, department_id_copy)
SELECT c.id, s.type, s.role, s.from_status, s.to_status, s.at, '', s.data,
       c.district_id, c.street_id, c.community_id, CASE WHEN s.teamed THEN c.team_id END, c.department_id
FROM scale_plan p
JOIN gridmgmt_case c ON c.id = %(base)s + p.g
CROSS JOIN LATERAL (VALUES
    (1, 'reported', '', '', 'reported', p.t_rep, '{}'::jsonb, false),
    (2, 'voided', 'dispatcher', 'reported', 'voided', p.t_void, '{}'::jsonb, false),
    (2, 'filed', 'dispatcher', 'reported', 'filed', p.t_filed, '{}'::jsonb, false),
    (3, 'dispatched', 'dispatcher', 'filed', 'dispatched', p.t_disp, '{}'::jsonb, true),
    (4, 'accepted', 'patrol', 'dispatched', 'handling', p.t_acc, '{}'::jsonb, true),
    (5, CASE WHEN p.path = 'self' THEN 'self_handled' ELSE 'handled' END, 'patrol',
        CASE WHEN p.path = 'self' THEN 'reported' ELSE 'handling' END, 'handled', p.t_hand,
        CASE WHEN p.path = 'self' THEN '{"on_time": true}'::jsonb
             ELSE jsonb_build_object('on_time', p.t_hand <= c.deadline_at) END, true),
    (6, 'check_passed', 'inspector', 'handled', 'checked', p.t_check, '{}'::jsonb, true),
    (7, 'closed', 'leader', 'checked', 'closed', p.t_close,
        jsonb_build_object('on_time_overall', p.t_close <= c.due_at), true),
    (8, 'rated', '', 'closed', 'closed', p.t_rate, jsonb_build_object('satisfaction', p.satisfaction), true)
) AS s(step, type, role, from_status, to_status, at, data, teamed)
WHERE s.at <= %(now)s
ORDER BY p.g, s.step
"""

ROADS = [
    "世纪大道", "张杨路", "浦东大道", "东方路", "杨高中路", "锦绣路", "龙阳路", "金科路", "张江路", "川沙路",
    "罗山路", "沪南路", "周浦大道", "惠南路", "浦建路", "成山路", "高科西路", "金桥路", "云山路", "博兴路",
    "长清路", "洪山路", "源深路", "崂山路", "峨山路", "潍坊路", "松林路", "福山路", "陆家嘴环路", "银城中路",
]  # fmt: skip
PHRASES = [
    "井盖破损", "路灯不亮", "占道经营", "垃圾满溢", "绿化带损坏", "乱停车", "违章搭建", "道路积水", "噪音扰民",
    "油烟污染", "小广告", "共享单车乱停", "树木倒伏", "人行道破损", "施工围挡破损", "排水管堵塞", "暴露垃圾",
    "非机动车乱停", "店外经营", "沿街晾晒", "渣土撒落", "护栏损坏", "路面坑洼", "消防通道堵塞", "河道漂浮物",
    "群租", "宠物扰民", "违规广告牌", "门前三包不落实", "工地夜间施工", "公厕脏乱", "窨井盖缺失", "水管爆裂",
    "电线私拉乱接", "违规养禽", "机动车占用人行道", "积存垃圾渣土", "街面秩序", "无证设摊", "公共设施损坏",
]  # fmt: skip


def _timed(cur, label: str, sql: str, params=None, log: dict | None = None) -> float:
    started = time.perf_counter()
    cur.execute(sql, params)
    took = time.perf_counter() - started
    print(f"  {label:<34} {took:7.1f} s  ({cur.rowcount if cur.rowcount >= 0 else '-'} rows)", flush=True)
    if log is not None:
        log[label] = round(took, 1)
    return took


def _droppable_indexes(cur, table: str) -> list[tuple[str, str]]:
    """(name, definition) of `table`'s indexes that back no constraint (primary key, unique)."""
    cur.execute(
        """SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
           WHERE x.indrelid = %s::regclass AND NOT EXISTS (
               SELECT 1 FROM pg_constraint k
               WHERE k.conindid = i.oid AND k.conrelid = x.indrelid AND k.contype IN ('p', 'u', 'x'))""",
        [table],
    )
    return cur.fetchall()


def load(*, n: int, now: datetime) -> dict:
    from django.db import connection

    steps: dict[str, float] = {}
    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) FROM gridmgmt_case")
        base = cur.fetchone()[0]
        cur.execute("SET maintenance_work_mem = '512MB'")
        cur.execute("SET work_mem = '256MB'")
        # Bulk load: the big tables' own triggers (append-only guard, feed) and foreign-key checks off for this
        # session; the rows are made consistent by construction.
        cur.execute("SET session_replication_role = replica")
        _timed(cur, "prepare cells/categories/teams", _PREP_SQL, {"district": DISTRICT}, steps)
        t0 = now - timedelta(days=1095)
        _timed(cur, "plan (one row per case)", _PLAN_SQL, {"n": n, "t0": t0}, steps)
        dropped = _droppable_indexes(cur, "gridmgmt_case") + _droppable_indexes(cur, "gridmgmt_caseevent")
        for name, _definition in dropped:
            cur.execute(f'DROP INDEX "{name}"')
        params = {
            "base": base,
            "now": now,
            "roads": ROADS,
            "n_roads": len(ROADS),
            "phrases": PHRASES,
            "n_phrases": len(PHRASES),
        }
        try:
            _timed(cur, "cases", _CASES_SQL, params, steps)
            cases = cur.rowcount
            _timed(cur, "events", _EVENTS_SQL, params, steps)
            events = cur.rowcount
        finally:  # a failed load must not leave the tables without their indexes
            index_started = time.perf_counter()
            for _name, definition in dropped:
                cur.execute(definition)
            steps["indexes"] = round(time.perf_counter() - index_started, 1)
            print(f"  {'indexes (' + str(len(dropped)) + ')':<34} {steps['indexes']:7.1f} s", flush=True)
        cur.execute("SET session_replication_role = DEFAULT")
        cur.execute("SELECT setval(pg_get_serial_sequence('gridmgmt_case', 'id'), (SELECT max(id) FROM gridmgmt_case))")
        cur.execute("DROP TABLE scale_plan, scale_cells, scale_cats, scale_teams")
        _timed(cur, "vacuum analyze", "VACUUM (ANALYZE) gridmgmt_case, gridmgmt_caseevent", None, steps)
    # The KPI summary (gridmgmt.models.KpiDay, KpiDayDepartment) of every loaded event, as `manage.py
    # kpi_summarize` builds it.
    from gridmgmt.kpi import kpi_summary_refresh

    summary_started = time.perf_counter()
    kpi_summary_refresh()
    steps["kpi summary"] = round(time.perf_counter() - summary_started, 1)
    print(f"  {'kpi summary (kpi_summarize)':<34} {steps['kpi summary']:7.1f} s", flush=True)
    with connection.cursor() as cur:
        cur.execute("VACUUM (ANALYZE) gridmgmt_kpiday, gridmgmt_kpidaydepartment, gridmgmt_kpivolatile")
    total = time.perf_counter() - started
    print(f"  loaded {cases} cases, {events} events in {total:.0f} s", flush=True)
    return {"cases": cases, "events": events, "seconds": round(total, 1), "steps": steps}


# ------------------------------------------------------------------------------------------------- measuring


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def timing(fn, reps: int, budget_s: float = 60.0, min_reps: int = 3, warm: bool = True) -> dict:
    """p50/p95 over `reps` calls (after one warm-up), fewer (at least `min_reps`) past `budget_s`."""
    if warm:
        fn()  # warm the plan and the connection
    times: list[float] = []
    spent = 0.0
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
        spent += times[-1] / 1000
        if spent > budget_s and len(times) >= min_reps:
            break
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(_p(times, 0.95), 1), "n": len(times)}


def _sql(sql: str, params=None, *, settings: str = "") -> list:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cur:
        if settings:
            cur.execute(settings)
        cur.execute(sql, params)
        return cur.fetchall()


UNINDEXED = "SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_indexonlyscan = off"


def measure(*, reps: int, naive_reps: int, only: set[str] | None = None, save=lambda out: None) -> dict:
    import random

    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from geo.models import AdminArea
    from gridmgmt import access, kpi
    from gridmgmt.models import Case, User

    rng = random.Random(7)
    district = AdminArea.objects.get(code=DISTRICT)
    user = (
        User.objects.filter(role=User.Role.DISPATCHER, area=district).first()
        or User.objects.filter(is_superuser=True).first()
    )
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(user)
    wall = User.objects.filter(username="wall").first() or user
    wall_client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    wall_client.force_login(wall)
    # the busiest street (the desk of a street's dispatchers)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT street_id, count(*) FROM gridmgmt_case WHERE street_id IS NOT NULL GROUP BY 1 ORDER BY 2 DESC"
            " LIMIT 1"
        )
        street_id, street_cases = cur.fetchone()
        cur.execute("SELECT max(id) FROM gridmgmt_case")
        max_id = cur.fetchone()[0]
    street = AdminArea.objects.get(pk=street_id)
    now = timezone.now()
    local = timezone.localtime(now)
    out: dict = {
        "user": f"{user.username} ({user.role}, {user.area})",
        "street": f"{street.code} ({street_cases} cases)",
    }

    def get(c, url, **params):
        def call():
            r = c.get(url, params)
            assert r.status_code == 200, (url, r.status_code, r.content[:300])
            return r

        return call

    def row(name, product, naive, target_ms=None, note="", slow=False):
        if only and name not in only:
            return
        print(f"  {name:<22}", end="", flush=True)
        # `slow`: a read that takes minutes here: one run, no warm-up
        p = timing(product, 1, warm=False, min_reps=1) if slow else timing(product, reps)
        # the naive queries take seconds to minutes: no warm-up, one run once past 20 s
        q = timing(naive, naive_reps, budget_s=20, min_reps=1, warm=False) if naive else None
        entry = {"product": p}
        if q:
            entry["naive"] = q
            entry["ratio_p95"] = round(q["p95_ms"] / max(p["p95_ms"], 0.01), 1)
        if target_ms:
            entry["target_p95_ms"] = target_ms
            entry["met"] = p["p95_ms"] <= target_ms
        if note:
            entry["note"] = note
        out[name] = entry
        save(out)
        print(
            f" p50 {p['p50_ms']:8.1f}  p95 {p['p95_ms']:8.1f} ms"
            + (f" | naive p95 {q['p95_ms']:9.1f} ms  ×{entry['ratio_p95']}" if q else "")
            + (f"  target ≤ {target_ms} ms: {'met' if entry['met'] else 'NOT met'}" if target_ms else ""),
            flush=True,
        )

    # 1. desk queue: overdue first, the street's page
    desk_naive_sql = """
        SELECT c.id FROM gridmgmt_case c JOIN geo_adminarea a ON ST_Within(c.point, a.boundary)
        WHERE a.id = %s AND c.district_id = %s
        ORDER BY CASE WHEN c.status IN ('filed', 'dispatched', 'sent_back', 'handling') THEN 0 ELSE 1 END,
                 c.deadline_at NULLS LAST, c.reported_at, c.id LIMIT 50"""
    row(
        "desk_queue",
        get(client, "/api/cases/", order="deadline", area=street.code),
        lambda: _sql(desk_naive_sql, [street.id, district.id]),
        200,
    )

    # 2. search as the desk asks it (gridmgmt.queue.cases_search through GET /api/cases/?search=…): the busiest
    # street's cases whose code starts with the fragment or whose description or address holds it, the first page
    # (newest first) and its count. Common words (a category phrase in 5 % of the street's cases) and rare ones
    # (an address number, a description's serial).
    frags = ["路灯不亮", "消防通道", "张杨路12", "编号4711", "窨井盖缺失"]

    def search():
        get(client, "/api/cases/", search=rng.choice(frags), area=street.code)()

    # The naive peer: the same condition without any index (a scan of the street's cases in the table).
    search_where = (
        "c.district_id = %s AND c.street_id = %s AND (lower(c.code) LIKE lower(%s)"
        " OR c.description ILIKE %s OR c.address ILIKE %s)"
    )
    search_sql = f"""SELECT c.id, c.code, c.status, c.reported_at FROM gridmgmt_case c WHERE {search_where}
        ORDER BY c.reported_at DESC, c.id DESC LIMIT 50"""
    search_count_sql = f"SELECT count(*) FROM gridmgmt_case c WHERE {search_where}"

    def search_naive():
        frag = rng.choice(frags)
        params = [district.id, street.id, frag + "%", "%" + frag + "%", "%" + frag + "%"]
        _sql(search_sql, params, settings=UNINDEXED)
        return _sql(search_count_sql, params, settings=UNINDEXED)

    search_note = "GET /api/cases/?search=<fragment>&area=<street>: first page + count in one statement"
    search_note += " (migrations 0017, 0021, 0022)"
    row("search", search, search_naive, 200, search_note)

    # 3. case detail + its timeline
    def detail():
        case_id = rng.randint(max(1, max_id - 4_000_000), max_id)
        get(client, f"/api/cases/{case_id}/")()
        get(client, f"/api/cases/{case_id}/events/")()

    def detail_naive():
        case_id = rng.randint(max(1, max_id - 4_000_000), max_id)
        _sql("SELECT * FROM gridmgmt_case WHERE id = %s", [case_id])
        _sql("SELECT * FROM gridmgmt_caseevent WHERE case_id = %s ORDER BY id", [case_id], settings=UNINDEXED)

    row("case_detail", detail, detail_naive, 200, "detail + events timeline (two requests)")

    # 4. KPIs: a month by street; a year by team and by department; the statistics page's data (a year by month)
    month_start = (local.replace(day=1) - timedelta(days=1)).replace(day=1).date()
    month_end = local.replace(day=1).date() - timedelta(days=1)
    year_start = (local - timedelta(days=365)).date()
    kpi_naive_sql = """
        SELECT a.id, e.type, count(*) FROM gridmgmt_caseevent e JOIN gridmgmt_case c ON c.id = e.case_id
        JOIN geo_adminarea a ON a.level = 'street' AND a.parent_id = %s AND ST_Within(c.point, a.boundary)
        WHERE e.at >= %s AND e.at < %s GROUP BY 1, 2"""
    m0 = timezone.make_aware(datetime.combine(month_start, datetime.min.time()))
    m1 = timezone.make_aware(datetime.combine(month_end + timedelta(days=1), datetime.min.time()))
    row(
        "kpis_month_by_street",
        get(client, "/api/kpis/", start=month_start.isoformat(), end=month_end.isoformat(), group_by="street"),
        lambda: _sql(kpi_naive_sql, [district.id, m0, m1]),
        1000,
    )
    y0 = timezone.make_aware(datetime.combine(year_start, datetime.min.time()))
    year_end = timezone.make_aware(datetime.combine(local.date() + timedelta(days=1), datetime.min.time()))

    def kpi_events(group_by):  # the same figures from the events alone: what the summary saves
        def call():
            visible = access.cases_visible(user=user)
            kpi.kpi_compute(start=y0, end=year_end, group_by=group_by, cases=visible, summary=False)

        return call

    events_note = "one run; naive: the same figures from the events, without the summary (kpi_compute(summary=False))"
    for group_by in ("team", "department"):
        row(
            f"kpis_year_by_{group_by}",
            get(client, "/api/kpis/", start=year_start.isoformat(), end=local.date().isoformat(), group_by=group_by),
            kpi_events(group_by),
            None,
            events_note,
            slow=True,
        )
    row(
        "statistics_year_by_month",
        get(client, "/api/kpis/", start=year_start.isoformat(), end=local.date().isoformat(), group_by="month"),
        kpi_events("month"),
        None,
        "the statistics data as /api/kpis/ serves it (what /stats/ reads; the export renders it); " + events_note,
        slow=True,
    )

    # 5. the wall snapshot
    wall_naive_sql = """
        SELECT g.id, count(*), count(*) FILTER (WHERE c.status IN ('filed', 'dispatched', 'sent_back', 'handling')
                                                 AND c.deadline_at < now())
        FROM gridmgmt_case c JOIN geo_gridcell g ON ST_Contains(g.geom, c.point)
        WHERE c.status IN ('reported', 'filed', 'dispatched', 'sent_back', 'handling', 'handled', 'checked', 'parked')
        GROUP BY g.id"""
    row("wall_snapshot", get(wall_client, "/wall/snapshot.json"), None, 1500, "every part; the ratio: wall_cells")
    row(
        "wall_cells",
        get(wall_client, "/wall/snapshot.json", only="cells"),
        lambda: _sql(wall_naive_sql),
        None,
        "the snapshot's open/overdue cases per cell (?only=cells) vs the same counts by spatial join on the cells"
        " (their GiST index), instead of the stored cell id",
    )
    out["cases_total"] = Case.objects.count()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=5_000_000)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--naive-reps", type=int, default=3)
    ap.add_argument("--reload", action="store_true", help="drop and rebuild the scale database")
    ap.add_argument("--only", default="", help="comma-separated rows to measure again (the others are kept)")
    args = ap.parse_args()
    db_ensure(reload=args.reload)
    sys.path.insert(0, str(ROOT / "bench"))
    from _setup import RESULTS, results_write
    from django.db import connection
    from django.utils import timezone

    assert connection.settings_dict["NAME"].endswith("_scale"), connection.settings_dict["NAME"]
    from gridmgmt.models import Case

    loaded = None
    if Case.objects.count() < args.cases:
        print(f"loading {args.cases} cases into {connection.settings_dict['NAME']} …", flush=True)
        loaded = load(n=args.cases - Case.objects.count(), now=timezone.now())
    uptime = Path("/proc/loadavg").read_text().split()[:3]
    print(f"measuring (load average {' '.join(uptime)}) …", flush=True)
    only = {n for n in args.only.split(",") if n}
    # The rows not measured again, from the last run: read before measuring, since each row saves the file as it
    # goes (a first version read them afterwards and so kept only the rows just measured).
    previous = RESULTS / "scale.json"
    kept: dict = {}
    if only and previous.exists():
        import json

        kept = {k: v for k, v in json.loads(previous.read_text()).items() if k not in ("benchmark", "at", "machine")}
    figures = measure(
        reps=args.reps,
        naive_reps=args.naive_reps,
        only=only,
        save=lambda out: results_write("scale", {**kept, **out}),
    )
    figures = {**kept, **figures}
    loaded = loaded or kept.get("load")
    figures["load"] = loaded
    figures["loadavg_at_measure"] = uptime
    path = results_write("scale", figures)
    print(f"→ {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
