"""Reads of the case domain: nearby duplicates, dispatch ranking, deadline lights.

Spatial work is done in PostGIS on `geography`, so every distance and radius is in metres on the spheroid,
never in degrees (at 31°N a degree of longitude is ~95 km but a degree of latitude ~111 km: ranking by
degrees picks the wrong team).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import BooleanField, F, FloatField, Func, QuerySet, Value, prefetch_related_objects
from django.utils import timezone
from django.utils.translation import gettext as _

from geo.coords import lonlat_parse
from geo.models import AdminArea, GridCell, ResponsibilityGrid
from gridmgmt.errors import InvalidInput
from gridmgmt.models import Case, CasePhoto, Category, Department, PatrolTeam
from gridmgmt.states import OPEN_STATUSES

# Raw SQL parameters must be plain strings, not enum members.
_OPEN = sorted(str(s) for s in OPEN_STATUSES)

# --- planning -------------------------------------------------------------------------------------------


@contextmanager
def joins_as_written() -> Iterator[None]:
    """Plan the block's queries with their joins in the order written (join_collapse_limit = 1).

    A case read with every related row it shows (category and its parent, cell, team, three areas,
    responsibility grid, department, duplicate) joins 11 tables: PostgreSQL spent 10–22 ms searching join
    orders for a query that runs in 0.3 ms. The ORM writes it as "the case by id, then each related row by
    its primary key", already the best plan, so the search is skipped (planning 0.9 ms)."""
    outer = connection.in_atomic_block
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SET LOCAL join_collapse_limit = 1")
        yield
        if outer:  # SET LOCAL outlives a savepoint: give the caller's transaction its setting back
            with connection.cursor() as cur:
                cur.execute("SET LOCAL join_collapse_limit TO DEFAULT")


# --- one case, as its detail shows it ------------------------------------------------------------------

# The case with the codes and names of what it refers to. Three tables joined and the rest as one-row
# lookups by primary key: nothing for the planner to search (the select_related form joins 11 tables),
# and a constant statement, so no ORM query to build (that alone took 1 ms per report).
_CASE_DETAIL_SQL = """
SELECT c.*,
       cat.code AS _category_code, cat.name AS _category_name, cat.name_en AS _category_name_en,
       cat.closing_condition AS _category_closing,
       cat.parent_id AS _major_id,
       (SELECT code FROM gridmgmt_category WHERE id = cat.parent_id) AS _major_code,
       (SELECT code FROM geo_gridcell WHERE id = c.cell_id) AS _cell_code,
       t.code AS _team_code, t.name AS _team_name,
       (SELECT code FROM geo_adminarea WHERE id = c.district_id) AS _district_code,
       (SELECT code FROM geo_adminarea WHERE id = c.street_id) AS _street_code,
       (SELECT code FROM geo_adminarea WHERE id = c.community_id) AS _community_code,
       (SELECT code FROM geo_responsibilitygrid WHERE id = c.responsibility_grid_id) AS _grid_code,
       (SELECT name FROM gridmgmt_department WHERE id = c.department_id) AS _department_name,
       (SELECT code FROM gridmgmt_case WHERE id = c.duplicate_of_id) AS _duplicate_code
FROM gridmgmt_case c
JOIN gridmgmt_category cat ON cat.id = c.category_id
LEFT JOIN gridmgmt_patrolteam t ON t.id = c.team_id
WHERE c.id = %s
"""


def _partial(model, pk, **values):
    """A related row with only the fields shown; any other field is deferred (read if ever touched)."""
    if pk is None:
        return None
    given = {"id": pk, **values}
    names = [f.attname for f in model._meta.concrete_fields if f.attname in given]  # from_db wants model order
    return model.from_db(connection.alias, names, [given[n] for n in names])


def case_detail_get(*, case_id: int) -> Case | None:
    """The case with everything CaseDetailSerializer shows (related codes and names, photos), unscoped:
    for the response to an action the service has already authorised. Two statements."""
    case = next(iter(Case.objects.raw(_CASE_DETAIL_SQL, [case_id])), None)
    if case is None:
        return None
    case_related_attach(case, names=vars(case))
    prefetch_related_objects([case], "photos")
    return case


def case_related_attach(case: Case, *, names: dict) -> Case:
    """Attach to `case` the related rows CaseDetailSerializer shows, each with only the codes and names in
    `names` (the keys of _CASE_DETAIL_SQL's extra columns; a missing one is None). case_detail_get gives them
    from its read; intake from the statements it already makes, so its response needs no read of its own."""
    n = names.get
    category = _partial(
        Category,
        case.category_id,
        code=n("_category_code"),
        name=n("_category_name"),
        name_en=n("_category_name_en"),
        closing_condition=n("_category_closing"),
        parent_id=n("_major_id"),
    )
    category.parent = _partial(Category, n("_major_id"), code=n("_major_code"))
    case.category = category
    case.cell = _partial(GridCell, case.cell_id, code=n("_cell_code"))
    case.team = _partial(PatrolTeam, case.team_id, code=n("_team_code"), name=n("_team_name"))
    case.district = _partial(AdminArea, case.district_id, code=n("_district_code"))
    case.street = _partial(AdminArea, case.street_id, code=n("_street_code"))
    case.community = _partial(AdminArea, case.community_id, code=n("_community_code"))
    case.responsibility_grid = _partial(ResponsibilityGrid, case.responsibility_grid_id, code=n("_grid_code"))
    case.department = _partial(Department, case.department_id, name=n("_department_name"))
    case.duplicate_of = _partial(Case, case.duplicate_of_id, code=n("_duplicate_code"))
    return case


def case_photos_attach(case: Case, photos: list[CasePhoto]) -> Case:
    """`photos` (all of the case's, in id order) as the case's prefetched `photos`: read without a query."""
    qs = case.photos.all()  # the related manager's queryset: each photo's `case` is this one
    qs._result_cache, qs._prefetch_done = list(photos), True
    case._prefetched_objects_cache = {**getattr(case, "_prefetched_objects_cache", {}), "photos": qs}
    return case


# --- duplicates -------------------------------------------------------------------------------------------

# `point::geography` matches the expression index case_point_geog (migration 0006), so ST_DWithin is an
# index scan; ST_DWithin and ST_Distance on geography both use the spheroid, so radius and order agree.
# The caller's scope (access.cases_visible, access.cases_public) is the query's base, so LIMIT counts only
# cases the caller may see.
MAX_DUPLICATE_RADIUS_M = 5000
# For a search by cell centre (the public's): how far a case's point may lie from its cell's centre. The
# index narrows by the point within radius + this margin; the centre decides.
CELL_CENTRE_MARGIN_M = 1000.0


def _ewkt(lon: float, lat: float) -> str:
    return f"SRID=4326;POINT({lon!r} {lat!r})"


def _geography(expression) -> Func:
    return Func(expression, template="(%(expressions)s)::geography", output_field=FloatField())


def _st(function: str, *args, output_field) -> Func:
    return Func(*args, function=function, output_field=output_field)


def duplicates_query(
    *,
    category: Category,
    lon,
    lat,
    at: datetime | None = None,
    exclude_id: int | None = None,
    limit: int = 5,
    radius_m: float | None = None,
    scope: QuerySet[Case] | None = None,
    by_cell: bool = False,
) -> QuerySet[Case]:
    """The duplicate query (exposed so tests can EXPLAIN it). `by_cell`: near and distance are measured from
    each case's cell centre, not its point (what the public may know)."""
    lon, lat = lonlat_parse(lon, lat)
    if radius_m is not None and not 0 < radius_m <= MAX_DUPLICATE_RADIUS_M:
        raise InvalidInput(_("搜索半径须在 0–5000 米之间"), field="radius")
    at = at or timezone.now()
    window = timedelta(hours=category.duplicate_window_hours)
    radius = float(radius_m if radius_m is not None else category.duplicate_radius_m)
    here = _geography(Value(_ewkt(lon, lat)))
    point = _geography(F("point"))
    qs = (Case.objects.all() if scope is None else scope).filter(
        category=category, status__in=_OPEN, reported_at__range=(at - window, at + window)
    )
    if exclude_id:
        qs = qs.exclude(pk=exclude_id)
    if by_cell:
        centre = _geography(F("cell__center"))
        qs = qs.filter(
            _st("ST_DWithin", point, here, Value(radius + CELL_CENTRE_MARGIN_M), output_field=BooleanField()),
            _st("ST_DWithin", centre, here, Value(radius), output_field=BooleanField()),
        ).annotate(distance_m=_st("ST_Distance", centre, here, output_field=FloatField()))
    else:
        qs = qs.filter(_st("ST_DWithin", point, here, Value(radius), output_field=BooleanField())).annotate(
            distance_m=_st("ST_Distance", point, here, output_field=FloatField())
        )
    return qs.order_by("distance_m", "-reported_at", "id")[: max(1, min(int(limit), 50))]


def case_duplicates_find(*, category_code: str, **query) -> list[Case]:
    """Open cases of the same category near (lon, lat) that may be the same problem, nearest first, among
    `scope` (default: all cases) — scoped before the limit.

    Near = within the category's `duplicate_radius_m` (or `radius_m`, e.g. 1 km for staff) and reported
    within `duplicate_window_hours` before or after `at` (default now). Each case carries `distance_m`
    (metres on the spheroid; to its cell's centre with `by_cell`).

    `query`: duplicates_query's keywords other than `category` (lon, lat, at, exclude_id, limit, radius_m, scope,
    by_cell)."""
    category = Category.objects.filter(code=category_code).first()
    if category is None:
        raise InvalidInput(_("未知的案件类别: %(code)s") % {"code": category_code}, field="category")
    qs = duplicates_query(category=category, **query)
    return list(qs)


# --- dispatch ranking -------------------------------------------------------------------------------------

KNN_POOL_MIN = 20  # teams fetched by the KNN index scan before scoring (plus the grid owner)
OWNER_BONUS = 40.0
DEPARTMENT_BONUS = 60.0  # the case's department (a component's maintainer, else the category's default)
SKILL_BONUS = 15.0
DISTANCE_CAP_M = 5000.0  # farther (or position unknown) scores like 5 km
DISTANCE_PER_POINT_M = 100.0
WORKLOAD_PENALTY = 5.0
BUSY_PENALTY = 10.0

# 1. `knn`: the k nearest teams by `last_position <-> point` on the geography column. With the point a
#    constant this is an ordered GiST index scan (true sphere distance, not degrees), so only k rows are read.
# 2. `pool`: those k plus the owner of the case's responsibility grid wherever it is (or unlocated).
# 3. score the pool: spheroid distance, open-case count (index case_team_status), skill, ownership.
_CANDIDATES_SQL = f"""
WITH owner AS (
    SELECT g.team_id FROM geo_responsibilitygrid g WHERE g.id = %(grid)s
), knn AS (
    SELECT t.id FROM gridmgmt_patrolteam t
    WHERE t.district_id = %(district)s AND t.status <> 'off_duty' AND t.last_position IS NOT NULL
    ORDER BY t.last_position <-> %(g)s::geography
    LIMIT %(k)s
), dept AS (  -- the nearest teams of the case's department, wherever they are
    SELECT t.id FROM gridmgmt_patrolteam t
    WHERE t.district_id = %(district)s AND t.status <> 'off_duty' AND t.department_id = %(department)s
    ORDER BY t.last_position <-> %(g)s::geography NULLS LAST, t.code
    LIMIT %(k)s
), pool AS (
    SELECT id FROM knn
    UNION
    SELECT id FROM dept
    UNION
    SELECT t.id FROM gridmgmt_patrolteam t JOIN owner ON owner.team_id = t.id
    WHERE t.district_id = %(district)s AND t.status <> 'off_duty'
), facts AS MATERIALIZED (  -- computed once: the score reuses workload and distance
    SELECT t.*,
           ST_Distance(t.last_position, %(g)s::geography) AS distance_m,
           coalesce(t.id = (SELECT team_id FROM owner), false) AS owns_grid,
           coalesce(t.department_id = %(department)s, false) AS same_department,
           (SELECT count(*) FROM gridmgmt_case c
             WHERE c.team_id = t.id AND c.status = ANY(%(open)s) AND c.id <> %(case)s) AS workload,
           EXISTS (SELECT 1 FROM gridmgmt_patrolteam_skills s
                    WHERE s.patrolteam_id = t.id AND s.category_id = %(category)s) AS skill
    FROM pool JOIN gridmgmt_patrolteam t ON t.id = pool.id
)
SELECT facts.*,
       (CASE WHEN owns_grid THEN {OWNER_BONUS} ELSE 0 END
        + CASE WHEN same_department THEN {DEPARTMENT_BONUS} ELSE 0 END
        + CASE WHEN skill THEN {SKILL_BONUS} ELSE 0 END
        - least(coalesce(distance_m, {DISTANCE_CAP_M}), {DISTANCE_CAP_M}) / {DISTANCE_PER_POINT_M}
        - {WORKLOAD_PENALTY} * workload
        - CASE WHEN status = 'busy' THEN {BUSY_PENALTY} ELSE 0 END)::float8 AS score
FROM facts
ORDER BY score DESC, distance_m NULLS LAST, code
LIMIT %(limit)s
"""


@dataclass(frozen=True)
class Candidate:
    team: PatrolTeam
    score: float
    distance_m: float | None
    owns_grid: bool
    workload: int
    skill: bool
    reasons: list[str] = field(default_factory=list)
    same_department: bool = False


def _reasons(team: PatrolTeam) -> list[str]:
    reasons = []
    if team.owns_grid:
        reasons.append(_("负责该责任网格"))
    if team.same_department:
        reasons.append(_("案件的处置部门"))
    if team.distance_m is None:
        reasons.append(_("位置未知"))
    else:
        reasons.append(_("距离 %(m)d 米") % {"m": round(team.distance_m)})
    reasons.append(_("在办 %(n)d 件") % {"n": team.workload})
    if team.skill:
        reasons.append(_("擅长该类别"))
    if team.status == PatrolTeam.Status.BUSY:
        reasons.append(_("处置中"))
    return reasons


def dispatch_candidates_sql(*, case: Case, limit: int = 10) -> tuple[str, dict]:
    """The ranking query and its parameters (exposed so tests and benchmarks can EXPLAIN it)."""
    limit = max(1, min(int(limit), 100))
    params = {
        "g": _ewkt(case.point.x, case.point.y),
        "grid": case.responsibility_grid_id or 0,
        "district": case.district_id,
        "k": max(KNN_POOL_MIN, 2 * limit),
        "open": _OPEN,
        "case": case.pk or 0,
        # Only a component's maintainer routes by department; a category's default department never has (0: none).
        "department": (case.department_id or 0) if case.component_id else 0,
        "category": case.category_id,
        "limit": limit,
    }
    return _CANDIDATES_SQL, params


def dispatch_candidates(*, case: Case, limit: int = 10) -> list[Candidate]:
    """Patrol teams of the case's district that are not off duty, best first. One query.

    Candidates are the k = max(20, 2·limit) teams nearest to the case (KNN on the `last_position`
    geography index, metres) plus the owner of the case's responsibility grid. Each is scored (higher is
    better)::

        score = 60 · same_department + 40 · owns_grid + 15 · skill
                − min(distance_m, 5000) / 100 − 5 · workload − 10 · busy

    distance_m is the spheroid distance from the team's last position (unknown → 5000); workload counts
    the team's open cases; skill means the case's category is in the team's skills; busy = status 处置中;
    same_department means the case names a component (部件) and the team belongs to its department — the
    component's maintainer (养护单位, services.moves.department_route); the nearest k teams of that department
    join the pool wherever they are. (A category's default department alone does not rank teams.)
    So the owner comes first unless another team is over 4 km closer (or much less loaded), and every
    100 m costs as much as a fifth of an open case. Ties go to the nearer team, then by code."""
    sql, params = dispatch_candidates_sql(case=case, limit=limit)
    teams = PatrolTeam.objects.raw(sql, params)
    return [
        Candidate(
            team=t,
            score=round(float(t.score), 3),
            distance_m=None if t.distance_m is None else float(t.distance_m),
            owns_grid=bool(t.owns_grid),
            workload=int(t.workload),
            skill=bool(t.skill),
            reasons=_reasons(t),
            same_department=bool(t.same_department),
        )
        for t in teams
    ]
