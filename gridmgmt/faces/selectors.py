"""Page-specific reads for the faces: the wall's start-up snapshot. Everything is aggregated in PostGIS;
the wall then follows the event feed and asks for cases only inside its viewport."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from django.contrib.gis.geos import Polygon
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, connections
from django.db.models import Count, F, FloatField, Func, Q, QuerySet
from django.utils import timezone

from geo.models import AdminArea, Camera, Speaker
from geo.selectors import serial_queries
from gridmgmt import access
from gridmgmt.kpi import KpiRow, coverage_compute, coverage_total, kpi_compute, kpi_stock
from gridmgmt.models import Case, CaseEvent, PatrolTeam
from gridmgmt.names import name_localized, name_localized_expr
from gridmgmt.states import OPEN_STATUSES, cases_with_light, overdue_q

HEAT_DAYS = 7


def _x(field: str) -> Func:
    return Func(F(field), function="ST_X", output_field=FloatField())


def _y(field: str) -> Func:
    return Func(F(field), function="ST_Y", output_field=FloatField())


def _day_start(now: datetime) -> datetime:
    local = timezone.localtime(now)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def wall_kpis(*, cases: QuerySet[Case], now: datetime) -> dict:
    """Today's KPI tiles over the visible cases: the flow and rates as gridmgmt.kpi defines them (from the
    event table, period = today so far), plus the open and overdue stock, which is a state, not a flow."""
    stock = kpi_stock(cases=cases, now=now)
    if cases.query.is_empty():
        k = KpiRow(key=None, name="")
    else:
        (k,) = kpi_compute(start=_day_start(now), end=now + timedelta(microseconds=1), cases=cases)
    return {
        "received": k.received,
        "filed": k.filed,
        "closed": k.closed,
        "open": stock["open"],
        "overdue": stock["overdue"],
        "closure_rate": k.closure_rate,  # 结案率
        "on_time_rate": k.on_time_closure_rate,  # 按期结案率
        # each rate's part and whole: early in the day "0.0 %" may be 0 of 2, which the tile says
        "closure_of": [k.due_closed, k.due],
        "on_time_of": [k.closed_on_time, k.closed],
        "satisfaction": round(k.satisfaction_mean, 2) if k.satisfaction_mean is not None else None,
    }


WALL_COVERAGE_SECONDS = 300  # the wall's coverage figure is computed at most this often per set of teams


def wall_coverage(*, teams: QuerySet[PatrolTeam], now: datetime) -> float | None:
    """Today's 巡查覆盖率 of the teams (gridmgmt.kpi.coverage_compute): the share of all their cells covered. A slow
    figure (a day's tracks of a district: seconds of PostGIS work) on a screen that re-reads its KPIs after every
    burst of events: kept in the shared cache for WALL_COVERAGE_SECONDS."""
    today = timezone.localtime(now).date()
    sql, params = teams.values("pk").query.sql_with_params()  # the teams as the access gate chose them, unread
    digest = hashlib.sha1(f"{connection.settings_dict['NAME']}|{today}|{sql}|{params}".encode()).hexdigest()
    key = f"wall:coverage:{digest}"
    cached = cache.get(key)
    if cached is not None:
        return cached["value"]
    ids = list(teams.values_list("pk", flat=True))
    value = coverage_total(coverage_compute(team_ids=ids, first=today, last=today))
    cache.set(key, {"value": value}, WALL_COVERAGE_SECONDS)
    return value


class RawJSON(str):
    """A JSON value rendered by PostgreSQL, to be put into the response as it is (snapshot_render)."""


def _json_agg(qs: QuerySet, *, agg: str, empty: str, join: str = "") -> RawJSON:
    """One JSON value aggregated by PostgreSQL over the rows of `qs` (as `t`): for the parts with ~10,000–20,000
    rows, building them as Python lists and encoding them again cost more than the queries themselves."""
    sql, params = qs.query.sql_with_params()
    with connections[qs.db].cursor() as cur:  # qs.db: the replica inside dbrouter.lag_tolerant()
        cur.execute(f"SELECT coalesce({agg}, '{empty}')::text FROM ({sql}) AS t {join}", params)
        return RawJSON(cur.fetchone()[0])


def wall_cell_counts(*, cases: QuerySet[Case], now: datetime) -> RawJSON:
    """{cell id: [open, overdue]} for the cells holding open cases — sparse, for shading the cell tiles."""
    per_cell = (
        cases.filter(status__in=OPEN_STATUSES)
        .order_by()
        .values("cell_id")
        .annotate(n=Count("pk"), late=Count("pk", filter=overdue_q(now=now)))
    )
    return _json_agg(per_cell, agg="json_object_agg(t.cell_id, json_build_array(t.n, t.late))", empty="{}")


def wall_heat(*, cases: QuerySet[Case], now: datetime) -> RawJSON:
    """[[lat, lon, count]] of the last days' reports, one point per cell (its centre), in one query."""
    per_cell = (
        cases.filter(reported_at__gte=now - timedelta(days=HEAT_DAYS))
        .order_by()
        .values("cell_id")
        .annotate(n=Count("pk"))
    )
    point = "round(ST_Y(c.center)::numeric, 5), round(ST_X(c.center)::numeric, 5), t.n"
    return _json_agg(
        per_cell, agg=f"json_agg(json_build_array({point}))", empty="[]", join="JOIN geo_gridcell c ON c.id = t.cell_id"
    )


def wall_cameras(*, district_id: int | None) -> list[list]:
    """[[lat, lon, online, id, code, name]] of the district's cameras (coordinates as floats from PostGIS, no GEOS
    objects); the id is what `camera.status` feed events name."""
    qs = Camera.objects.all()
    if district_id is not None:
        qs = qs.filter(district_id=district_id)
    rows = qs.order_by().values_list(_y("location"), _x("location"), "status", "id", "code", "name")
    return [
        [round(lat, 6), round(lon, 6), status == Camera.Status.ONLINE, pk, code, name]
        for lat, lon, status, pk, code, name in rows
    ]


def wall_ticker(*, cases: QuerySet[Case], limit: int = 20) -> list[dict]:
    rows = (
        CaseEvent.objects.filter(case__in=cases.values("pk")).order_by("-id").select_related("case__category")[:limit]
    )
    return [
        {
            "id": e.id,
            "type": e.type,
            "type_label": e.get_type_display(),
            "case": e.case_id,
            "case_code": e.case.code,
            "category": name_localized(e.case.category),
            "at": e.at.isoformat(),
        }
        for e in reversed(rows)
    ]


WALL_CASES_LIMIT = 500


def wall_viewport_cases(
    *, cases: QuerySet[Case], bbox: tuple[float, float, float, float], now: datetime, limit: int = WALL_CASES_LIMIT
) -> dict:
    """The open cases in a WGS-84 box, newest first (the order of /api/cases/), at most `limit`, with how many
    there are: {"count": n, "cases": [[lat, lon, code, light, category, status label, id, level, urgency], ...]}
    (level: Case.Level, 0 grid … 3 district; urgency: Case.Urgency).

    What the wall draws and nothing more, as plain rows (light computed in SQL): the same 500 cases through
    the REST serializer cost ~200 ms of Python per viewport."""
    box = Polygon.from_bbox(bbox)
    box.srid = 4326
    inside = cases.filter(status__in=OPEN_STATUSES, point__contained=box)
    rows = (
        cases_with_light(inside, now=now)
        .order_by("-reported_at", "-id")
        .values_list(
            _y("point"),
            _x("point"),
            "code",
            "light",
            name_localized_expr("category__"),
            "status",
            "id",
            "level",
            "urgency",
        )
    )[:limit]
    labels = dict(Case.Status.choices)
    drawn = [
        [round(lat, 6), round(lon, 6), code, light, name, str(labels[status]), pk, level, urgency]
        for lat, lon, code, light, name, status, pk, level, urgency in rows
    ]
    total = len(drawn) if len(drawn) < limit else inside.count()
    return {"count": total, "limit": limit, "cases": drawn}


def _geog(function: str, field: str) -> Func:
    return Func(
        F(field), function=function, template="%(function)s(%(expressions)s::geometry)", output_field=FloatField()
    )


def wall_teams(*, teams: QuerySet[PatrolTeam]) -> list[list]:
    """[[id, code, name, status, lat, lon]] of the teams with a known position."""
    rows = (
        teams.filter(last_position__isnull=False)
        .order_by("code")
        .values_list("id", "code", "name", "status", _geog("ST_Y", "last_position"), _geog("ST_X", "last_position"))
    )
    return [[pk, code, name, status, round(lat, 6), round(lon, 6)] for pk, code, name, status, lat, lon in rows]


def wall_speakers(*, speakers: QuerySet[Speaker]) -> list[list]:
    """[[lat, lon, id, code, name, active, cell id]] of the street loudspeakers the user may see."""
    rows = speakers.order_by("code").values_list(
        _y("location"), _x("location"), "id", "code", "name", "is_active", "cell_id"
    )
    return [[round(lat, 6), round(lon, 6), *rest] for lat, lon, *rest in rows]


def wall_area_labels(*, district_id: int | None) -> list[list]:
    """[[lat, lon, level, name]] of the district's streets/towns and communities, a point inside each (PostGIS
    ST_PointOnSurface), the name in the request's language (name_en on an English page when there is one)."""
    if district_id is None:
        return []
    areas = AdminArea.objects.filter(
        Q(level=AdminArea.Level.STREET, parent_id=district_id)
        | Q(level=AdminArea.Level.COMMUNITY, parent__parent_id=district_id),
        boundary__isnull=False,
    )
    label = Func(F("boundary"), function="ST_PointOnSurface")
    rows = (
        areas.order_by("level", "code")
        .annotate(lx=Func(label, function="ST_X", output_field=FloatField()))
        .annotate(ly=Func(label, function="ST_Y", output_field=FloatField()))
        .values_list("ly", "lx", "level", name_localized_expr())
    )
    return [[round(lat, 6), round(lon, 6), level, name] for lat, lon, level, name in rows]


WALL_ALERTS_LIMIT = 30


def wall_alerts(*, cases: QuerySet[Case], district_id: int | None, now: datetime) -> dict:
    """What the centre must act on, each list most pressing first and at most WALL_ALERTS_LIMIT long, with its
    full count: open cases escalated above the grid level (highest level first), open urgent cases (oldest
    first), offline cameras (longest silent first)."""
    open_cases = cases.filter(status__in=OPEN_STATUSES)
    escalated = open_cases.filter(level__gt=Case.Level.GRID)
    urgent = open_cases.filter(urgency=Case.Urgency.URGENT)
    fields = ("id", "code", "level", "urgency", "light", name_localized_expr("category__"), "address", "reported_at")

    def rows(qs: QuerySet[Case], *order: str) -> list[dict]:
        keys = ("id", "code", "level", "urgency", "light", "category", "address", "reported_at")
        picked = cases_with_light(qs, now=now).order_by(*order).values_list(*fields)[:WALL_ALERTS_LIMIT]
        return [dict(zip(keys, r, strict=True)) for r in picked]

    cameras = Camera.objects.exclude(status=Camera.Status.ONLINE)
    if district_id is not None:
        cameras = cameras.filter(district_id=district_id)
    offline = cameras.order_by(F("last_seen_at").asc(nulls_first=True), "code").values(
        "id", "code", "name", "last_seen_at"
    )[:WALL_ALERTS_LIMIT]
    return {
        "escalated": {"count": escalated.count(), "rows": rows(escalated, "-level", "reported_at", "id")},
        "urgent": {"count": urgent.count(), "rows": rows(urgent, "reported_at", "id")},
        "cameras": {"count": cameras.count(), "rows": list(offline)},
    }


SNAPSHOT_PARTS = ("kpis", "cells", "heat", "cameras", "ticker")


def snapshot_render(data: dict) -> str:
    """The snapshot as JSON text, its RawJSON parts spliced in unparsed."""
    raw = {k: v for k, v in data.items() if isinstance(v, RawJSON)}
    body = json.dumps({k: v for k, v in data.items() if k not in raw}, ensure_ascii=False, cls=DjangoJSONEncoder)
    if not raw:
        return body
    spliced = ", ".join(f"{json.dumps(k)}: {v}" for k, v in raw.items())
    return f"{body[:-1]}, {spliced}}}" if body != "{}" else f"{{{spliced}}}"


# Asked for by name only: the viewport's cases (needs a bbox), the teams' positions, the loudspeakers, the
# street/community name labels and the alert panel.
EXTRA_PARTS = ("cases", "teams", "speakers", "areas", "alerts")


def wall_snapshot(
    *,
    cases: QuerySet[Case],
    district_id: int | None,
    parts: set[str] | None = None,
    now: datetime | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    teams: QuerySet[PatrolTeam] | None = None,
    speakers: QuerySet[Speaker] | None = None,
    coverage_teams: QuerySet[PatrolTeam] | None = None,
) -> dict:
    """The parts asked for (SNAPSHOT_PARTS by default); the wall refreshes only KPIs, cell counts and alerts as
    events arrive. "cases" (with `bbox`), "teams" (with `teams`), "speakers" (with `speakers`), "areas" and
    "alerts" are the wall's other start-up reads."""
    now = now or timezone.now()
    parts = set(SNAPSHOT_PARTS) if not parts else parts & {*SNAPSHOT_PARTS, *EXTRA_PARTS}
    # Short reads, several requests at once on few cores: no parallel workers (geo.selectors.serial_queries).
    with serial_queries():
        data: dict = {"at": now.isoformat()}
        if parts - set(EXTRA_PARTS):  # the viewport's cases and the teams are not a point in the event log
            last = CaseEvent.objects.filter(case__in=cases.values("pk")).order_by("-id").values_list("id", flat=True)
            data["last_event_id"] = last.first() or 0
        if "kpis" in parts:
            data["kpis"] = wall_kpis(cases=cases, now=now)
            if coverage_teams is not None:
                data["kpis"]["coverage"] = wall_coverage(teams=coverage_teams, now=now)
        if "cells" in parts:
            data["cells"] = wall_cell_counts(cases=cases, now=now)
        if "heat" in parts:
            data["heat"] = wall_heat(cases=cases, now=now)
        if "cameras" in parts:
            data["cameras"] = wall_cameras(district_id=district_id)
        if "ticker" in parts:
            data["ticker"] = wall_ticker(cases=cases)
        if "areas" in parts:
            data["areas"] = wall_area_labels(district_id=district_id)
        if "alerts" in parts:
            data["alerts"] = wall_alerts(cases=cases, district_id=district_id, now=now)
        if "cases" in parts and bbox is not None:
            data["cases"] = wall_viewport_cases(cases=cases, bbox=bbox, now=now)
        if "teams" in parts and teams is not None:
            data["teams"] = wall_teams(teams=teams)
        if "speakers" in parts and speakers is not None:
            data["speakers"] = wall_speakers(speakers=speakers)
        return data


PUBLIC_MAP_LIMIT = 300


def public_cases_in_bbox(*, bbox: tuple[float, float, float, float], limit: int = PUBLIC_MAP_LIMIT) -> list[list]:
    """Open public cases (access.cases_public) whose cell centre lies in a WGS-84 box, for the residents' map,
    each as access.case_public_view shows it: [[lat, lon, code, category (plain words), status label]].

    The box is matched against the cell centre, the only position shown: matching the reported point would
    let a sequence of boxes narrow it down to the millimetre while the answer showed only the centre."""
    box = Polygon.from_bbox(bbox)
    box.srid = 4326
    cases = access.cases_public_related(
        access.cases_public().filter(status__in=OPEN_STATUSES, cell__center__intersects=box)
    ).order_by("-reported_at", "-id")[:limit]
    views = [access.case_public_view(c) for c in cases]
    return [[round(v.location.y, 6), round(v.location.x, 6), v.code, v.category, v.status_label] for v in views]
