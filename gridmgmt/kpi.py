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
event (and onto the case for ``due``); grid = the case's responsibility grid; department = the case's
current department; team = the team on the event (``team_id_copy``, or for a send-back the team named in
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

Scope: ``scope_q`` is a Q on Case (e.g. ``access.area_filter(user)``); ``kpi_for_user`` scopes to what the
user may see through ``gridmgmt.access``. Everything is one SQL statement: aggregates with FILTER, no
Python loop over events.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from typing import Literal

from django.conf import settings
from django.db.models import Count, Q, QuerySet
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
    # The case's current department (the one it was routed to), for its events and its promise alike.
    "department": ("c.department_id", "c.department_id", "gridmgmt_department"),
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

_SQL = """
WITH ev AS MATERIALIZED (  -- the period's events with their group; each per-event CASE evaluated once
    SELECT coalesce({g_event}, {none}) AS g, e.id, e.case_id, e.type, e.at,
           CASE WHEN e.type = 'closed' THEN coalesce(
                    (e.data->>'{k_on_time_overall}')::boolean, e.at <= coalesce(c.due_at, c.deadline_at)) END
               AS closed_on_time,
           CASE WHEN e.type = 'self_handled' THEN true
                WHEN e.type = 'handled' THEN coalesce(
                    (e.data->>'{k_on_time}')::boolean, e.at <= (e.data->>'{k_deadline_at}')::timestamptz,
                    e.at <= c.deadline_at) END
               AS handled_on_time,
           CASE WHEN e.type IN ('dispatched', 'arbitrated') AND NOT EXISTS (
                    SELECT 1 FROM gridmgmt_caseevent p
                    WHERE p.case_id = e.case_id AND p.type IN ('dispatched', 'arbitrated') AND p.id < e.id)
                THEN e.at <= c.dispatch_deadline_at END
               AS first_dispatch_on_time,
           CASE WHEN e.type = 'rated' THEN (e.data->>'{k_satisfaction}')::int END AS satisfaction
    FROM gridmgmt_caseevent e
    JOIN gridmgmt_case c ON c.id = e.case_id
    WHERE e.at >= %s AND e.at < %s AND e.type = ANY(%s) {scope}
), ev_agg AS (
    SELECT g,
           count(*) FILTER (WHERE type = 'reported') AS received,
           count(*) FILTER (WHERE type = 'filed') AS filed,
           count(*) FILTER (WHERE type IN ('dispatched', 'arbitrated')) AS dispatched,
           count(*) FILTER (WHERE type = 'sent_back') AS sent_back,
           count(*) FILTER (WHERE type IN ('handled', 'self_handled')) AS handled,
           count(*) FILTER (WHERE handled_on_time) AS handled_on_time,
           count(*) FILTER (WHERE type = 'check_failed') AS check_failed,
           count(*) FILTER (WHERE type = 'closed') AS closed,
           count(*) FILTER (WHERE closed_on_time) AS closed_on_time,
           count(first_dispatch_on_time) AS first_dispatched,
           count(*) FILTER (WHERE first_dispatch_on_time) AS dispatched_on_time,
           count(satisfaction) AS rated,
           count(*) FILTER (WHERE satisfaction >= %s) AS satisfied,
           avg(satisfaction)::float8 AS satisfaction_mean
    FROM ev GROUP BY g
), handling_agg AS (  -- HANDLED − the ACCEPTED it answers, only for the first HANDLED after that acceptance
    SELECT ev.g, (avg(extract(epoch FROM ev.at - acc.at)) / 3600.0)::float8 AS avg_handling_hours
    FROM ev
    CROSS JOIN LATERAL (
        SELECT a.id, a.at FROM gridmgmt_caseevent a
        WHERE a.case_id = ev.case_id AND a.type = 'accepted' AND a.id < ev.id
        ORDER BY a.id DESC LIMIT 1
    ) acc
    WHERE ev.type = 'handled' AND NOT EXISTS (
        SELECT 1 FROM gridmgmt_caseevent h
        WHERE h.case_id = ev.case_id AND h.type = 'handled' AND h.id > acc.id AND h.id < ev.id)
    GROUP BY ev.g
), due_agg AS (  -- promises falling due in the period (imported history without one: its deadline)
    SELECT coalesce({g_case}, {none}) AS g,
           count(*) AS due,
           count(*) FILTER (WHERE EXISTS (
               SELECT 1 FROM gridmgmt_caseevent x WHERE x.case_id = c.id AND x.type = 'closed' AND x.at < %s
           )) AS due_closed
    FROM gridmgmt_case c
    WHERE coalesce(c.due_at, c.deadline_at) >= %s AND coalesce(c.due_at, c.deadline_at) < %s
      AND c.duplicate_of_id IS NULL {scope}
    GROUP BY 1
)
SELECT nullif(coalesce(a.g, d.g), {none}) AS key, {label} AS name,
       coalesce(a.received, 0), coalesce(a.filed, 0), coalesce(a.dispatched, 0), coalesce(a.sent_back, 0),
       coalesce(a.handled, 0), coalesce(a.handled_on_time, 0), coalesce(a.check_failed, 0),
       coalesce(a.closed, 0), coalesce(a.closed_on_time, 0), coalesce(a.first_dispatched, 0),
       coalesce(a.dispatched_on_time, 0), coalesce(a.rated, 0), coalesce(a.satisfied, 0),
       a.satisfaction_mean, h.avg_handling_hours, coalesce(d.due, 0), coalesce(d.due_closed, 0)
FROM ev_agg a
LEFT JOIN handling_agg h ON h.g = a.g
FULL JOIN due_agg d ON a.g = d.g
{label_join}
ORDER BY key NULLS LAST
"""


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


def _scope_sql(scope_q: Q | None) -> tuple[str, list]:
    if scope_q is None:
        return "", []
    sql, params = Case.objects.filter(scope_q).values("id").query.sql_with_params()
    return f"AND c.id IN ({sql})", list(params)


def kpi_compute(
    *,
    start: datetime,
    end: datetime,
    group_by: GroupBy | None = None,
    scope_q: Q | None = None,
) -> list[KpiRow]:
    """KPIs of ``[start, end)``, one row per group (see the module docstring for every definition)."""
    if group_by not in _GROUPS:
        raise InvalidInput(_("未知的分组: %(g)s") % {"g": group_by}, field="group_by")
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput(_("统计时段须带时区"), field="start")
    if end <= start:
        raise InvalidInput(_("统计时段的结束时间须晚于开始时间"), field="end")
    g_event, g_case, label_table = _GROUPS[group_by]
    scope, scope_params = _scope_sql(scope_q)
    sql = _SQL.format(
        # the payload keys as gridmgmt.events writes them
        k_on_time_overall=events.ON_TIME_OVERALL,
        k_on_time=events.ON_TIME,
        k_deadline_at=events.DEADLINE_AT,
        k_satisfaction=events.SATISFACTION,
        g_event=g_event,
        g_case=g_case,
        none="'-infinity'::date" if group_by in PERIODS else _NO_GROUP,
        scope=scope,
        label="coalesce(n.name, '')" if label_table else ("coalesce(a.g, d.g)::text" if group_by in PERIODS else "''"),
        label_join=f"LEFT JOIN {label_table} n ON n.id = coalesce(a.g, d.g)" if label_table else "",
    )
    params = [start, end, [str(t) for t in _TYPES], *scope_params, SATISFIED_MIN, end, start, end, *scope_params]
    with read_connection().cursor() as cur:  # the replica inside dbrouter.lag_tolerant()
        cur.execute(sql, params)
        rows = [KpiRow(**dict(zip(_COLUMNS, r, strict=True))) for r in cur.fetchall()]
    if group_by is None and not rows:
        rows = [KpiRow(key=None, name="")]
    return rows


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
    return kpi_compute(start=start, end=end, group_by=group_by, scope_q=Q(pk__in=visible.values("id")))


def kpi_stock(*, cases: QuerySet[Case], now: datetime) -> dict:
    """The open and overdue stock of `cases` at `now` (a state, not a flow over a period), by the rules of
    gridmgmt.states. The wall's tiles, the feed's KPI frames and /api/kpis/ all report these figures."""
    return cases.aggregate(
        open=Count("pk", filter=states.open_q()),
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
