"""Reads of the real-time feed. Envelopes are rendered to JSON text by PostgreSQL, once per row read, so a
frame is a join of ready strings: encoded once per scope, not once per socket."""

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from gridmgmt import states
from gridmgmt.kpi import kpi_stock
from gridmgmt.models import Case
from realtime.scopes import Scope


@dataclass(frozen=True)
class Row:
    seq: int
    type: str
    team_id: int | None
    json: str  # {"seq": …, "type": …, "at": …, "data": {…}}


def feed_read(*, scope: Scope, after: int, upto: int | None = None, limit: int = 500) -> list[Row]:
    """Rows of `scope` with after < seq (≤ upto), in seq order — gap-free because seq order is commit order."""
    where, params = ["seq > %s"], [after]
    if scope.column:
        where.append(f"{scope.column} = %s")  # column comes from a fixed set, never from input
        params.append(scope.id)
    else:
        where.append("user_id IS NULL")  # `all` is every row but one person's own (scope user:<id>)
    if upto is not None:
        where.append("seq <= %s")
        params.append(upto)
    sql = (
        "SELECT seq, type, team_id, json_build_object('seq', seq, 'type', type, 'at', at, 'data', data)::text "
        f"FROM realtime_feedevent WHERE {' AND '.join(where)} ORDER BY seq LIMIT %s"
    )
    with connection.cursor() as cur:
        cur.execute(sql, [*params, limit])
        return [Row(*r) for r in cur.fetchall()]


def feed_head(*, scope: Scope) -> int:
    """The last seq of the scope (0 when it has none)."""
    sql = "SELECT max(seq) FROM realtime_feedevent"
    params: list = []
    if scope.column:
        sql += f" WHERE {scope.column} = %s"
        params.append(scope.id)
    else:
        sql += " WHERE user_id IS NULL"
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0] or 0


def feed_floor() -> int:
    """The oldest seq still stored: older ones were pruned, so a client behind it must reload."""
    with connection.cursor() as cur:
        cur.execute("SELECT min(seq) FROM realtime_feedevent")
        return cur.fetchone()[0] or 0


def rows_coalesce(rows: list[Row]) -> list[Row]:
    """Within one frame, only the newest position of each team is worth sending."""
    newest: dict[int, int] = {}
    for row in rows:
        if row.type == "team.position":
            newest[row.team_id] = row.seq
    if not newest:
        return rows
    return [r for r in rows if r.type != "team.position" or newest[r.team_id] == r.seq]


def kpi_for_scope(*, scope: Scope) -> dict:
    """A minimal KPI of the scope from the case table; open and overdue as gridmgmt.states defines them (the
    dashboards' full KPIs live in gridmgmt.kpi)."""
    cases = Case.objects.all()
    if scope.kind == "user":  # a person's inbox has no case figures
        return {}
    if scope.kind == "team":
        cases = cases.filter(team_id=scope.id)
    elif scope.column:
        cases = cases.filter(**{scope.column: scope.id})
    now = timezone.now()
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    figures = kpi_stock(cases=cases, now=now)
    figures |= cases.filter(Q(reported_at__gte=today) | Q(closed_at__gte=today)).aggregate(
        reported_today=Count("id", filter=Q(reported_at__gte=today)),
        closed_today=Count("id", filter=Q(closed_at__gte=today, status__in=states.DONE_STATUSES)),
        reported_last_hour=Count("id", filter=Q(reported_at__gte=now - timedelta(hours=1))),
    )
    return figures
