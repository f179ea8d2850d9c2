"""The one access gate. Every read of a case, cell or team on behalf of a user goes through here;
what a user may not see looks exactly like what does not exist (404), so nothing leaks by probing."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.gis.geos import Point
from django.db.models import BigIntegerField, F, Prefetch, Q, QuerySet, Value
from django.db.models.functions import Cast
from django.http import Http404

from geo.models import AdminArea, GridCell, Speaker
from gridmgmt.models import Case, CaseEvent, CasePhoto, Category, PatrolTeam, SpeakerCall, User
from gridmgmt.names import language_is_english
from gridmgmt.states import OPEN_STATUSES

R = User.Role

# Who is who. Every role decision in the project reads these sets and role_effective(); nothing else
# compares role names (the browser is sent the actions a user may take, not the roles).
STAFF_ROLES = frozenset({R.DISPATCHER, R.INSPECTOR, R.SHIFT_LEADER, R.WALL, R.ADMIN})
DISPATCHERS = frozenset({R.DISPATCHER, R.SHIFT_LEADER, R.ADMIN})  # file, void, dispatch, merge
LEADERS = frozenset({R.SHIFT_LEADER, R.ADMIN})  # close, arbitrate, extensions, park, urge (督办)
CHECKERS = frozenset({R.INSPECTOR, R.ADMIN})  # 核查 on site
FIELD_ROLES = frozenset({R.PATROL})  # accept, handle, send back, self-handle
SUPERVISOR_ROLES = frozenset({R.INSPECTOR, R.SHIFT_LEADER, R.ADMIN})  # alerted when a case escalates to their area
SPEAKER_CALLERS = DISPATCHERS  # speak to the street through the loudspeakers (gridmgmt.rules.speaker_call_check)


# Which face (page) each role may open, and where each role lands after logging in.
FACE_ROLES = {
    "patrol": frozenset({R.PATROL, R.INSPECTOR, R.ADMIN}),  # the phone: patrol members and inspectors on site
    "wall": frozenset({R.WALL, R.SHIFT_LEADER, R.DISPATCHER, R.INSPECTOR, R.ADMIN}),
    "dispatch": frozenset({R.DISPATCHER, R.SHIFT_LEADER, R.INSPECTOR, R.ADMIN}),
    "stats": frozenset({R.DISPATCHER, R.SHIFT_LEADER, R.INSPECTOR, R.ADMIN}),  # /stats/, 月度考评
}
ROLE_HOME = {
    R.PATROL: "patrol",
    R.WALL: "wall",
    R.DISPATCHER: "dispatch",
    R.SHIFT_LEADER: "dispatch",
    R.INSPECTOR: "patrol",  # an inspector works on site: the phone (the desk stays open to them)
    R.ADMIN: "dispatch",
    R.RESIDENT: "report",
}


# Whose actions the phone's task list holds (gridmgmt.rules.statuses_actionable): a patrol member's field work
# (accept, handle, extension request, self-handle…), an inspector's checks (核查: check_pass/check_fail).
PHONE_WORK = {R.INSPECTOR: frozenset({R.INSPECTOR})}


def phone_work_roles(user) -> frozenset:
    """The roles whose actions fill `user`'s task list on the phone (FIELD_ROLES unless PHONE_WORK says)."""
    return PHONE_WORK.get(role_effective(user), FIELD_ROLES)


def role_effective(user) -> str:
    """The role a user acts in: a superuser acts as admin, an anonymous caller as a resident."""
    if user is None or not user.is_authenticated:
        return R.RESIDENT
    return R.ADMIN if user.is_superuser else user.role


def is_resident(user) -> bool:
    """A signed-in resident (anonymous callers are residents too, but have no account to own reports)."""
    return bool(user is not None and user.is_authenticated and role_effective(user) == R.RESIDENT)


def is_staff_user(user) -> bool:
    """Command-centre staff (sees cases by area, reporter contact included)."""
    return bool(user is not None and user.is_authenticated and role_effective(user) in STAFF_ROLES)


def is_unrestricted(user) -> bool:
    """Staff bound to no area (and superusers) see every case, team and cell."""
    return bool(user.is_superuser or (user.role in STAFF_ROLES and user.area_id is None))


def area_id_value(area_id: int) -> Cast:
    """An area id compared as bigint (`street_id = 59::bigint`; a bare 59 is int4). The desk search's trigram
    indexes lead with the street and community ids (btree_gin, migration 0022), and btree_gin's int8 operator
    class serves int8 = int8 only: with `= 59` the scope stays out of the index scan. bench/scale.py, 5 M cases,
    a common word in a street of 109,588 cases: the count 317 ms → 94 ms."""
    return Cast(Value(area_id), BigIntegerField())


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
    return Q(**{f"{prefix}{field}": area_id_value(area.id)})


def _gate(user: User, qs: QuerySet) -> QuerySet | None:
    """The first two answers of every *_visible: nothing for anonymous callers, everything for unrestricted
    staff; None when the caller's own scope decides."""
    if not user.is_authenticated:
        return qs.none()
    if is_unrestricted(user):
        return qs
    return None


def cases_visible(*, user: User) -> QuerySet[Case]:
    qs = Case.objects.all()
    if (gated := _gate(user, qs)) is not None:
        return gated
    if user.role in STAFF_ROLES:
        return qs.filter(area_filter(user))
    if user.role == User.Role.PATROL:
        mine = Q(reporter_id=user.id)
        if user.team_id:
            mine |= Q(team_id=user.team_id)
        return qs.filter(mine)
    return qs.filter(reporter_id=user.id)  # residents: their own reports


def _one_or_404(qs: QuerySet, lookup: dict, message: str):
    """The one row of `qs` matching `lookup`; out of scope, missing and malformed ids all look like 404."""
    try:
        return qs.get(**lookup)
    except (qs.model.DoesNotExist, ValueError, TypeError):
        raise Http404(message) from None


def case_access(*, user: User, case_id: int | None = None, code: str | None = None, for_update: bool = False) -> Case:
    qs = cases_visible(user=user)
    if for_update:
        qs = qs.select_for_update(of=("self",))
    lookup = {"pk": case_id} if case_id is not None else {"code": code}
    return _one_or_404(qs, lookup, "案件不存在 (case not found)")


def reporter_phone_may_call(user) -> bool:
    """Who may see a reporter's whole phone number: the roles that record a return visit (回访) by phone
    (services.workflow.case_rate via="phone"). Everywhere else the number is masked (gridmgmt.phones)."""
    return bool(user is not None and user.is_authenticated and role_effective(user) in DISPATCHERS)


def reporter_phone_access(*, user: User, case_id: int) -> str:
    """The reporter's whole phone number of a case `user` may see, to call them back; a case out of scope or
    without a number looks like "not found". The caller checks reporter_phone_may_call first."""
    case = case_access(user=user, case_id=case_id)
    if not case.reporter_phone:
        raise Http404("此案件没有联系电话 (no phone number)")
    return case.reporter_phone


def teams_visible(*, user: User) -> QuerySet[PatrolTeam]:
    qs = PatrolTeam.objects.all()
    if (gated := _gate(user, qs)) is not None:
        return gated
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


def is_role_admin(user) -> bool:
    """A staff account in the administrator role that is not a superuser: it manages users and teams in the
    Django admin through the rules below (its area's only, or all when it has no area), whatever model
    permissions it holds. Superusers keep Django's own permission checks (all)."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and not user.is_superuser
        and user.role == R.ADMIN
    )


def areas_within_q(area_id: int, *, prefix: str = "") -> Q:
    """Q for rows whose area (at `prefix`) is `area_id` or lies under it (district → street → community)."""
    return (
        Q(**{f"{prefix}id": area_id})
        | Q(**{f"{prefix}parent_id": area_id})
        | Q(**{f"{prefix}parent__parent_id": area_id})
    )


def areas_visible(*, user: User) -> QuerySet[AdminArea]:
    """Areas a user may assign or manage: their own and those under it (all for unrestricted staff)."""
    qs = AdminArea.objects.defer("boundary")
    if (gated := _gate(user, qs)) is not None:
        return gated
    return qs.filter(areas_within_q(user.area_id)) if user.area_id else qs.none()


def district_of(*, area_id: int) -> int | None:
    """The district an area lies in (itself for a district); None above district level. One query."""
    row = (
        AdminArea.objects.filter(pk=area_id)
        .values_list("level", "parent_id", "parent__level", "parent__parent_id")
        .first()
    )
    if row is None:
        return None
    level, parent, parent_level, grandparent = row
    if level == AdminArea.Level.DISTRICT:
        return area_id
    if level == AdminArea.Level.STREET:
        return parent
    if level == AdminArea.Level.COMMUNITY:
        return grandparent if parent_level == AdminArea.Level.STREET else parent
    return None


def users_visible(*, user: User) -> QuerySet[User]:
    """Accounts an administrator may see and edit: those of their area or below, and the members of the
    teams they see (gridmgmt.access.teams_visible); everyone for an unrestricted administrator."""
    qs = User.objects.all()
    if (gated := _gate(user, qs)) is not None:
        return gated
    if not user.area_id:
        return qs.filter(pk=user.pk)
    mine = areas_within_q(user.area_id, prefix="area__") | Q(team__in=teams_visible(user=user)) | Q(pk=user.pk)
    return qs.filter(mine)  # FK joins only: no row is repeated


def team_access(*, user: User, team_id: int) -> PatrolTeam:
    return _one_or_404(teams_visible(user=user), {"pk": team_id}, "队伍不存在 (team not found)")


def track_teams_visible(*, user: User) -> QuerySet[PatrolTeam]:
    """Whose tracks, attendance and coverage a user may read (who was where): command-centre staff, the teams of
    their area (as teams_visible); patrol members and residents none — members do not follow each other."""
    if user.is_authenticated and role_effective(user) in STAFF_ROLES:
        return teams_visible(user=user)
    return PatrolTeam.objects.none()


def track_team_access(*, user: User, team_id: int) -> PatrolTeam:
    return _one_or_404(track_teams_visible(user=user), {"pk": team_id}, "队伍不存在 (team not found)")


def track_member_access(*, user: User, member_id: int) -> User:
    """A patrol member whose track `user` may read: one of a team in track_teams_visible."""
    teams = track_teams_visible(user=user)
    members = User.objects.filter(team__in=teams.values("pk"))
    return _one_or_404(members, {"pk": member_id}, "队员不存在 (member not found)")


def cells_visible(*, user: User) -> QuerySet[GridCell]:
    qs = GridCell.objects.all()
    if (gated := _gate(user, qs)) is not None:
        return gated
    return qs if user.area_id is None else qs.filter(area_filter(user))


def cell_access(*, user: User, cell_id: int) -> GridCell:
    return _one_or_404(cells_visible(user=user), {"pk": cell_id}, "网格不存在 (cell not found)")


def speakers_visible(*, user: User) -> QuerySet[Speaker]:
    """Street loudspeakers: staff see those of their area (by the speaker's cell, like cases); nobody else any."""
    return _staff_area_scoped(user, Speaker.objects.all(), prefix="cell__")


def speaker_access(*, user: User, speaker_id: int) -> Speaker:
    return _one_or_404(speakers_visible(user=user), {"pk": speaker_id}, "喇叭不存在 (speaker not found)")


def speaker_calls_visible(*, user: User) -> QuerySet[SpeakerCall]:
    """The loudspeaker call log: staff, by the area each call was made in."""
    return _staff_area_scoped(user, SpeakerCall.objects.all())


def _staff_area_scoped(user: User, qs: QuerySet, *, prefix: str = "") -> QuerySet:
    """Rows of the staff member's area (reached through `prefix`); unrestricted users all; nobody else any."""
    if (gated := _gate(user, qs)) is not None:
        return gated
    if user.role not in STAFF_ROLES:
        return qs.none()
    return qs.filter(area_filter(user, prefix=prefix))


# --- the public view ------------------------------------------------------------------------------------------
# What an anonymous person may see of a case. /api/public/, /report/map.json, anonymous /api/duplicates/ and
# Open311 read cases through cases_public() and render them from case_public_view(); nothing else decides
# which cases or which fields the public gets.

# Channels where a member of the public writes for the public: their descriptions and "before" photos are
# public. Everything else stays private — hotline transcripts (the caller's words, often with a name or
# flat number), patrol and inspector notes, camera snapshots (plates and faces), assignments from above —
# and so does a resident-channel report filed by staff on someone's behalf. (There is no way for staff to
# publish those yet; until there is, they are never shown.)
PUBLIC_TEXT_SOURCES = frozenset({Case.Source.RESIDENT, Case.Source.OPEN311})
PUBLIC_TEXT_REPORTER_ROLES = frozenset({None, R.RESIDENT})  # None: no account (an Open311 post without api_key)
DISTANCE_STEP_M = 10  # distances shown to the public are from the cell centre, in steps of this many metres


def cases_public() -> QuerySet[Case]:
    """The cases anyone may know exist: those of non-sensitive categories, whatever their state — a voided
    or merged report stays visible as closed, so whoever filed it (an Open311 client has no other way to
    follow it) learns what became of it. A reporter holding the tracking token also sees their own case
    of a sensitive category."""
    return Case.objects.filter(category__is_sensitive=False)


def cases_public_related(qs: QuerySet[Case]) -> QuerySet[Case]:
    """`qs` with everything case_public_view reads in one go (no polygon of the cell, no per-case query)."""
    photos = CasePhoto.objects.exclude(kind=CasePhoto.Kind.CHECK).order_by("id")
    return (
        qs.select_related("category", "cell")
        .defer("cell__geom")
        .annotate(public_reporter_role=F("reporter__role"))
        .prefetch_related(Prefetch("photos", queryset=photos, to_attr="public_photo_candidates"))
    )


@dataclass(frozen=True)
class PublicPhoto:
    kind: str
    url: str  # the media URL (relative; the caller makes it absolute)


@dataclass(frozen=True)
class PublicCase:
    code: str
    category_code: str
    category: str  # plain words in the request's language
    status: str
    status_label: str
    is_open: bool
    merged: bool
    location: Point  # the centre of the case's cell — never the reported point
    cell_code: str
    reporter_words_public: bool  # the reporter's description and before photos/links may be shown
    description: str | None  # None: none, or not public (see PUBLIC_TEXT_SOURCES)
    photos: tuple[PublicPhoto, ...]
    reported_at: datetime
    due_at: datetime | None  # the promise made to residents (set at filing, moved only by an extension)
    closed_at: datetime | None
    updated_at: datetime
    supporters: int
    satisfaction: int | None


def category_public_name(category: Category) -> str:
    """A category as residents read it: the English name in English, else the plain wording (通俗说法)."""
    if language_is_english() and category.name_en:
        return category.name_en
    return category.plain_name or category.name


def _text_public(case: Case) -> bool:
    if case.published_at is not None:  # a staff member published it (rules: "publish")
        return True
    if case.source not in PUBLIC_TEXT_SOURCES:
        return False
    if hasattr(case, "public_reporter_role"):  # read with cases_public_related
        role = case.public_reporter_role
    elif case.reporter_id is None:
        role = None
    else:
        role = User.objects.filter(pk=case.reporter_id).values_list("role", flat=True).first()
    return role in PUBLIC_TEXT_REPORTER_ROLES


def case_public_view(case: Case) -> PublicCase:
    """The one public view of a case: what /api/public/, the residents' map, anonymous duplicates and Open311
    show. No reporter (name, phone, account), no staff notes, no exact point or address. Whether the case
    may be shown at all is cases_public()'s decision (or the reporter's tracking token)."""
    text_public = _text_public(case)
    photos = getattr(case, "public_photo_candidates", None)
    if photos is None:
        photos = case.photos.exclude(kind=CasePhoto.Kind.CHECK).order_by("id")
    shown = tuple(
        PublicPhoto(kind=p.kind, url=p.image.url)
        for p in photos
        if p.kind == CasePhoto.Kind.AFTER or (p.kind == CasePhoto.Kind.BEFORE and text_public)
    )
    return PublicCase(
        code=case.code,
        category_code=case.category.code,
        category=category_public_name(case.category),
        status=case.status,
        status_label=str(Case.Status(case.status).label),
        is_open=case.status in OPEN_STATUSES,
        merged=case.duplicate_of_id is not None,
        location=case.cell.center,
        cell_code=case.cell.code,
        reporter_words_public=text_public,
        description=(case.description or None) if text_public else None,
        photos=shown,
        reported_at=case.reported_at,
        due_at=case.due_at,
        closed_at=case.closed_at,
        updated_at=case.updated_at,
        supporters=case.supporters,
        satisfaction=case.satisfaction,
    )


def photo_access(*, user: User, name: str) -> None:
    """May `user` see the stored photo file `name` (a path under MEDIA_ROOT)? Raises Http404 when not — a photo
    out of scope looks like one that does not exist. One file may back several photos (the demo shares a
    pool): seeing any of them is enough. Signed-in users see every photo of the cases they may see
    (cases_visible, as the case API shows them); anyone, signed in or not, sees the photos the public view of
    a public case shows (cases_public + case_public_view: "after" photos, "before" photos of public words)."""
    photos = CasePhoto.objects.filter(image=name)
    if user.is_authenticated and photos.filter(case__in=cases_visible(user=user)).exists():
        return
    url = CasePhoto._meta.get_field("image").storage.url(name)
    public = cases_public_related(cases_public().filter(pk__in=photos.values("case_id"))).order_by("pk")
    for case in public.iterator(chunk_size=50):
        if any(shown.url == url for shown in case_public_view(case).photos):
            return
    raise Http404("照片不存在 (photo not found)")


def events_public(case: Case) -> QuerySet:
    """The timeline a stranger sees: the report, each change of stage and the rating — not the centre's own
    steps that change no stage (督办, a loudspeaker call, an escalation, publishing, a +1), nor any note or
    person (callers read type, status and time only)."""
    shown = Q(type=CaseEvent.Type.REPORTED) | Q(type=CaseEvent.Type.RATED) | ~Q(from_status=F("to_status"))
    return case.events.filter(shown).order_by("id")


def distance_public_m(distance_m: float) -> int:
    """A distance as the public sees it (measured to the cell centre), rounded to DISTANCE_STEP_M."""
    return round(float(distance_m) / DISTANCE_STEP_M) * DISTANCE_STEP_M
