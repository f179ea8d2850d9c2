"""Writes of the case domain: intake from every channel, and the workflow's transitions.

Every transition is one function here: it locks the case, checks the actor's role and the case's state,
changes it, appends exactly one event row, and returns the case. A move that is not allowed raises
TransitionNotAllowed (409) and writes nothing; two people acting on one case at once are serialised by
the row lock, so the second one sees the new state and is refused.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from django.contrib.gis.geos import Point
from django.db import IntegrityError, connection, transaction
from django.db.models.expressions import DatabaseDefault
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from geo import selectors as geo_selectors
from gridmgmt import access
from gridmgmt.errors import InvalidInput, OutsideServiceArea, RoleNotAllowed, TransitionNotAllowed
from gridmgmt.events import event_append
from gridmgmt.models import Case, CaseEvent, CasePhoto, Category, PatrolTeam, User
from gridmgmt.photos import photos_prepare, photos_store
from gridmgmt.workcalendar import limit_add

S = Case.Status
E = CaseEvent.Type
R = User.Role

OPEN_STATUSES = frozenset({S.REPORTED, S.FILED, S.DISPATCHED, S.SENT_BACK, S.HANDLING, S.HANDLED, S.CHECKED, S.PARKED})
CLOCKED_STATUSES = frozenset({S.FILED, S.DISPATCHED, S.SENT_BACK, S.HANDLING})
DISPATCHERS = frozenset({R.DISPATCHER, R.SHIFT_LEADER, R.ADMIN})
LEADERS = frozenset({R.SHIFT_LEADER, R.ADMIN})
MAX_SEND_BACKS = 2  # after this many, only arbitration (审定) can assign the case
WARN_FRACTION = 0.75


# --- intake ------------------------------------------------------------------------------------------


def _point(lon, lat) -> Point:
    try:
        lon, lat = float(lon), float(lat)
    except (TypeError, ValueError):
        raise InvalidInput(_("缺少位置或坐标不是数字"), field="location", code="location_missing") from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90) or lon != lon or lat != lat:
        raise InvalidInput(_("坐标超出有效范围 (经度 -180–180, 纬度 -90–90)"), field="location", code="location_range")
    return Point(lon, lat, srid=4326)


def _category_refuse(*, code) -> NoReturn:
    raise InvalidInput(_("未知的案件类别: %(code)s") % {"code": code}, field="category", code="unknown_category")


def category_resolve(*, code: str) -> Category:
    category = Category.objects.filter(code=code, is_active=True, parent__isnull=False).first()
    if category is None:
        _category_refuse(code=code)
    return category


# The case row in one statement: the category's defaults (and its validity) come from the category table and
# the code's serial from a sequence inside the same INSERT, so a report costs no separate lookups. An
# unknown or inactive category (or a major class) selects no row, so nothing is inserted.
_CASE_INSERT = """
    INSERT INTO gridmgmt_case (code, category_id, urgency, department_id, {columns})
    SELECT %s || to_char(nextval('gridmgmt_case_code_seq'), 'FM9999999999990000000'),
           cat.id, coalesce(%s, cat.default_urgency), cat.default_department_id, {values}
    FROM gridmgmt_category cat
    WHERE cat.code = %s AND cat.is_active AND cat.parent_id IS NOT NULL
    RETURNING id, code, category_id, urgency, department_id
"""
_FROM_INSERT = ("id", "code", "category_id", "urgency", "department_id")
_case_insert_sql: dict[tuple[str, ...], str] = {}


def _case_insert(*, case: Case, category_code: str, urgency: str | None) -> bool:
    """INSERT `case` (every field but those in _FROM_INSERT, which it fills in). False if the category
    is not reportable. The values go through the fields' own save preparation, as Model.save would."""
    columns, placeholders, params = [], [], []
    for field in Case._meta.concrete_fields:
        if field.attname in _FROM_INSERT:
            continue
        value = field.pre_save(case, add=True)
        if isinstance(value, DatabaseDefault):
            continue
        value = field.get_db_prep_save(value, connection=connection)
        columns.append(field.column)
        placeholder = getattr(field, "get_placeholder", None)
        placeholders.append(placeholder(value, None, connection) if placeholder else "%s")
        params.append(value)
    key = tuple(columns)
    sql = _case_insert_sql.get(key)
    if sql is None:
        quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
        sql = _case_insert_sql[key] = _CASE_INSERT.format(columns=quoted, values=", ".join(placeholders))
    with connection.cursor() as cur:
        cur.execute(sql, [f"{timezone.localdate():%Y%m%d}", urgency, *params, category_code])
        row = cur.fetchone()
    if row is None:
        return False
    case.id, case.code, case.category_id, case.urgency, case.department_id = row
    case._state.adding, case._state.db = False, connection.alias
    return True


def case_id_by_idempotency_key(*, key: str) -> int | None:
    with connection.cursor() as cur:
        cur.execute("SELECT id FROM gridmgmt_case WHERE idempotency_key = %s", [key])
        row = cur.fetchone()
    return row[0] if row else None


def case_report(
    *,
    source: str,
    category_code: str,
    lon,
    lat,
    description: str = "",
    urgency: str | None = None,
    reporter: User | None = None,
    reporter_name: str = "",
    reporter_phone: str = "",
    address: str = "",
    photos: Sequence = (),
    idempotency_key: str | None = None,
    camera_id: int | None = None,
    external_id: str = "",
    at: datetime | None = None,
    data: dict | None = None,
) -> tuple[Case, bool]:
    """File a report from any channel. Returns (case, created); a repeated idempotency key returns the
    first case and writes nothing. Everything is validated before anything is written. `data` adds
    channel details (e.g. the camera alarm) to the REPORTED event.

    Two statements before the transaction (idempotency key, locate) and one INSERT each in it for the case,
    its photos, the event and the event's photo links: no lookups of the category or its department and no
    separate fetch of the code serial (the case INSERT does those), no ORM query building for the reads."""
    if idempotency_key:
        existing_id = case_id_by_idempotency_key(key=idempotency_key)
        if existing_id is not None:
            return Case.objects.get(pk=existing_id), False
    if source not in Case.Source.values:
        raise InvalidInput(_("未知的来源: %(s)s") % {"s": source}, field="source")
    if urgency is not None and urgency not in Case.Urgency.values:
        raise InvalidInput(_("紧急程度只能是 normal 或 urgent"), field="urgency")
    if len(description) > 2000:
        raise InvalidInput(_("描述不能超过 2000 字"), field="description")
    if len(reporter_phone) > 20:
        raise InvalidInput(_("电话号码过长"), field="reporter_phone")
    point = _point(lon, lat)
    cell = geo_selectors.cell_locate(lon=point.x, lat=point.y)
    if cell is None:
        raise OutsideServiceArea(_("该位置不在服务范围内"), field="location")
    prepared = photos_prepare(uploads=photos)
    now = at or timezone.now()
    case = Case(
        point=point,
        address=address[:200],
        cell_id=cell.id,
        community_id=cell.community_id,
        street_id=cell.street_id,
        district_id=cell.district_id,
        responsibility_grid_id=cell.responsibility_grid_id,
        source=source,
        status=S.REPORTED,
        description=description,
        reporter=reporter if reporter is not None and reporter.is_authenticated else None,
        reporter_name=reporter_name[:50],
        reporter_phone=reporter_phone,
        camera_id=camera_id,
        external_id=external_id[:64],
        idempotency_key=idempotency_key or None,
        reported_at=now,
    )
    try:
        with transaction.atomic():
            if not _case_insert(case=case, category_code=category_code, urgency=urgency):
                _category_refuse(code=category_code)
            stored = photos_store(case=case, prepared=prepared, kind=CasePhoto.Kind.BEFORE)
            event_append(
                case=case,
                type=E.REPORTED,
                actor=case.reporter,
                from_status="",
                to_status=S.REPORTED,
                at=now,
                location=point,
                note=description[:200],
                data={**(data or {}), "source": source},
                photos=stored,
            )
    except IntegrityError:
        # Two submissions with one idempotency key raced: the other one won, return its case.
        if idempotency_key:
            existing = Case.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing, False
        raise
    return case, True


# --- the transition engine ------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    sources: frozenset
    roles: frozenset
    event: str
    # Lazy, so 403/409 messages are built in the request's language; the context keeps these verb phrases
    # ("不能挂账" → "cannot park") apart from the same words used as status/event labels.
    label: str


RULES: dict[str, Rule] = {
    "file": Rule(frozenset({S.REPORTED}), DISPATCHERS, E.FILED, pgettext_lazy("workflow action", "立案")),
    "void": Rule(frozenset({S.REPORTED}), DISPATCHERS, E.VOIDED, pgettext_lazy("workflow action", "作废")),
    "dispatch": Rule(
        frozenset({S.FILED, S.SENT_BACK}), DISPATCHERS, E.DISPATCHED, pgettext_lazy("workflow action", "派遣")
    ),
    "accept": Rule(
        frozenset({S.DISPATCHED}), frozenset({R.PATROL}), E.ACCEPTED, pgettext_lazy("workflow action", "签收")
    ),
    "send_back": Rule(
        frozenset({S.DISPATCHED}), frozenset({R.PATROL}), E.SENT_BACK, pgettext_lazy("workflow action", "退单")
    ),
    "arbitrate": Rule(
        frozenset({S.SENT_BACK, S.FILED}), LEADERS, E.ARBITRATED, pgettext_lazy("workflow action", "审定")
    ),
    "handle": Rule(
        frozenset({S.HANDLING}), frozenset({R.PATROL}), E.HANDLED, pgettext_lazy("workflow action", "处置反馈")
    ),
    "self_handle": Rule(
        frozenset({S.REPORTED}), frozenset({R.PATROL}), E.SELF_HANDLED, pgettext_lazy("workflow action", "自处理")
    ),
    "check_pass": Rule(
        frozenset({S.HANDLED}),
        frozenset({R.INSPECTOR, R.ADMIN}),
        E.CHECK_PASSED,
        pgettext_lazy("workflow action", "核查通过"),
    ),
    "check_fail": Rule(
        frozenset({S.HANDLED}),
        frozenset({R.INSPECTOR, R.ADMIN}),
        E.CHECK_FAILED,
        pgettext_lazy("workflow action", "核查不通过"),
    ),
    "close": Rule(frozenset({S.CHECKED}), LEADERS, E.CLOSED, pgettext_lazy("workflow action", "结案")),
    "rate": Rule(
        frozenset({S.CLOSED}), frozenset({R.RESIDENT, *DISPATCHERS}), E.RATED, pgettext_lazy("workflow action", "评价")
    ),
    "reopen": Rule(
        frozenset({S.CLOSED}),
        frozenset({R.RESIDENT, *LEADERS}),
        E.REOPENED,
        pgettext_lazy("workflow action", "重新打开"),
    ),
    "archive": Rule(frozenset({S.CLOSED}), LEADERS, E.ARCHIVED, pgettext_lazy("workflow action", "归档")),
    "extension_request": Rule(
        frozenset({S.HANDLING}),
        frozenset({R.PATROL}),
        E.EXTENSION_REQUESTED,
        pgettext_lazy("workflow action", "申请延时"),
    ),
    "extension_approve": Rule(
        frozenset({S.HANDLING}), LEADERS, E.EXTENSION_APPROVED, pgettext_lazy("workflow action", "批准延时")
    ),
    "extension_reject": Rule(
        frozenset({S.HANDLING}), LEADERS, E.EXTENSION_REJECTED, pgettext_lazy("workflow action", "驳回延时")
    ),
    "park": Rule(
        frozenset({S.FILED, S.DISPATCHED, S.SENT_BACK, S.HANDLING}),
        LEADERS,
        E.PARKED,
        pgettext_lazy("workflow action", "挂账"),
    ),
    "resume": Rule(frozenset({S.PARKED}), LEADERS, E.RESUMED, pgettext_lazy("workflow action", "恢复")),
    "merge": Rule(frozenset({S.REPORTED, S.FILED}), DISPATCHERS, E.MERGED, pgettext_lazy("workflow action", "合并")),
}


@dataclass
class Change:
    """What an action's effect decides: the new status, and the event's note/data/photos."""

    to_status: str
    note: str = ""
    data: dict | None = None
    photos: list | None = None


def _require(text: str, *, field: str, message: str) -> str:
    text = (text or "").strip()
    if not text:
        raise InvalidInput(message, field=field, code="required")
    if len(text) > 1000:
        raise InvalidInput(_("说明不能超过 1000 字"), field=field)
    return text


def _transition(
    *,
    action: str,
    case_id: int,
    actor: User,
    effect: Callable[[Case, datetime], Change],
    location: Point | None = None,
    expected_version: int | None = None,
) -> Case:
    rule = RULES[action]
    with transaction.atomic():
        case = access.case_access(user=actor, case_id=case_id, for_update=True)
        role = R.ADMIN if actor.is_superuser else actor.role
        if role not in rule.roles:
            raise RoleNotAllowed(
                _("角色「%(role)s」不能执行「%(action)s」") % {"role": User.Role(role).label, "action": rule.label}
            )
        if case.status not in rule.sources:
            raise TransitionNotAllowed(
                _("案件当前状态为「%(status)s」,不能%(action)s")
                % {"status": Case.Status(case.status).label, "action": rule.label}
            )
        if expected_version is not None and case.version != expected_version:
            raise TransitionNotAllowed(_("案件已被他人更新,请刷新后重试"), code="stale")
        now = timezone.now()
        from_status = case.status
        change = effect(case, now)
        case.status = change.to_status
        case.version += 1
        case.save()
        event_append(
            case=case,
            type=rule.event,
            actor=actor,
            from_status=from_status,
            to_status=case.status,
            at=now,
            note=change.note,
            data=change.data,
            location=location,
            photos=change.photos or (),
        )
    return case


def _stage_start(case: Case, *, now: datetime, deadline: datetime | None, warn: datetime | None = None) -> None:
    case.stage_started_at = now
    case.deadline_at = deadline
    if deadline is None:
        case.warn_at = None
    else:
        case.warn_at = warn or now + (deadline - now) * WARN_FRACTION


def _dispatch_window(case: Case, now: datetime) -> datetime:
    minutes = (
        case.category.dispatch_minutes_urgent
        if case.urgency == Case.Urgency.URGENT
        else case.category.dispatch_minutes_normal
    )
    return now + timedelta(minutes=minutes)


def _handling_limit(case: Case) -> tuple[int, str]:
    c = case.category
    if case.urgency == Case.Urgency.URGENT:
        return c.limit_urgent, c.urgent_limit_unit
    return c.limit_normal, c.limit_unit


def _require_team_member(case: Case, actor: User) -> None:
    if not actor.team_id or case.team_id != actor.team_id:
        raise RoleNotAllowed(_("只有被派遣队伍的队员可以执行此操作"))


# --- the transitions -----------------------------------------------------------------------------------


def case_file(*, case_id: int, actor: User, note: str = "", urgency: str | None = None) -> Case:
    """立案: verified; the dispatch clock starts and the resident-facing deadline is set. For a category with
    auto-dispatch on (off by default), the same action then dispatches to the top-ranked team: two events,
    one transaction."""

    def effect(case: Case, now: datetime) -> Change:
        if urgency is not None:
            if urgency not in Case.Urgency.values:
                raise InvalidInput(_("紧急程度只能是 normal 或 urgent"), field="urgency")
            case.urgency = urgency
        dispatch_by = _dispatch_window(case, now)
        _stage_start(case, now=now, deadline=dispatch_by)
        case.dispatch_deadline_at = dispatch_by
        amount, unit = _handling_limit(case)
        case.due_at = limit_add(start=dispatch_by, amount=amount, unit=unit)
        return Change(S.FILED, note=note, data={"due_at": case.due_at.isoformat()})

    with transaction.atomic():
        case = _transition(action="file", case_id=case_id, actor=actor, effect=effect)
        if case.category.auto_dispatch:
            from gridmgmt.selectors import dispatch_candidates  # selectors read services' status sets

            top = dispatch_candidates(case=case, limit=1)
            if top:
                case = case_dispatch(case_id=case.pk, actor=actor, team_id=top[0].team.pk, note=_("自动派遣"))
    return case


def case_void(*, case_id: int, actor: User, reason: str) -> Case:
    def effect(case: Case, now: datetime) -> Change:
        text = _require(reason, field="reason", message=_("作废必须填写原因"))
        _stage_start(case, now=now, deadline=None)
        case.closed_at = now
        return Change(S.VOIDED, note=text)

    return _transition(action="void", case_id=case_id, actor=actor, effect=effect)


def _team_for(team_id, case: Case) -> PatrolTeam:
    team = PatrolTeam.objects.filter(pk=team_id).first() if team_id else None
    if team is None or team.district_id != case.district_id:
        raise InvalidInput(_("请选择本区的处置队伍"), field="team", code="unknown_team")
    return team


def ownership_evidence(*, case: Case, team: PatrolTeam) -> dict:
    """Why this team is responsible: the responsibility grid it owns, or the component's departments."""
    evidence: dict = {"team": team.code}
    grid = case.responsibility_grid
    if grid is not None:
        evidence["responsibility_grid"] = grid.code
        evidence["grid_owner"] = grid.team_id == team.id
    if case.department_id:
        evidence["department"] = case.department.code
    evidence["cell"] = case.cell.code
    return evidence


def case_dispatch(*, case_id: int, actor: User, team_id: int, note: str = "", expected_version: int | None = None):
    """派遣 to a patrol team, recording the ownership evidence."""

    def effect(case: Case, now: datetime) -> Change:
        if case.send_back_count >= MAX_SEND_BACKS:
            raise TransitionNotAllowed(_("已多次退单,须由值班长审定后派遣"), code="needs_arbitration")
        team = _team_for(team_id, case)
        case.team = team
        _stage_start(case, now=now, deadline=_dispatch_window(case, now))
        data = {"team": team.code, "evidence": ownership_evidence(case=case, team=team)}
        return Change(S.DISPATCHED, note=note, data=data)

    return _transition(
        action="dispatch", case_id=case_id, actor=actor, effect=effect, expected_version=expected_version
    )


def case_arbitrate(*, case_id: int, actor: User, team_id: int, note: str) -> Case:
    """审定: the shift leader decides who owns it; that team cannot send it back again."""

    def effect(case: Case, now: datetime) -> Change:
        text = _require(note, field="note", message=_("审定必须说明理由"))
        team = _team_for(team_id, case)
        case.team = team
        _stage_start(case, now=now, deadline=_dispatch_window(case, now))
        data = {"team": team.code, "forced": True, "evidence": ownership_evidence(case=case, team=team)}
        return Change(S.DISPATCHED, note=text, data=data)

    return _transition(action="arbitrate", case_id=case_id, actor=actor, effect=effect)


def case_accept(*, case_id: int, actor: User, location: Point | None = None) -> Case:
    """签收: the handling clock starts, on the working calendar."""

    def effect(case: Case, now: datetime) -> Change:
        _require_team_member(case, actor)
        amount, unit = _handling_limit(case)
        deadline = limit_add(start=now, amount=amount, unit=unit)
        warn = limit_add(start=now, amount=amount * WARN_FRACTION, unit=unit)
        _stage_start(case, now=now, deadline=deadline, warn=warn)
        case.accepted_at = now
        return Change(S.HANDLING, data={"deadline_at": deadline.isoformat()})

    return _transition(action="accept", case_id=case_id, actor=actor, effect=effect, location=location)


def case_send_back(*, case_id: int, actor: User, reason: str) -> Case:
    """退单: not ours, with a reason; back to the dispatcher."""

    def effect(case: Case, now: datetime) -> Change:
        _require_team_member(case, actor)
        text = _require(reason, field="reason", message=_("退单必须填写原因"))
        if case.events.filter(type=E.ARBITRATED, data__team=case.team.code).exists():
            raise TransitionNotAllowed(_("该案件已审定由本队处置,不能退单"), code="arbitrated")
        data = {"team": case.team.code}
        case.team = None
        case.send_back_count += 1
        _stage_start(case, now=now, deadline=_dispatch_window(case, now))
        return Change(S.SENT_BACK, note=text, data=data)

    return _transition(action="send_back", case_id=case_id, actor=actor, effect=effect)


def _after_photos(photos: Sequence, case: Case, *, required: bool) -> list[CasePhoto]:
    if required and not photos:
        raise InvalidInput(_("处置反馈必须上传处置后照片"), field="photos", code="after_photo_required")
    return photos_store(case=case, prepared=photos_prepare(uploads=photos), kind=CasePhoto.Kind.AFTER)


def case_handle(*, case_id: int, actor: User, note: str = "", photos: Sequence = (), location=None) -> Case:
    """处置反馈: reported back with an "after" photo; goes to the inspector's check."""

    def effect(case: Case, now: datetime) -> Change:
        _require_team_member(case, actor)
        stored = _after_photos(photos, case, required=True)
        on_time = case.deadline_at is None or now <= case.deadline_at
        data = {"on_time": on_time, "deadline_at": case.deadline_at.isoformat() if case.deadline_at else None}
        case.extension_pending = False
        _stage_start(case, now=now, deadline=None)
        return Change(S.HANDLED, note=note, data=data, photos=stored)

    return _transition(action="handle", case_id=case_id, actor=actor, effect=effect, location=location)


def case_self_handle(*, case_id: int, actor: User, note: str = "", photos: Sequence = (), location=None) -> Case:
    """自处理: a patrol member fixed it on the spot; it still goes to the inspector (the fixer never closes)."""

    def effect(case: Case, now: datetime) -> Change:
        if not actor.team_id:
            raise RoleNotAllowed(_("只有巡查队员可以自处理"))
        stored = _after_photos(photos, case, required=True)
        case.team_id = actor.team_id
        case.accepted_at = now
        _stage_start(case, now=now, deadline=None)
        return Change(S.HANDLED, note=note, data={"team_id": actor.team_id, "on_time": True}, photos=stored)

    return _transition(action="self_handle", case_id=case_id, actor=actor, effect=effect, location=location)


def case_check(*, case_id: int, actor: User, passed: bool, note: str = "", photos: Sequence = (), location=None):
    """核查: the grid inspector checks on site; a failure sends it back to the same team (返工)."""

    def effect(case: Case, now: datetime) -> Change:
        stored = photos_store(case=case, prepared=photos_prepare(uploads=photos), kind=CasePhoto.Kind.CHECK)
        if passed:
            return Change(S.CHECKED, note=note, photos=stored)
        text = _require(note, field="note", message=_("核查不通过必须说明原因"))
        case.rework_count += 1
        # The handling clock keeps running: a failed fix earns no extra time. Handling cleared the stage
        # clock, so bring back the deadline the HANDLED event recorded (lights, escalation and KPIs need it).
        handled = case.events.filter(type=E.HANDLED).order_by("-id").first()
        deadline = (handled.data or {}).get("deadline_at") if handled else None
        if deadline:
            case.deadline_at = datetime.fromisoformat(deadline)
            since = case.accepted_at or now
            case.warn_at = since + (case.deadline_at - since) * WARN_FRACTION
        case.stage_started_at = now
        return Change(S.HANDLING, note=text, data={"rework": case.rework_count}, photos=stored)

    return _transition(
        action="check_pass" if passed else "check_fail", case_id=case_id, actor=actor, effect=effect, location=location
    )


def case_close(*, case_id: int, actor: User, note: str = "", hotline_reply: str = "") -> Case:
    """结案 by the command-centre shift leader; a hotline order needs its reply to the caller."""

    def effect(case: Case, now: datetime) -> Change:
        if case.source == Case.Source.HOTLINE:
            message = _("12345 工单结案须填写回复内容")
            case.hotline_reply = _require(hotline_reply, field="hotline_reply", message=message)
            case.replied_at = now
        case.closed_at = now
        on_time = case.due_at is None or now <= case.due_at
        return Change(S.CLOSED, note=note, data={"on_time_overall": on_time})

    return _transition(action="close", case_id=case_id, actor=actor, effect=effect)


def case_rate(*, case_id: int, actor: User, satisfaction: int, note: str = "") -> Case:
    """综合评价 / 回访: 1–5; a resident rates only their own case, once."""

    def effect(case: Case, now: datetime) -> Change:
        try:
            score = int(satisfaction)
        except (TypeError, ValueError):
            score = 0
        if not 1 <= score <= 5:
            raise InvalidInput(_("满意度须为 1–5 分"), field="satisfaction")
        if case.satisfaction is not None:
            raise TransitionNotAllowed(_("该案件已评价"), code="already_rated")
        case.satisfaction = score
        return Change(S.CLOSED, note=note, data={"satisfaction": score})

    return _transition(action="rate", case_id=case_id, actor=actor, effect=effect)


def case_reopen(*, case_id: int, actor: User, reason: str) -> Case:
    """ "Not fixed": back to dispatch, the same team suggested; the resident-facing clock is not reset."""

    def effect(case: Case, now: datetime) -> Change:
        text = _require(reason, field="reason", message=_("请说明未解决的情况"))
        data = {"previous_team": case.team.code if case.team else None}
        case.closed_at = None
        case.satisfaction = None
        _stage_start(case, now=now, deadline=_dispatch_window(case, now))
        return Change(S.FILED, note=text, data=data)

    return _transition(action="reopen", case_id=case_id, actor=actor, effect=effect)


def case_archive(*, case_id: int, actor: User) -> Case:
    return _transition(action="archive", case_id=case_id, actor=actor, effect=lambda case, now: Change(S.ARCHIVED))


def case_extension_request(*, case_id: int, actor: User, hours: float, reason: str) -> Case:
    def effect(case: Case, now: datetime) -> Change:
        _require_team_member(case, actor)
        text = _require(reason, field="reason", message=_("申请延时必须说明原因"))
        try:
            amount = float(hours)
        except (TypeError, ValueError):
            amount = 0
        if not 0 < amount <= 24 * 30:
            raise InvalidInput(_("延时时长须在 0–720 工作小时之间"), field="hours")
        if case.extension_pending:
            raise TransitionNotAllowed(_("已有延时申请待审批"), code="extension_pending")
        case.extension_pending = True
        return Change(S.HANDLING, note=text, data={"hours": amount})

    return _transition(action="extension_request", case_id=case_id, actor=actor, effect=effect)


def case_extension_decide(*, case_id: int, actor: User, approve: bool, note: str = "") -> Case:
    def effect(case: Case, now: datetime) -> Change:
        if not case.extension_pending:
            raise TransitionNotAllowed(_("没有待审批的延时申请"), code="no_extension")
        request = case.events.filter(type=E.EXTENSION_REQUESTED).order_by("-id").first()
        hours = float(request.data.get("hours", 0)) if request else 0
        case.extension_pending = False
        if not approve:
            return Change(S.HANDLING, note=note)
        unit = Category.LimitUnit.WORKING_HOURS
        case.deadline_at = limit_add(start=case.deadline_at or now, amount=hours, unit=unit)
        if case.due_at:
            case.due_at = limit_add(start=case.due_at, amount=hours, unit=unit)
        return Change(S.HANDLING, note=note, data={"hours": hours, "deadline_at": case.deadline_at.isoformat()})

    return _transition(
        action="extension_approve" if approve else "extension_reject", case_id=case_id, actor=actor, effect=effect
    )


def case_park(*, case_id: int, actor: User, reason: str) -> Case:
    """挂账: paused (e.g. waits for another authority); the clocks stop until resumed."""

    def effect(case: Case, now: datetime) -> Change:
        text = _require(reason, field="reason", message=_("挂账必须说明原因"))
        case.parked_at = now
        return Change(S.PARKED, note=text)

    return _transition(action="park", case_id=case_id, actor=actor, effect=effect)


def case_resume(*, case_id: int, actor: User, note: str = "") -> Case:
    def effect(case: Case, now: datetime) -> Change:
        parked = case.events.filter(type=E.PARKED).order_by("-id").first()
        paused = now - (case.parked_at or now)
        for field in ("deadline_at", "warn_at", "due_at", "dispatch_deadline_at"):
            value = getattr(case, field)
            if value is not None:
                setattr(case, field, value + paused)
        case.parked_at = None
        return Change(parked.from_status, note=note, data={"paused_seconds": int(paused.total_seconds())})

    return _transition(action="resume", case_id=case_id, actor=actor, effect=effect)


def case_merge(*, case_id: int, actor: User, into_id: int, note: str = "") -> Case:
    """Staff merge a duplicate into another open case: it closes with a link; both histories stay."""

    def effect(case: Case, now: datetime) -> Change:
        target = access.cases_visible(user=actor).filter(pk=into_id).exclude(pk=case.pk).first()
        if target is None or target.status not in OPEN_STATUSES:
            raise InvalidInput(_("目标案件不存在或已办结"), field="into")
        case.duplicate_of = target
        case.closed_at = now
        _stage_start(case, now=now, deadline=None)
        Case.objects.filter(pk=target.pk).update(supporters=target.supporters + 1 + case.supporters)
        return Change(S.CLOSED, note=note, data={"duplicate_of": target.code})

    return _transition(action="merge", case_id=case_id, actor=actor, effect=effect)


def case_support(*, case_id: int, actor: User | None, note: str = "") -> Case:
    """+1: a resident says "me too" on an open case (no state change, one event)."""
    with transaction.atomic():
        case = Case.objects.select_for_update().filter(pk=case_id, status__in=OPEN_STATUSES).first()
        if case is None:
            raise TransitionNotAllowed(_("该案件已办结,不能附议"), code="not_open")
        case.supporters += 1
        case.save(update_fields=["supporters", "updated_at"])
        event_append(
            case=case,
            type=E.SUPPORTED,
            actor=actor if actor is not None and actor.is_authenticated else None,
            from_status=case.status,
            to_status=case.status,
            note=note[:200],
        )
    return case


def case_alarm_attach(*, case_id: int, alarm: dict, photos: Sequence = (), at: datetime | None = None) -> Case | None:
    """One more camera alarm of an event already reported: recorded on the open case (no state change, one
    event). Returns None when the case is no longer open, so the caller reports a new case instead."""
    prepared = photos_prepare(uploads=photos)
    with transaction.atomic():
        case = Case.objects.select_for_update().filter(pk=case_id, status__in=OPEN_STATUSES).first()
        if case is None:
            return None
        stored = photos_store(case=case, prepared=prepared, kind=CasePhoto.Kind.BEFORE)
        event_append(
            case=case,
            type=E.SUPPORTED,
            actor=None,
            from_status=case.status,
            to_status=case.status,
            at=at,
            location=case.point,
            data={"alarm": alarm},
            photos=stored,
        )
    return case
