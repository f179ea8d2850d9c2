"""The one access gate. Every read of a case, cell or team on behalf of a user goes through here;
what a user may not see looks exactly like what does not exist (404), so nothing leaks by probing."""

from django.db.models import Q, QuerySet
from django.http import Http404

from geo.models import AdminArea, GridCell
from gridmgmt.models import Case, PatrolTeam, User

R = User.Role

# Who is who. Every role decision in the project reads these sets and role_effective(); nothing else
# compares role names (the browser is sent the actions a user may take, not the roles).
STAFF_ROLES = frozenset({R.DISPATCHER, R.INSPECTOR, R.SHIFT_LEADER, R.WALL, R.ADMIN})
DISPATCHERS = frozenset({R.DISPATCHER, R.SHIFT_LEADER, R.ADMIN})  # file, void, dispatch, merge
LEADERS = frozenset({R.SHIFT_LEADER, R.ADMIN})  # close, arbitrate, extensions, park
CHECKERS = frozenset({R.INSPECTOR, R.ADMIN})  # 核查 on site
FIELD_ROLES = frozenset({R.PATROL})  # accept, handle, send back, self-handle


# Which face (page) each role may open, and where each role lands after logging in.
FACE_ROLES = {
    "patrol": frozenset({R.PATROL, R.ADMIN}),
    "wall": frozenset({R.WALL, R.SHIFT_LEADER, R.DISPATCHER, R.INSPECTOR, R.ADMIN}),
    "dispatch": frozenset({R.DISPATCHER, R.SHIFT_LEADER, R.INSPECTOR, R.ADMIN}),
}
ROLE_HOME = {
    R.PATROL: "patrol",
    R.WALL: "wall",
    R.DISPATCHER: "dispatch",
    R.SHIFT_LEADER: "dispatch",
    R.INSPECTOR: "dispatch",
    R.ADMIN: "dispatch",
    R.RESIDENT: "report",
}


def role_effective(user) -> str:
    """The role a user acts in: a superuser acts as admin, an anonymous caller as a resident."""
    if user is None or not user.is_authenticated:
        return R.RESIDENT
    return R.ADMIN if user.is_superuser else user.role


def is_staff_user(user) -> bool:
    """Command-centre staff (sees cases by area, reporter contact included)."""
    return bool(user is not None and user.is_authenticated and role_effective(user) in STAFF_ROLES)


def is_unrestricted(user) -> bool:
    """Staff bound to no area (and superusers) see every case, team and cell."""
    return bool(user.is_superuser or (user.role in STAFF_ROLES and user.area_id is None))


def area_filter(user: User, *, prefix: str = "") -> Q:
    """Q limiting rows with district/street/community ids (stored copies) to the user's area."""
    area = user.area
    if area is None:
        return Q()
    field = {
        AdminArea.Level.DISTRICT: "district_id",
        AdminArea.Level.STREET: "street_id",
        AdminArea.Level.COMMUNITY: "community_id",
    }.get(area.level)
    if field is None:  # a city-level scope sees its districts
        return Q(**{f"{prefix}district__parent_id": area.id})
    return Q(**{f"{prefix}{field}": area.id})


def cases_visible(*, user: User) -> QuerySet[Case]:
    qs = Case.objects.all()
    if not user.is_authenticated:
        return qs.none()
    if is_unrestricted(user):
        return qs
    if user.role in STAFF_ROLES:
        return qs.filter(area_filter(user))
    if user.role == User.Role.PATROL:
        mine = Q(reporter_id=user.id)
        if user.team_id:
            mine |= Q(team_id=user.team_id)
        return qs.filter(mine)
    return qs.filter(reporter_id=user.id)  # residents: their own reports


def case_access(*, user: User, case_id: int | None = None, code: str | None = None, for_update: bool = False) -> Case:
    qs = cases_visible(user=user)
    if for_update:
        qs = qs.select_for_update(of=("self",))
    lookup = {"pk": case_id} if case_id is not None else {"code": code}
    try:
        return qs.get(**lookup)
    except (Case.DoesNotExist, ValueError, TypeError):
        raise Http404("案件不存在 (case not found)") from None


def teams_visible(*, user: User) -> QuerySet[PatrolTeam]:
    qs = PatrolTeam.objects.all()
    if not user.is_authenticated:
        return qs.none()
    if is_unrestricted(user):
        return qs
    if user.role in STAFF_ROLES:
        area = user.area
        if area.level == AdminArea.Level.DISTRICT:
            return qs.filter(district_id=area.id)
        if area.level == AdminArea.Level.STREET:
            return qs.filter(street_id=area.id)
        return qs.filter(responsibility_grids__community_id=area.id).distinct()
    if user.team_id:
        return qs.filter(pk=user.team_id)
    return qs.none()


def team_access(*, user: User, team_id: int) -> PatrolTeam:
    try:
        return teams_visible(user=user).get(pk=team_id)
    except (PatrolTeam.DoesNotExist, ValueError, TypeError):
        raise Http404("队伍不存在 (team not found)") from None


def cells_visible(*, user: User) -> QuerySet[GridCell]:
    qs = GridCell.objects.all()
    if not user.is_authenticated:
        return qs.none()
    if is_unrestricted(user) or user.area_id is None:
        return qs
    return qs.filter(area_filter(user))


def cell_access(*, user: User, cell_id: int) -> GridCell:
    try:
        return cells_visible(user=user).get(pk=cell_id)
    except (GridCell.DoesNotExist, ValueError, TypeError):
        raise Http404("网格不存在 (cell not found)") from None
