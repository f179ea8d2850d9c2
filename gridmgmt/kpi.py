"""Evaluation (综合评价): KPIs for a period, per area, grid or team, computed in SQL from the event table.

A period is the half-open interval ``[start, end)``. An event counts in the period its ``at`` falls in (for a
field action a phone queued offline, when it was done there, bounded by the server's clock — services.workflow
``occurred_at_bound``; ``recorded_at`` is when it reached the server);
each row of ``kpi_compute`` is one group (or the whole scope when ``group_by`` is None).

Counts (events in the period)
    received            REPORTED events (受理数)
    filed               FILED events (立案数)
    dispatched          DISPATCHED + ARBITRATED events (派遣数; an arbitration is a forced dispatch)
    sent_back           SENT_BACK events (退单数)
    handled             HANDLED + SELF_HANDLED events (处置反馈数: every fix submitted for checking)
    check_failed        CHECK_FAILED events (返工数)
    closed              CLOSED events (结案数; a merged duplicate is not a closure)
    rated               RATED events carrying a satisfaction score

Rates (None when the denominator is 0)
    结案率 closure_rate           = due_closed / due. ``due`` = cases whose promise ``Case.due_at`` (the
                                  current one, moved by approved extensions and parking; imported
                                  history without one: its deadline) falls in the period, merged
                                  duplicates excluded; ``due_closed`` = those of them with a
                                  CLOSED event before ``end``, on time or not.
    按期结案率 on_time_closure_rate = closed_on_time / closed: CLOSED events at or before the case's
                                  promise (the event's ``data.on_time_overall``, written at closing;
                                  for imported history without it, ``at`` ≤ that promise).
    返工率 rework_rate            = check_failed / handled.
    退单率 send_back_rate         = sent_back / dispatched.
    满意率 satisfied_rate         = satisfied / rated, satisfied = score ≥ 4 (of 1–5);
    satisfaction_mean            = mean of RATED ``data.satisfaction``.
    avg_handling_hours           = mean of (first HANDLED after an ACCEPTED − that ACCEPTED), in hours of
                                  elapsed time, over the HANDLED events of the period: how long a team
                                  takes from 签收 to 处置反馈. Rework rounds are left out (see 返工率).

On-time counts per role (each with its base count)
    dispatchers    dispatched_on_time / first_dispatched: a case's first DISPATCHED/ARBITRATED event at
                   or before its dispatch deadline (``Case.dispatch_deadline_at``, set at filing).
    patrol teams   handled_on_time / handled: HANDLED by the stage deadline (``data.on_time``, written at
                   handling; else ``data.deadline_at`` or the case's deadline), SELF_HANDLED always on time.
    shift leaders  closed_on_time / closed (按期结案).

Groups: day / week / month split the period by the local calendar (the key is the period's first date;
``due`` by the date of the promise). district / street / community use the area ids copied onto each
event (and onto the case for ``due``); grid = the case's responsibility grid; department = the department
that owned the case when the event happened (``department_id_copy``: a reclassification or a component's
maintainer routes a case anew, and its earlier events stay with the department that had it; an event written
before migration 0024 has no copy and counts for the case's current department), and the case's current
department for ``due``; team = the team on the event (``team_id_copy``, or for a send-back the team named in
its data), and the case's current team for ``due``; person = the event's actor (who reported, filed,
dispatched, handled, checked, closed…): ``due`` is not attributed to a person (it falls in the key=None
row), and ``check_failed`` counts for the inspector who failed the check. Events with no value for the
group (e.g. a report before any team) form the row with ``key=None``.

Patrol coverage (巡查覆盖率), per team per day — from the position history, not the event table
    coverage = cells_covered / cells: ``cells`` the unit cells of the responsibility grids the team owns now,
    ``cells_covered`` those a track of the team touched that day (``ST_Intersects``). A track is one device's
    fixes of the day made while in the team, in time order (``ST_MakeLine``), broken where two fixes are more
    than ``realtime.tracks.TRACK_GAP`` apart (a single fix counts as a point). Days are local calendar days.
    ``coverage_compute``: one statement for every team and day asked for.

Scope: ``cases`` (a Case queryset, e.g. ``access.cases_visible(user)``) or ``scope_q`` (a Q on Case);
``kpi_for_user`` scopes to what the user may see through ``gridmgmt.access``. A scope that compares only the
case's own columns with values is applied to each event's and promise's case row inline (an area user:
``c.district_id = …``, which the indexes serve); anything else as ``c.id IN (…)``. Everything is one SQL
statement: aggregates with FILTER, no Python loop over events.

Summary (city scale: 31 M events; README "City scale"). Every per-event fact above (the on-time flags, first
dispatch, satisfaction, handling time) is written once, in ``_FACTS``; ``_PARTS`` are its additive partial
aggregates (counts, Σ satisfaction, Σ handling seconds and their count; the means are Σ / n at the end, in
both paths). ``KpiDay`` holds those parts per local day × district × street × community (the ids copied onto the
event) × team (the ``team`` group above), and ``KpiDayDepartment`` per the same day × district × street ×
department (copied onto the event), for every event up to ``KpiWatermark.upto``; ``kpi_summary_refresh``
(``manage.py kpi_summarize``, run every 5 minutes by deploy/systemd/gridmgmt-kpi.timer) adds the events committed
since, in id order (the bound is taken under a SHARE lock on the event table, so no smaller id can commit later). A
read of whole local days, grouped by none / area / team / department / day / week / month, over everything or an
area scope, takes the summary's rows of those days plus the events past the watermark (the tail: late offline
actions count on their own day) — so figures are exact whether or not the timer ran.
Facts that read the case as it is now — a first dispatch against ``Case.dispatch_deadline_at`` (a resume moves it),
a CLOSED/HANDLED event without the flag the services write — are "volatile": ``KpiVolatile`` keeps what each
contributed; a read corrects those of the cases with an event in the tail (every change of a case writes an event),
and the refresh folds the correction in. A case's area ids are set at intake and never change (no service moves a
case), so the ids copied onto its events are the case's, and an area scope on the summary is the same as on the
case. Groupings by grid (the case's) and person, partial days (the wall's "today so far") and other scopes (a
patrol member: their team's and own cases) read the events, with the same ``_FACTS``; ``due`` / ``due_closed``
always come from the case table (promises move), through the ``case_promise`` index; a case closed now
(``DONE_STATUSES``) answers ``due_closed`` by its ``closed_at`` (services.moves.move_close sets it to the CLOSED
event's time), the others (open, reopened and closed again, imported history) by a probe of the
``caseevent_closed`` index (bench/scale.py, 5 M cases: a year's 1.24 M promises 1.98 s → 0.63 s).
``kpi_compute(summary=False)`` reads only the events: the tests compare the two
(tests/gridmgmt/test_kpi_summary.py). Two differences could arise: a send-back names its team by code, which the
summary resolved when it summarized it — a team whose code is changed afterwards keeps its summarized send-backs,
the events path would look the new code up; and an event written before migration 0024 (no department copy; the
event table is append-only, so none was filled in) counts for its case's department as the summary found it — were
that case routed to another department afterwards, the events path would count it there.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Func, Lookup, Q, QuerySet, Value
from django.db.models.expressions import Col
from django.db.models.sql.where import WhereNode
from django.utils import timezone
from django.utils.translation import gettext as _

from geo.models import GridCell
from gridmgmt import access, events, states
from gridmgmt.dbrouter import read_connection
from gridmgmt.errors import InvalidInput
from gridmgmt.models import Case, CaseEvent, User
from realtime.tracks import TRACK_GAP

E = CaseEvent.Type
GroupBy = Literal["district", "street", "community", "grid", "department", "team", "person", "day", "week", "month"]
PERIODS = ("day", "week", "month")
SATISFIED_MIN = 4
TZ_NAME = "Asia/Shanghai"  # the local calendar of days, weeks and months (as in the SQL below)
# A person's label: 姓名 (family name first), else the username.
_PERSON_LABELS = "(SELECT id, coalesce(nullif(trim(last_name || first_name), ''), username) AS name FROM gridmgmt_user)"
_NO_GROUP = -1  # stands for NULL in the join of the two aggregates (FULL JOIN needs an equality)

# group → (expression over event e / its case c, expression over case c, label table)
_GROUPS: dict[str | None, tuple[str, str, str | None]] = {
    None: ("NULL::bigint", "NULL::bigint", None),
    "district": ("e.district_id_copy", "c.district_id", "geo_adminarea"),
    "street": ("e.street_id_copy", "c.street_id", "geo_adminarea"),
    "community": ("e.community_id_copy", "c.community_id", "geo_adminarea"),
    "grid": ("c.responsibility_grid_id", "c.responsibility_grid_id", "geo_responsibilitygrid"),
    "team": (
        "coalesce(e.team_id_copy, CASE WHEN e.type = 'sent_back' THEN"
        " (SELECT t.id FROM gridmgmt_patrolteam t WHERE t.code = e.data->>'" + events.TEAM + "') END)",
        "c.team_id",
        "gridmgmt_patrolteam",
    ),
    # The department that owned the case when the event happened (copied onto the event, as the team; an event
    # written before the copy existed: the case's current one), and the case's current one for `due`.
    "department": ("coalesce(e.department_id_copy, c.department_id)", "c.department_id", "gridmgmt_department"),
    # The person who did the event; a promise belongs to no person (`due` falls in the key=None row).
    "person": ("e.actor_id", "NULL::bigint", _PERSON_LABELS),
}
# Per period: the local (Asia/Shanghai) calendar day / ISO week (Monday) / month the event falls in; for
# `due`, the one the promise falls in. The key is that period's first date.
for _step in PERIODS:
    _GROUPS[_step] = (
        f"date_trunc('{_step}', e.at AT TIME ZONE 'Asia/Shanghai')::date",
        f"date_trunc('{_step}', coalesce(c.due_at, c.deadline_at) AT TIME ZONE 'Asia/Shanghai')::date",
        None,
    )


_TYPES = [
    E.REPORTED,
    E.FILED,
    E.DISPATCHED,
    E.ARBITRATED,
    E.SENT_BACK,
    E.HANDLED,
    E.SELF_HANDLED,
    E.CHECK_FAILED,
    E.CLOSED,
    E.RATED,
]

# Every per-event fact, in one place: the raw path and the summary (KpiDay) are both aggregates of these rows.
# `volatile`: the event's flags read the case as it is now (first dispatch vs Case.dispatch_deadline_at, which
# a resume moves; imported history without the flag written at handling/closing).
_FACTS = """
SELECT e.id, e.case_id, e.type, e.at, {g} AS g,
       (e.at AT TIME ZONE 'Asia/Shanghai')::date AS day, e.district_id_copy AS district_id,
       e.street_id_copy AS street_id, e.community_id_copy AS community_id, {team} AS team_id,
       {department} AS department_id,
       CASE WHEN e.type = 'closed' THEN coalesce(f.on_time_overall, e.at <= coalesce(c.due_at, c.deadline_at)) END
           AS closed_on_time,
       CASE WHEN e.type = 'self_handled' THEN true
            WHEN e.type = 'handled' THEN coalesce(f.on_time, e.at <= f.deadline_at, e.at <= c.deadline_at) END
           AS handled_on_time,
       CASE WHEN f.first_dispatch THEN e.at <= c.dispatch_deadline_at END AS first_dispatch_on_time,
       CASE WHEN e.type = 'rated' THEN (e.data->>'{k_satisfaction}')::int END AS satisfaction,
       -- HANDLED − the ACCEPTED it answers, only for the first HANDLED after that acceptance
       CASE WHEN e.type = 'handled' THEN (
           SELECT CASE WHEN NOT EXISTS (
                      SELECT 1 FROM gridmgmt_caseevent h
                      WHERE h.case_id = e.case_id AND h.type = 'handled' AND h.id > acc.id AND h.id < e.id)
                  THEN extract(epoch FROM e.at - acc.at) END
           FROM (SELECT a.id, a.at FROM gridmgmt_caseevent a
                 WHERE a.case_id = e.case_id AND a.type = 'accepted' AND a.id < e.id
                 ORDER BY a.id DESC LIMIT 1) acc) END AS handling_seconds,
       f.first_dispatch OR (e.type = 'closed' AND f.on_time_overall IS NULL)
           OR (e.type = 'handled' AND f.on_time IS NULL AND f.deadline_at IS NULL) AS volatile
FROM {source}
JOIN gridmgmt_case c ON c.id = e.case_id
CROSS JOIN LATERAL (
    SELECT CASE WHEN e.type = 'closed' THEN (e.data->>'{k_on_time_overall}')::boolean END AS on_time_overall,
           CASE WHEN e.type = 'handled' THEN (e.data->>'{k_on_time}')::boolean END AS on_time,
           CASE WHEN e.type = 'handled' THEN (e.data->>'{k_deadline_at}')::timestamptz END AS deadline_at,
           CASE WHEN e.type IN ('dispatched', 'arbitrated') THEN NOT EXISTS (
               SELECT 1 FROM gridmgmt_caseevent p
               WHERE p.case_id = e.case_id AND p.type IN ('dispatched', 'arbitrated') AND p.id < e.id)
           ELSE false END AS first_dispatch
    OFFSET 0  -- each evaluated once per event
) f
WHERE e.type = ANY(%(types)s) {where}
"""

# The additive partial aggregates of facts (a summary row holds them; raw events are aggregated into them; the
# rows of both are summed): the one list of what is counted.
_PARTS = {
    "received": "count(*) FILTER (WHERE type = 'reported')",
    "filed": "count(*) FILTER (WHERE type = 'filed')",
    "dispatched": "count(*) FILTER (WHERE type IN ('dispatched', 'arbitrated'))",
    "sent_back": "count(*) FILTER (WHERE type = 'sent_back')",
    "handled": "count(*) FILTER (WHERE type IN ('handled', 'self_handled'))",
    "handled_on_time": "count(*) FILTER (WHERE handled_on_time)",
    "check_failed": "count(*) FILTER (WHERE type = 'check_failed')",
    "closed": "count(*) FILTER (WHERE type = 'closed')",
    "closed_on_time": "count(*) FILTER (WHERE closed_on_time)",
    "first_dispatched": "count(first_dispatch_on_time)",
    "dispatched_on_time": "count(*) FILTER (WHERE first_dispatch_on_time)",
    "rated": "count(satisfaction)",
    "satisfied": f"count(*) FILTER (WHERE satisfaction >= {SATISFIED_MIN})",
    "satisfaction_sum": "coalesce(sum(satisfaction), 0)",
    "handling_seconds": "coalesce(sum(handling_seconds), 0)",
    "handling_n": "count(handling_seconds)",
}
# The parts a volatile event contributes that read the case (KpiVolatile keeps what it contributed).
_VOLATILE = ("handled_on_time", "closed_on_time", "first_dispatched", "dispatched_on_time")
_DIMS = "day, district_id, street_id, community_id, team_id, department_id"  # of a fact and a KpiVolatile row
# The summaries (rollups) of the facts, each by its key: KpiDay by community and team, KpiDayDepartment by street
# and department (bench/scale.py: 3.75 M and 1.2 M rows; one table keyed by both team and department would hold
# 12.8 M, with the community 8.6 M). A summarized grouping reads KpiDay, but department; a scope by an area id the
# rollup lacks (a community's staff by department) reads the events.
_ROLLUPS = {
    "gridmgmt_kpiday": ("day, district_id, street_id, community_id, team_id", "kpiday_key"),
    "gridmgmt_kpidaydepartment": ("day, district_id, street_id, department_id", "kpidaydepartment_key"),
}
_ROLLUP_OF = {"department": "gridmgmt_kpidaydepartment"}

# The summary's grouping of a rollup / KpiVolatile row `{t}`; None: the group needs the raw events (the case's
# grid, the actor).
_SUMMARY_GROUPS: dict[str | None, str | None] = {
    None: "NULL::bigint",
    "district": "{t}.district_id",
    "street": "{t}.street_id",
    "community": "{t}.community_id",
    "team": "{t}.team_id",
    "department": "{t}.department_id",
    "grid": None,
    "person": None,
    **{step: f"date_trunc('{step}', {{t}}.day::timestamp)::date" for step in PERIODS},
}
# The events past the watermark (the summary's tail) are read by id, at most TAIL_MAX of them that way; beyond
# that (the timer has not run for a day or so) by their time, which is exact but slow.
TAIL_MAX = 50_000

_READ_SQL = """
WITH wm AS MATERIALIZED (SELECT {upto} AS upto),
tail AS MATERIALIZED (
    SELECT id, case_id, at FROM gridmgmt_caseevent WHERE id > (SELECT upto FROM wm) ORDER BY id LIMIT {tail_max}
), ev AS MATERIALIZED (  -- the period's raw events (only those past the watermark when the summary serves)
    {ev}
), parts AS (
    SELECT coalesce(g, {none}) AS g, {parts} FROM ev GROUP BY 1
    {summary}
), ev_agg AS (
    SELECT g, {sums} FROM parts GROUP BY g
), due_agg AS (  -- promises falling due in the period (imported history without one: its deadline)
    SELECT coalesce({g_case}, {none}) AS g,
           count(*) AS due,
           -- a case closed now (not a merged duplicate: those are left out above) was closed at closed_at, a
           -- CLOSED event's time: that answers most without probing the events (a reopened case, closed
           -- again later, and imported history without the clock are probed)
           count(*) FILTER (WHERE (c.status = ANY(%(done)s) AND c.closed_at < %(end)s) OR EXISTS (
               SELECT 1 FROM gridmgmt_caseevent x WHERE x.case_id = c.id AND x.type = 'closed' AND x.at < %(end)s
           )) AS due_closed
    FROM gridmgmt_case c
    WHERE coalesce(c.due_at, c.deadline_at) >= %(start)s AND coalesce(c.due_at, c.deadline_at) < %(end)s
      AND c.duplicate_of_id IS NULL {scope_c}
    GROUP BY 1
)
SELECT nullif(coalesce(a.g, d.g), {none}) AS key, {label} AS name,
       coalesce(a.received, 0), coalesce(a.filed, 0), coalesce(a.dispatched, 0), coalesce(a.sent_back, 0),
       coalesce(a.handled, 0), coalesce(a.handled_on_time, 0), coalesce(a.check_failed, 0),
       coalesce(a.closed, 0), coalesce(a.closed_on_time, 0), coalesce(a.first_dispatched, 0),
       coalesce(a.dispatched_on_time, 0), coalesce(a.rated, 0), coalesce(a.satisfied, 0),
       (a.satisfaction_sum::numeric / nullif(a.rated, 0))::float8,
       (a.handling_seconds / nullif(a.handling_n, 0) / 3600.0)::float8,
       coalesce(d.due, 0), coalesce(d.due_closed, 0)
FROM ev_agg a
FULL JOIN due_agg d ON a.g = d.g
{label_join}
ORDER BY key NULLS LAST
"""

# The summary's part of a read: the rollup's rows of the period's days, and the correction of the volatile events
# (up to the watermark) of every case with an event past it — what they contribute now minus what the rollups hold.
_SUMMARY_SQL = """
    UNION ALL
    SELECT coalesce({g_s}, {none}), {s_sums} FROM {rollup} s
    WHERE s.day >= %(d0)s AND s.day < %(d1)s {scope_s}
    GROUP BY 1
    UNION ALL
    SELECT coalesce({g_v}, {none}), {v_sums}
    FROM ({diff}) v
    GROUP BY 1
"""

# What the volatile events `{vol}` (KpiVolatile rows, alias v) contribute now, minus what they contributed when
# last summarized: one row per event whose contribution changed.
_DIFF_SQL = """
    SELECT v.event_id, {dims_v}, {deltas}
    FROM ({vol}) v
    JOIN (SELECT id, {v_parts} FROM ({facts}) fv GROUP BY id) k ON k.id = v.event_id
    WHERE ({k_cols}) IS DISTINCT FROM ({v_cols})
"""


def _fmt_facts(*, g: str = "NULL::bigint", source: str = "gridmgmt_caseevent e", where: str = "") -> str:
    return _FACTS.format(
        # the payload keys as gridmgmt.events writes them
        k_on_time_overall=events.ON_TIME_OVERALL,
        k_on_time=events.ON_TIME,
        k_deadline_at=events.DEADLINE_AT,
        k_satisfaction=events.SATISFACTION,
        team=_GROUPS["team"][0],
        department=_GROUPS["department"][0],
        g=g,
        source=source,
        where=where,
    )


def _diff_sql(vol: str) -> str:
    """The correction rows (event_id, dims, Δ of each volatile part) of the KpiVolatile rows `vol` selects."""
    return _DIFF_SQL.format(
        dims_v=", ".join(f"v.{d}" for d in _DIMS.split(", ")),
        deltas=", ".join(f"k.{c} - v.{c} AS {c}" for c in _VOLATILE),
        vol=vol,
        v_parts=", ".join(f"{_PARTS[c]} AS {c}" for c in _VOLATILE),
        facts=_fmt_facts(where=f"AND e.id IN (SELECT event_id FROM ({vol}) vol_ids)"),
        k_cols=", ".join(f"k.{c}" for c in _VOLATILE),
        v_cols=", ".join(f"v.{c}" for c in _VOLATILE),
    )


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class KpiRow:
    key: int | date | None  # the group's id (area, grid, team) or first date of the period; None = ungrouped / no value
    name: str
    received: int = 0
    filed: int = 0
    dispatched: int = 0
    sent_back: int = 0
    handled: int = 0
    handled_on_time: int = 0
    check_failed: int = 0
    closed: int = 0
    closed_on_time: int = 0
    first_dispatched: int = 0
    dispatched_on_time: int = 0
    rated: int = 0
    satisfied: int = 0
    satisfaction_mean: float | None = None
    avg_handling_hours: float | None = None
    due: int = 0
    due_closed: int = 0

    @property
    def closure_rate(self) -> float | None:  # 结案率
        return _ratio(self.due_closed, self.due)

    @property
    def on_time_closure_rate(self) -> float | None:  # 按期结案率
        return _ratio(self.closed_on_time, self.closed)

    @property
    def rework_rate(self) -> float | None:  # 返工率
        return _ratio(self.check_failed, self.handled)

    @property
    def send_back_rate(self) -> float | None:  # 退单率
        return _ratio(self.sent_back, self.dispatched)

    @property
    def satisfied_rate(self) -> float | None:  # 满意率
        return _ratio(self.satisfied, self.rated)

    @property
    def dispatch_on_time_rate(self) -> float | None:
        return _ratio(self.dispatched_on_time, self.first_dispatched)

    @property
    def handle_on_time_rate(self) -> float | None:
        return _ratio(self.handled_on_time, self.handled)


# The SQL's output columns, in order: the dataclass's fields are the one list of them.
_COLUMNS = [f.name for f in fields(KpiRow)]
_AREA_COLUMNS = frozenset({"district_id", "street_id", "community_id"})


def _constant(rhs) -> bool:
    """A plain value, or an expression of plain values only (access.area_id_value's `Cast(Value(59), bigint)`)."""
    if not hasattr(rhs, "resolve_expression"):
        return True
    if isinstance(rhs, Value):
        return True
    return isinstance(rhs, Func) and all(_constant(e) for e in rhs.get_source_expressions())


def _where_columns(node) -> set[str] | None:
    """The case columns a WHERE tree compares with plain values; None when it does anything else (a subquery, a
    join, an expression): then it is applied as `c.id IN (…)`."""
    columns: set[str] = set()
    for child in node.children:
        if isinstance(child, WhereNode):
            inner = _where_columns(child)
            if inner is None:
                return None
            columns |= inner
        elif (
            isinstance(child, Lookup)
            and isinstance(child.lhs, Col)
            and child.lhs.alias == Case._meta.db_table
            and _constant(child.rhs)
        ):
            columns.add(child.lhs.target.column)
        else:
            return None
    return columns


@dataclass(frozen=True)
class _Scope:
    sql: str  # a condition on a case-like row `{t}` ("" for none)
    params: dict
    # The case columns it reads when they are area ids only (a summary's rows, keyed by the ids copied onto the
    # events, can be scoped by them if it has them); None: other columns, or a list of ids.
    area_columns: frozenset[str] | None


def _scope(cases: QuerySet[Case] | None, connection) -> _Scope:
    """The cases to count as a condition: inline on the case's own columns when the query filters only those
    (the SQL planner then scopes each event and promise by its case row, not through a list of 5 M ids)."""
    if cases is None or not cases.query.has_filters():
        return _Scope("", {}, frozenset())
    query = cases.query
    columns = _where_columns(query.where)  # every lookup on the case table itself (checked there)
    if columns is not None:
        sql, params = query.get_compiler(connection=connection).compile(query.where)
        sql = sql.replace(f'"{Case._meta.db_table}".', "{t}.")
        area_columns = frozenset(columns) if columns <= _AREA_COLUMNS else None
    else:
        sql, params = cases.values("id").query.get_compiler(connection=connection).as_sql()
        sql, area_columns = f"{{t}}.id IN ({sql})", None
    names = [f"scope_{i}" for i in range(len(params))]
    parts = sql.split("%s")
    sql = parts[0] + "".join(f"%({n})s{rest}" for n, rest in zip(names, parts[1:], strict=True))
    return _Scope(f"AND ({sql})", dict(zip(names, params, strict=True)), area_columns)


def _local_midnight(moment: datetime) -> date | None:
    local = timezone.localtime(moment, ZoneInfo(TZ_NAME))
    return local.date() if local.time() == time.min else None


def kpi_compute(
    *,
    start: datetime,
    end: datetime,
    group_by: GroupBy | None = None,
    scope_q: Q | None = None,
    cases: QuerySet[Case] | None = None,
    summary: bool = True,
) -> list[KpiRow]:
    """KPIs of ``[start, end)``, one row per group (see the module docstring for every definition), over the
    cases `cases` (a Case queryset) or ``Case.objects.filter(scope_q)``; neither: all. One statement: from the
    summary for whole local days when it can serve the grouping and scope, else (or `summary=False`: the
    oracle of the tests) from the events."""
    if group_by not in _GROUPS:
        raise InvalidInput(_("未知的分组: %(g)s") % {"g": group_by}, field="group_by")
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput(_("统计时段须带时区"), field="start")
    if end <= start:
        raise InvalidInput(_("统计时段的结束时间须晚于开始时间"), field="end")
    if scope_q is not None:
        cases = Case.objects.filter(scope_q) if cases is None else cases.filter(scope_q)
    reader = read_connection()  # the replica inside dbrouter.lag_tolerant()
    scope = _scope(cases, reader)
    g_event, g_case, label_table = _GROUPS[group_by]
    d0, d1 = _local_midnight(start), _local_midnight(end)
    g_summary = _SUMMARY_GROUPS[group_by]
    rollup = _ROLLUP_OF.get(group_by or "", "gridmgmt_kpiday")
    rollup_columns = set(_ROLLUPS[rollup][0].split(", "))
    use_summary = bool(
        summary and d0 and d1 and g_summary and scope.area_columns is not None and scope.area_columns <= rollup_columns
    )
    none = "'-infinity'::date" if group_by in PERIODS else str(_NO_GROUP)
    period = "AND e.at >= %(start)s AND e.at < %(end)s " + scope.sql.format(t="c")
    if use_summary:
        ev = (
            # the period on the tail's copy of `at`: the events are then fetched by id (on e.at, the planner
            # read the month's 700,000 events by time and hash-joined the tail to them)
            _fmt_facts(
                g=g_event,
                source="tail t JOIN gridmgmt_caseevent e ON e.id = t.id",
                where=period.replace("e.at", "t.at"),
            )
            + "UNION ALL"  # past TAIL_MAX: the rest of the tail by time (a one-time filter: skipped unless so)
            + _fmt_facts(
                g=g_event,
                where=f"AND (SELECT count(*) FROM tail) >= {TAIL_MAX} AND e.id > (SELECT max(id) FROM tail) {period}",
            )
        )
        # the volatile events of the period of every case with an event past the watermark (the second part,
        # past TAIL_MAX, skipped by a one-time filter unless so)
        in_period = "AND v.day >= %(d0)s AND v.day < %(d1)s " + scope.sql.format(t="v")
        vol = (
            "SELECT v.* FROM gridmgmt_kpivolatile v WHERE v.case_id IN (SELECT case_id FROM tail) "
            + in_period
            + f" UNION SELECT v.* FROM gridmgmt_kpivolatile v WHERE (SELECT count(*) FROM tail) >= {TAIL_MAX}"
            " AND v.case_id IN (SELECT e.case_id FROM gridmgmt_caseevent e WHERE e.id > (SELECT max(id) FROM tail))"
            " AND v.event_id <= (SELECT upto FROM wm) " + in_period
        )
        summary = _SUMMARY_SQL.format(
            rollup=rollup,
            g_s=g_summary.format(t="s"),
            g_v=g_summary.format(t="v"),
            none=none,
            s_sums=", ".join(f"sum(s.{c})" for c in _PARTS),
            v_sums=", ".join(f"sum(v.{c})" if c in _VOLATILE else "0" for c in _PARTS),
            scope_s=scope.sql.format(t="s"),
            diff=_diff_sql(vol),
        )
        upto = "coalesce((SELECT max(upto) FROM gridmgmt_kpiwatermark), 0)"
    else:
        ev, summary, upto = _fmt_facts(g=g_event, where=period), "", "0"
    sql = _READ_SQL.format(
        upto=upto,
        tail_max=TAIL_MAX,
        ev=ev,
        none=none,
        parts=", ".join(f"{expr} AS {c}" for c, expr in _PARTS.items()),
        summary=summary,
        sums=", ".join(f"sum({c}){'' if c == 'handling_seconds' else '::bigint'} AS {c}" for c in _PARTS),
        g_case=g_case,
        scope_c=scope.sql.format(t="c"),
        label="coalesce(n.name, '')" if label_table else ("coalesce(a.g, d.g)::text" if group_by in PERIODS else "''"),
        label_join=f"LEFT JOIN {label_table} n ON n.id = coalesce(a.g, d.g)" if label_table else "",
    )
    params = {"start": start, "end": end, "d0": d0, "d1": d1, "types": [str(t) for t in _TYPES], **scope.params}
    params["done"] = sorted(states.DONE_STATUSES)  # due_closed: the statuses of a case closed now
    with reader.cursor() as cur:
        cur.execute(sql, params)
        rows = [KpiRow(**dict(zip(_COLUMNS, r, strict=True))) for r in cur.fetchall()]
    if group_by is None and not rows:
        rows = [KpiRow(key=None, name="")]
    return rows


# --- the summary (KpiDay, KpiDayDepartment), kept up to date from the append-only event table -------------------

_LOCK_KEY = 0x6B7069  # pg_advisory_xact_lock: one refresh at a time


def _upserts(*, source: str, parts: str) -> str:
    """The end of one statement: the rows of `source` (a CTE of facts or of corrections) summed into every rollup
    by its key, `parts` their aggregates in _PARTS's order (all but the last rollup as CTEs)."""
    inserts = []
    for table, (dims, key) in _ROLLUPS.items():
        add = ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in _PARTS)
        inserts.append(
            f"INSERT INTO {table} ({dims}, {', '.join(_PARTS)}) SELECT {dims}, {parts} FROM {source} GROUP BY {dims}"
            f" ON CONFLICT ON CONSTRAINT {key} DO UPDATE SET {add}"
        )
    *first, last = inserts
    return "".join(f", up{i} AS ({sql})" for i, sql in enumerate(first)) + "\n" + last


# Events (lo, hi]: their facts added to the rollups; the volatile ones, with what they contributed, to KpiVolatile.
_SUMMARIZE_SQL = """
WITH ev AS MATERIALIZED ({facts}), vol AS (
    INSERT INTO gridmgmt_kpivolatile (event_id, case_id, {dims}, {volatile})
    SELECT id, case_id, {dims}, {v_parts} FROM ev WHERE volatile GROUP BY id, case_id, {dims}
){upserts}
"""
# The volatile events of the cases with an event in (lo, hi]: the rollups and KpiVolatile corrected by the change.
_CORRECT_SQL = """
WITH diff AS MATERIALIZED ({diff}), upd AS (
    UPDATE gridmgmt_kpivolatile v SET {set_v} FROM diff d WHERE v.event_id = d.event_id
){upserts}
"""


def _watermark_bound() -> int:
    """The highest event id below which every event is committed: taken under a SHARE lock, which waits for the
    transactions writing events to end (ids are drawn at insert time, so they may commit out of order)."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL lock_timeout = '10s'")
        cur.execute("LOCK TABLE gridmgmt_caseevent IN SHARE MODE")
        cur.execute("SELECT coalesce(max(id), 0) FROM gridmgmt_caseevent")
        return cur.fetchone()[0]


def kpi_summary_refresh(*, batch: int = 1_000_000) -> dict:
    """Bring the summary up to the events committed now, `batch` event ids per transaction: the facts of the new
    events added, and the volatile events of every case that has a new event re-read and corrected. Reads are
    exact whether or not this has run (kpi_compute reads the events past the watermark); it keeps that tail
    short. Returns {"from": old watermark, "to": new one, "seconds": …}."""
    started = timezone.now()
    hi = _watermark_bound()
    first = None
    while True:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            cur.execute("SELECT upto FROM gridmgmt_kpiwatermark WHERE id = 1")
            row = cur.fetchone()
            lo = row[0] if row else 0
            first = lo if first is None else first
            if lo >= hi:
                break
            top = min(hi, lo + batch)
            cur.execute("SET LOCAL work_mem = '256MB'")
            params = {"lo": lo, "hi": top, "types": [str(t) for t in _TYPES]}
            if lo:
                # The volatile events to correct, as a list of ids: the planner then sees how few they are (as a
                # subquery it estimated 300,000 and merge-joined 23 M events by id: 40 s a batch at 31 M events).
                cur.execute(
                    "SELECT array_agg(v.event_id) FROM gridmgmt_kpivolatile v WHERE v.case_id IN"
                    " (SELECT case_id FROM gridmgmt_caseevent WHERE id > %(lo)s AND id <= %(hi)s)",
                    params,
                )
                params["vol"] = cur.fetchone()[0] or []
                vol = "SELECT * FROM gridmgmt_kpivolatile v WHERE v.event_id = ANY(%(vol)s)"
            if lo and params["vol"]:
                cur.execute(
                    _CORRECT_SQL.format(
                        diff=_diff_sql(vol),
                        set_v=", ".join(f"{c} = v.{c} + d.{c}" for c in _VOLATILE),
                        upserts=_upserts(
                            source="diff", parts=", ".join(f"sum({c})" if c in _VOLATILE else "0" for c in _PARTS)
                        ),
                    ),
                    params,
                )
            cur.execute(
                _SUMMARIZE_SQL.format(
                    facts=_fmt_facts(where="AND e.id > %(lo)s AND e.id <= %(hi)s"),
                    dims=_DIMS,
                    volatile=", ".join(_VOLATILE),
                    v_parts=", ".join(_PARTS[c] for c in _VOLATILE),
                    upserts=_upserts(source="ev", parts=", ".join(_PARTS.values())),
                ),
                params,
            )
            cur.execute(
                "INSERT INTO gridmgmt_kpiwatermark (id, upto, refreshed_at) VALUES (1, %s, now())"
                " ON CONFLICT (id) DO UPDATE SET upto = EXCLUDED.upto, refreshed_at = EXCLUDED.refreshed_at",
                [top],
            )
    return {"from": first, "to": hi, "seconds": round((timezone.now() - started).total_seconds(), 1)}


def cases_in_area(*, cases: QuerySet[Case], area_id: int | None) -> QuerySet[Case]:
    """`cases` narrowed to one district, street or community (by the ids stored on the case); None: all."""
    if area_id is None:
        return cases
    return cases.filter(Q(district_id=area_id) | Q(street_id=area_id) | Q(community_id=area_id))


def kpi_for_user(
    *, user: User, start: datetime, end: datetime, group_by: GroupBy | None = None, area_id: int | None = None
) -> list[KpiRow]:
    """KPIs over the cases `user` may see (gridmgmt.access): a street's staff get their street only.
    `area_id`: only the cases of that district, street or community (within what the user may see)."""
    visible = cases_in_area(cases=access.cases_visible(user=user), area_id=area_id)
    if not visible.query.has_filters():  # unrestricted: no scope clause at all
        return kpi_compute(start=start, end=end, group_by=group_by)
    if visible.query.is_empty():
        return [KpiRow(key=None, name="")] if group_by is None else []
    return kpi_compute(start=start, end=end, group_by=group_by, cases=visible)


def kpi_stock(*, cases: QuerySet[Case], now: datetime) -> dict:
    """The open and overdue stock of `cases` at `now` (a state, not a flow over a period), by the rules of
    gridmgmt.states. The wall's tiles, the feed's KPI frames and /api/kpis/ all report these figures."""
    # Overdue cases are open (CLOCKED_STATUSES ⊂ OPEN_STATUSES): only the open ones are read, by the status
    # indexes, not every case of the scope (a district's 5 M at city scale).
    return cases.filter(states.open_q()).aggregate(
        open=Count("pk"),
        overdue=Count("pk", filter=states.overdue_q(now=now)),
    )


# --- patrol coverage (巡查覆盖率) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoverageRow:
    day: date
    team_id: int
    name: str
    cells: int  # cells of the team's responsibility grids
    cells_covered: int  # of them, those a track of the team passed through that day
    coverage: float | None  # cells_covered / cells; None for a team that owns no cell


# Fixes per piece of a track in the coverage statement. The demo's 78 teams' day (148,000 fixes), under load 12:
# pieces of 16 fixes 3.4 s, of 48 2.6 s, whole lines 3.0 s; a piece of two-point segments collected: 5–365 s.
PIECE_FIXES = 48

_COVERAGE_SQL = """
WITH days AS (
    SELECT d::date AS day, d::date::timestamp AT TIME ZONE %(tz)s AS t0,
           (d::date + 1)::timestamp AT TIME ZONE %(tz)s AS t1
    FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS d
), fixes AS (
    SELECT d.day, p.team_id, p.device_id, p.at, p.point, row_number() OVER w AS n,
           CASE WHEN lead(p.at) OVER w - p.at <= %(gap)s THEN lead(p.point) OVER w END AS next_point,
           CASE WHEN p.at - lag(p.at) OVER w > %(gap)s THEN 1 ELSE 0 END AS brk
    FROM days d JOIN realtime_position p ON p.at >= d.t0 AND p.at < d.t1
    WHERE p.team_id = ANY(%(teams)s)
    WINDOW w AS (PARTITION BY d.day, p.device_id ORDER BY p.at)
), parted AS (
    SELECT *, sum(brk) OVER (PARTITION BY day, device_id ORDER BY at) AS part FROM fixes
), chunks AS (
    -- A track cut into pieces of PIECE_FIXES fixes, each carrying on to the next piece's first fix: the same line
    -- ST_MakeLine draws, in pieces whose small boxes let the cells' spatial index find few candidates (a whole
    -- day's line has a box of kilometres).
    SELECT day, team_id,
           array_remove(array_agg(point ORDER BY at)
                        || (array_agg(next_point ORDER BY at DESC))[1], NULL) AS points
    FROM parted
    GROUP BY day, team_id, device_id, part, (n - 1) / %(piece)s
), pieces AS MATERIALIZED (
    SELECT day, team_id, CASE WHEN cardinality(points) > 1 THEN ST_MakeLine(points) ELSE points[1] END AS geom
    FROM chunks
), covered AS (
    SELECT DISTINCT t.day, rg.team_id, c.id
    FROM pieces t
    JOIN geo_gridcell c ON ST_Intersects(c.geom, t.geom)
    JOIN geo_responsibilitygrid rg ON rg.id = c.responsibility_grid_id AND rg.team_id = t.team_id
), totals AS (
    SELECT rg.team_id, count(*) AS cells
    FROM geo_responsibilitygrid rg JOIN geo_gridcell c ON c.responsibility_grid_id = rg.id
    WHERE rg.team_id = ANY(%(teams)s)
    GROUP BY rg.team_id
), cov AS (
    SELECT day, team_id, count(*) AS n FROM covered GROUP BY day, team_id
)
SELECT d.day, tm.id, tm.name, coalesce(tot.cells, 0), coalesce(cov.n, 0)
FROM days d CROSS JOIN gridmgmt_patrolteam tm
LEFT JOIN totals tot ON tot.team_id = tm.id
LEFT JOIN cov ON cov.day = d.day AND cov.team_id = tm.id
WHERE tm.id = ANY(%(teams)s)
ORDER BY d.day, tm.code
"""


def coverage_compute(*, team_ids: list[int], first: date, last: date) -> list[CoverageRow]:
    """巡查覆盖率 of each team of `team_ids` for each local day in [first, last] (definition above)."""
    if last < first:
        raise InvalidInput(_("结束日期不能早于起始日期"), field="end", code="bad_period")
    if not team_ids:
        return []
    params = {
        "tz": settings.TIME_ZONE,
        "first": first,
        "last": last,
        "teams": list(team_ids),
        "gap": TRACK_GAP,
        "piece": PIECE_FIXES,
    }
    with read_connection().cursor() as cur:
        cur.execute(_COVERAGE_SQL, params)
        return [
            CoverageRow(day=d, team_id=t, name=n, cells=c, cells_covered=v, coverage=_ratio(v, c))
            for d, t, n, c, v in cur.fetchall()
        ]


def coverage_total(rows: list[CoverageRow]) -> float | None:
    """The share of all the teams' cells covered (a wall's one figure): Σ covered / Σ cells."""
    return _ratio(sum(r.cells_covered for r in rows), sum(r.cells for r in rows))


def month_bounds(*, month: date) -> tuple[datetime, datetime]:
    """[first day of `month`, first day of the next month) in local time."""
    tz = timezone.get_current_timezone()
    first = month.replace(day=1)
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime.combine(first, time.min, tzinfo=tz), datetime.combine(following, time.min, tzinfo=tz)


def kpi_month_report(*, user: User, month: date) -> dict[str, list[KpiRow]]:
    """月度考评: the month's figures per street and per department, over what `user` may see."""
    start, end = month_bounds(month=month)
    return {
        "street": kpi_for_user(user=user, start=start, end=end, group_by="street"),
        "department": kpi_for_user(user=user, start=start, end=end, group_by="department"),
    }


def kpi_heat(*, cases: QuerySet[Case], start: datetime, end: datetime) -> list[tuple[float, float, int]]:
    """Cases reported in ``[start, end)`` per unit cell, as (lat, lon, count) at the cell's centre (WGS-84):
    the statistics page's heat map. Two queries: the counts, then the centres of the cells that have any."""
    counts = dict(
        cases.filter(reported_at__gte=start, reported_at__lt=end)
        .values_list("cell_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    centres = GridCell.objects.filter(pk__in=list(counts)).values_list("pk", "center")
    return [(round(c.y, 6), round(c.x, 6), counts[pk]) for pk, c in centres]
