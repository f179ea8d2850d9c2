"""The workflow's transitions: every move of a case after it is reported.

Every transition is one function here: it locks the case, checks the move against `gridmgmt.rules`
(role, state, guard), changes it, appends exactly one event row, and returns the case. A move that is not
allowed raises TransitionNotAllowed (409) or RoleNotAllowed (403) and writes nothing; two people acting on
one case at once are serialised by the row lock, so the second one sees the new state and is refused.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.gis.geos import Point
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from gridmgmt import access, events
from gridmgmt.errors import InvalidInput, TransitionNotAllowed
from gridmgmt.events import event_append
from gridmgmt.models import Case, CaseEvent, CasePhoto, Category, PatrolTeam, User
from gridmgmt.photos import photos_prepare, photos_store
from gridmgmt.rules import RULES, rule_check
from gridmgmt.selectors import dispatch_candidates
from gridmgmt.states import OPEN_STATUSES, WARN_FRACTION
from gridmgmt.workcalendar import limit_add

S = Case.Status
E = CaseEvent.Type

# --- the transition engine ------------------------------------------------------------------------


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
        rule_check(action=action, case=case, user=actor)
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
        return Change(S.FILED, note=note, data=events.filed_data(due_at=case.due_at))

    with transaction.atomic():
        case = _transition(action="file", case_id=case_id, actor=actor, effect=effect)
        if case.category.auto_dispatch:
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
        team = _team_for(team_id, case)
        case.team = team
        _stage_start(case, now=now, deadline=_dispatch_window(case, now))
        data = events.dispatched_data(team=team, evidence=ownership_evidence(case=case, team=team))
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
        data = events.dispatched_data(team=team, evidence=ownership_evidence(case=case, team=team), forced=True)
        return Change(S.DISPATCHED, note=text, data=data)

    return _transition(action="arbitrate", case_id=case_id, actor=actor, effect=effect)


def case_accept(*, case_id: int, actor: User, location: Point | None = None) -> Case:
    """签收: the handling clock starts, on the working calendar."""

    def effect(case: Case, now: datetime) -> Change:
        amount, unit = _handling_limit(case)
        deadline = limit_add(start=now, amount=amount, unit=unit)
        warn = limit_add(start=now, amount=amount * WARN_FRACTION, unit=unit)
        _stage_start(case, now=now, deadline=deadline, warn=warn)
        case.accepted_at = now
        return Change(S.HANDLING, data=events.accepted_data(deadline_at=deadline))

    return _transition(action="accept", case_id=case_id, actor=actor, effect=effect, location=location)


def case_send_back(*, case_id: int, actor: User, reason: str) -> Case:
    """退单: not ours, with a reason; back to the dispatcher."""

    def effect(case: Case, now: datetime) -> Change:
        text = _require(reason, field="reason", message=_("退单必须填写原因"))
        if case.events.filter(type=E.ARBITRATED, data__team=case.team.code).exists():
            raise TransitionNotAllowed(_("该案件已审定由本队处置,不能退单"), code="arbitrated")
        data = events.sent_back_data(team=case.team)
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
        stored = _after_photos(photos, case, required=True)
        on_time = case.deadline_at is None or now <= case.deadline_at
        data = events.handled_data(on_time=on_time, deadline_at=case.deadline_at)
        case.extension_pending = False
        _stage_start(case, now=now, deadline=None)
        return Change(S.HANDLED, note=note, data=data, photos=stored)

    return _transition(action="handle", case_id=case_id, actor=actor, effect=effect, location=location)


def case_self_handle(*, case_id: int, actor: User, note: str = "", photos: Sequence = (), location=None) -> Case:
    """自处理: a patrol member fixed it on the spot; it still goes to the inspector (the fixer never closes)."""

    def effect(case: Case, now: datetime) -> Change:
        stored = _after_photos(photos, case, required=True)
        case.team_id = actor.team_id
        case.accepted_at = now
        _stage_start(case, now=now, deadline=None)
        return Change(S.HANDLED, note=note, data=events.self_handled_data(team_id=actor.team_id), photos=stored)

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
        return Change(S.HANDLING, note=text, data=events.check_failed_data(rework=case.rework_count), photos=stored)

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
        return Change(S.CLOSED, note=note, data=events.closed_data(on_time_overall=on_time))

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
        case.satisfaction = score
        return Change(S.CLOSED, note=note, data=events.rated_data(satisfaction=score))

    return _transition(action="rate", case_id=case_id, actor=actor, effect=effect)


def case_reopen(*, case_id: int, actor: User, reason: str) -> Case:
    """ "Not fixed": back to dispatch, the same team suggested; the resident-facing clock is not reset."""

    def effect(case: Case, now: datetime) -> Change:
        text = _require(reason, field="reason", message=_("请说明未解决的情况"))
        data = events.reopened_data(previous_team=case.team)
        case.closed_at = None
        case.satisfaction = None
        _stage_start(case, now=now, deadline=_dispatch_window(case, now))
        return Change(S.FILED, note=text, data=data)

    return _transition(action="reopen", case_id=case_id, actor=actor, effect=effect)


def case_archive(*, case_id: int, actor: User) -> Case:
    return _transition(action="archive", case_id=case_id, actor=actor, effect=lambda case, now: Change(S.ARCHIVED))


def case_extension_request(*, case_id: int, actor: User, hours: float, reason: str) -> Case:
    def effect(case: Case, now: datetime) -> Change:
        text = _require(reason, field="reason", message=_("申请延时必须说明原因"))
        try:
            amount = float(hours)
        except (TypeError, ValueError):
            amount = 0
        if not 0 < amount <= 24 * 30:
            raise InvalidInput(_("延时时长须在 0–720 工作小时之间"), field="hours")
        case.extension_pending = True
        return Change(S.HANDLING, note=text, data=events.extension_requested_data(hours=amount))

    return _transition(action="extension_request", case_id=case_id, actor=actor, effect=effect)


def case_extension_decide(*, case_id: int, actor: User, approve: bool, note: str = "") -> Case:
    def effect(case: Case, now: datetime) -> Change:
        request = case.events.filter(type=E.EXTENSION_REQUESTED).order_by("-id").first()
        hours = float(request.data.get("hours", 0)) if request else 0
        case.extension_pending = False
        if not approve:
            return Change(S.HANDLING, note=note)
        unit = Category.LimitUnit.WORKING_HOURS
        case.deadline_at = limit_add(start=case.deadline_at or now, amount=hours, unit=unit)
        if case.due_at:
            case.due_at = limit_add(start=case.due_at, amount=hours, unit=unit)
        return Change(
            S.HANDLING, note=note, data=events.extension_approved_data(hours=hours, deadline_at=case.deadline_at)
        )

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
        return Change(
            parked.from_status, note=note, data=events.resumed_data(paused_seconds=int(paused.total_seconds()))
        )

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
        return Change(S.CLOSED, note=note, data=events.merged_data(duplicate_of=target))

    return _transition(action="merge", case_id=case_id, actor=actor, effect=effect)
