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
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from gridmgmt import access, events
from gridmgmt.errors import InvalidInput, TransitionNotAllowed
from gridmgmt.events import event_append
from gridmgmt.models import Case, CaseEvent, CasePhoto, Category, PatrolTeam, User
from gridmgmt.photos import photo_files_guard, photos_prepare, photos_store
from gridmgmt.rules import RULES, rule_check
from gridmgmt.selectors import dispatch_candidates
from gridmgmt.services import moves
from gridmgmt.services.intake import component_resolve
from gridmgmt.states import OPEN_STATUSES

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

    @classmethod
    def of(cls, move: moves.Move, *, note: str = "", photos: list | None = None) -> "Change":
        return cls(move.status, note=note, data=move.data, photos=photos)


def _require(text: str, *, field: str, message: str) -> str:
    text = (text or "").strip()
    if not text:
        raise InvalidInput(message, field=field, code="required")
    if len(text) > 1000:
        raise InvalidInput(_("说明不能超过 1000 字"), field=field)
    return text


# How far back a queued (offline) action's own time is believed: older times count as this long ago.
OCCURRED_AT_MAX_AGE = timedelta(hours=72)


def occurred_at_bound(*, occurred_at: datetime | None, now: datetime, previous_at: datetime | None) -> datetime:
    """The time an action counts at: when the phone says it was done (`occurred_at`, the queued entry's
    time), never in the future (→ `now`), never before the case's previous event (`previous_at`) nor more
    than OCCURRED_AT_MAX_AGE ago. No `occurred_at`: `now`."""
    if occurred_at is None:
        return now
    floor = now - OCCURRED_AT_MAX_AGE
    if previous_at is not None and previous_at > floor:
        floor = previous_at
    return min(max(occurred_at, floor), now)


def _replayed(*, case: Case, actor: User, idempotency_key: str) -> bool:
    """A request already applied (its answer lost, the phone sent it again): True, and nothing is written.
    Someone else's key on this case is refused."""
    found = list(case.events.filter(idempotency_key=idempotency_key).values_list("actor_id", flat=True)[:1])
    if not found:
        return False
    if found[0] != actor.pk:
        raise TransitionNotAllowed(_("该幂等键已被使用"), field="idempotency_key", code="idempotency_conflict")
    return True


def _transition(
    *,
    action: str,
    case_id: int,
    actor: User,
    effect: Callable[[Case, datetime], Change],
    location: Point | None = None,
    expected_version: int | None = None,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> Case:
    """`occurred_at`: when the actor did it (an action queued offline), bounded by occurred_at_bound; the
    event's `at` and the stage clocks use it, `recorded_at` keeps the server's time. `idempotency_key`: a
    repeat of a request already applied returns the case as it is now and writes nothing."""
    rule = RULES[action]
    # The guard deletes the photo files an effect wrote when the transition rolls back (refused, failed).
    with photo_files_guard(), transaction.atomic():
        case = access.case_access(user=actor, case_id=case_id, for_update=True)
        if idempotency_key and _replayed(case=case, actor=actor, idempotency_key=idempotency_key):
            return case
        rule_check(action=action, case=case, user=actor)
        if expected_version is not None and case.version != expected_version:
            raise TransitionNotAllowed(_("案件已被他人更新,请刷新后重试"), code="stale")
        recorded = timezone.now()
        now = recorded
        if occurred_at is not None:
            previous = case.events.order_by("-id").values_list("at", flat=True).first()
            now = occurred_at_bound(occurred_at=occurred_at, now=recorded, previous_at=previous)
        from_status = case.status
        change = effect(case, now)
        if rule.to is not None and change.to_status != rule.to:  # the phone offers the next actions from rule.to
            raise RuntimeError(f"{action} led to {change.to_status}, RULES says {rule.to}")
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
            recorded_at=recorded if now != recorded else None,
            idempotency_key=idempotency_key or None,
        )
    return case


def _queued(occurred_at: datetime | None, idempotency_key: str | None) -> dict:
    """The field actions a phone may queue offline pass on when they were done and their request's key."""
    return {"occurred_at": occurred_at, "idempotency_key": idempotency_key}


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
        return Change.of(moves.move_file(case, at=now), note=note)

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
        return Change.of(moves.move_void(case, at=now), note=text)

    return _transition(action="void", case_id=case_id, actor=actor, effect=effect)


def _team_for(team_id, case: Case) -> PatrolTeam:
    team = PatrolTeam.objects.filter(pk=team_id).first() if team_id else None
    if team is None or team.district_id != case.district_id:
        raise InvalidInput(_("请选择本区的处置队伍"), field="team", code="unknown_team")
    return team


def case_dispatch(*, case_id: int, actor: User, team_id: int, note: str = "", expected_version: int | None = None):
    """派遣 to a patrol team, recording the ownership evidence."""

    def effect(case: Case, now: datetime) -> Change:
        return Change.of(moves.move_dispatch(case, at=now, team=_team_for(team_id, case)), note=note)

    return _transition(
        action="dispatch", case_id=case_id, actor=actor, effect=effect, expected_version=expected_version
    )


def case_arbitrate(*, case_id: int, actor: User, team_id: int, note: str) -> Case:
    """审定: the shift leader decides who owns it; that team cannot send it back again."""

    def effect(case: Case, now: datetime) -> Change:
        text = _require(note, field="note", message=_("审定必须说明理由"))
        move = moves.move_dispatch(case, at=now, team=_team_for(team_id, case), forced=True)
        return Change.of(move, note=text)

    return _transition(action="arbitrate", case_id=case_id, actor=actor, effect=effect)


def case_accept(
    *,
    case_id: int,
    actor: User,
    location: Point | None = None,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> Case:
    """签收: the handling clock starts, on the working calendar."""

    def effect(case: Case, now: datetime) -> Change:
        return Change.of(moves.move_accept(case, at=now))

    return _transition(
        action="accept",
        case_id=case_id,
        actor=actor,
        effect=effect,
        location=location,
        **_queued(occurred_at, idempotency_key),
    )


def case_send_back(
    *, case_id: int, actor: User, reason: str, occurred_at: datetime | None = None, idempotency_key: str | None = None
) -> Case:
    """退单: not ours, with a reason; back to the dispatcher."""

    def effect(case: Case, now: datetime) -> Change:
        text = _require(reason, field="reason", message=_("退单必须填写原因"))
        if case.events.filter(type=E.ARBITRATED, data__team=case.team.code).exists():
            raise TransitionNotAllowed(_("该案件已审定由本队处置,不能退单"), code="arbitrated")
        return Change.of(moves.move_send_back(case, at=now), note=text)

    return _transition(
        action="send_back", case_id=case_id, actor=actor, effect=effect, **_queued(occurred_at, idempotency_key)
    )


def _after_photos(photos: Sequence, case: Case, *, required: bool) -> list[CasePhoto]:
    if required and not photos:
        raise InvalidInput(_("处置反馈必须上传处置后照片"), field="photos", code="after_photo_required")
    return photos_store(case=case, prepared=photos_prepare(uploads=photos), kind=CasePhoto.Kind.AFTER)


def case_handle(
    *,
    case_id: int,
    actor: User,
    note: str = "",
    photos: Sequence = (),
    location=None,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> Case:
    """处置反馈: reported back with an "after" photo; goes to the inspector's check."""

    def effect(case: Case, now: datetime) -> Change:
        stored = _after_photos(photos, case, required=True)
        return Change.of(moves.move_handle(case, at=now), note=note, photos=stored)

    return _transition(
        action="handle",
        case_id=case_id,
        actor=actor,
        effect=effect,
        location=location,
        **_queued(occurred_at, idempotency_key),
    )


def case_self_handle(
    *,
    case_id: int,
    actor: User,
    note: str = "",
    photos: Sequence = (),
    location=None,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> Case:
    """自处理: a patrol member fixed it on the spot; it still goes to the inspector (the fixer never closes)."""

    def effect(case: Case, now: datetime) -> Change:
        stored = _after_photos(photos, case, required=True)
        return Change.of(moves.move_self_handle(case, at=now, team_id=actor.team_id), note=note, photos=stored)

    return _transition(
        action="self_handle",
        case_id=case_id,
        actor=actor,
        effect=effect,
        location=location,
        **_queued(occurred_at, idempotency_key),
    )


def case_check(
    *,
    case_id: int,
    actor: User,
    passed: bool,
    note: str = "",
    photos: Sequence = (),
    location=None,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
):
    """核查: the grid inspector checks on site; a failure sends it back to the same team (返工)."""

    def effect(case: Case, now: datetime) -> Change:
        stored = photos_store(case=case, prepared=photos_prepare(uploads=photos), kind=CasePhoto.Kind.CHECK)
        if passed:
            return Change.of(moves.move_check_pass(case, at=now), note=note, photos=stored)
        text = _require(note, field="note", message=_("核查不通过必须说明原因"))
        handled = case.events.filter(type=E.HANDLED).order_by("-id").first()
        deadline = (handled.data or {}).get(events.DEADLINE_AT) if handled else None
        return Change.of(moves.move_check_fail(case, at=now, handled_deadline=deadline), note=text, photos=stored)

    return _transition(
        action="check_pass" if passed else "check_fail",
        case_id=case_id,
        actor=actor,
        effect=effect,
        location=location,
        **_queued(occurred_at, idempotency_key),
    )


def case_close(*, case_id: int, actor: User, note: str = "", hotline_reply: str = "") -> Case:
    """结案 by the command-centre shift leader; a hotline order needs its reply to the caller."""

    def effect(case: Case, now: datetime) -> Change:
        if case.source == Case.Source.HOTLINE:
            message = _("12345 工单结案须填写回复内容")
            case.hotline_reply = _require(hotline_reply, field="hotline_reply", message=message)
            case.replied_at = now
        return Change.of(moves.move_close(case, at=now), note=note)

    return _transition(action="close", case_id=case_id, actor=actor, effect=effect)


RATE_VIA = ("", "phone")  # "phone": a dispatcher's return-visit call (回访)


def case_rate(*, case_id: int, actor: User, satisfaction: int, note: str = "", via: str = "") -> Case:
    """综合评价 / 回访: 1–5; a resident rates only their own case, once. `via="phone"`: a dispatcher records
    what the reporter said on a return-visit call (the 回访 screen); it is the same RATED event the KPIs read."""

    def effect(case: Case, now: datetime) -> Change:
        try:
            score = int(satisfaction)
        except (TypeError, ValueError):
            score = 0
        if not 1 <= score <= 5:
            raise InvalidInput(_("满意度须为 1–5 分"), field="satisfaction")
        if via not in RATE_VIA:
            raise InvalidInput(_("回访方式只能是 phone"), field="via")
        return Change.of(moves.move_rate(case, at=now, satisfaction=score, via=via), note=note)

    return _transition(action="rate", case_id=case_id, actor=actor, effect=effect)


def case_reopen(*, case_id: int, actor: User, reason: str) -> Case:
    """ "Not fixed": back to dispatch, the same team suggested; the resident-facing clock is not reset."""

    def effect(case: Case, now: datetime) -> Change:
        text = _require(reason, field="reason", message=_("请说明未解决的情况"))
        return Change.of(moves.move_reopen(case, at=now), note=text)

    return _transition(action="reopen", case_id=case_id, actor=actor, effect=effect)


def case_archive(*, case_id: int, actor: User) -> Case:
    return _transition(
        action="archive",
        case_id=case_id,
        actor=actor,
        effect=lambda case, now: Change.of(moves.move_archive(case, at=now)),
    )


def case_extension_request(
    *,
    case_id: int,
    actor: User,
    hours: float,
    reason: str,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> Case:
    def effect(case: Case, now: datetime) -> Change:
        text = _require(reason, field="reason", message=_("申请延时必须说明原因"))
        try:
            amount = float(hours)
        except (TypeError, ValueError):
            amount = 0
        if not 0 < amount <= 24 * 30:
            raise InvalidInput(_("延时时长须在 0–720 工作小时之间"), field="hours")
        return Change.of(moves.move_extension_request(case, at=now, hours=amount), note=text)

    return _transition(
        action="extension_request", case_id=case_id, actor=actor, effect=effect, **_queued(occurred_at, idempotency_key)
    )


def case_extension_decide(*, case_id: int, actor: User, approve: bool, note: str = "") -> Case:
    def effect(case: Case, now: datetime) -> Change:
        request = case.events.filter(type=E.EXTENSION_REQUESTED).order_by("-id").first()
        hours = float(request.data.get("hours", 0)) if request else 0
        if not approve:
            return Change.of(moves.move_extension_reject(case, at=now), note=note)
        return Change.of(moves.move_extension_approve(case, at=now, hours=hours), note=note)

    return _transition(
        action="extension_approve" if approve else "extension_reject", case_id=case_id, actor=actor, effect=effect
    )


def case_park(*, case_id: int, actor: User, reason: str) -> Case:
    """挂账: paused (e.g. waits for another authority); the clocks stop until resumed."""

    def effect(case: Case, now: datetime) -> Change:
        text = _require(reason, field="reason", message=_("挂账必须说明原因"))
        return Change.of(moves.move_park(case, at=now), note=text)

    return _transition(action="park", case_id=case_id, actor=actor, effect=effect)


def case_resume(*, case_id: int, actor: User, note: str = "") -> Case:
    def effect(case: Case, now: datetime) -> Change:
        parked = case.events.filter(type=E.PARKED).order_by("-id").first()
        return Change.of(moves.move_resume(case, at=now, to_status=parked.from_status), note=note)

    return _transition(action="resume", case_id=case_id, actor=actor, effect=effect)


def case_merge(*, case_id: int, actor: User, into_id: int, note: str = "") -> Case:
    """Staff merge a duplicate into another open case: it closes with a link; both histories stay.

    Both rows are locked first, in id order, so A→B and B→A at once serialise (the second finds its target
    closed and is refused) instead of deadlocking or closing both; the target's supporters are raised with
    F() under its lock, so a concurrent +1 is never lost."""

    def effect(case: Case, now: datetime) -> Change:
        target = access.cases_visible(user=actor).filter(pk=into_id).exclude(pk=case.pk).first()
        if target is None or target.status not in OPEN_STATUSES:
            raise InvalidInput(_("目标案件不存在或已办结"), field="into")
        Case.objects.filter(pk=target.pk).update(supporters=F("supporters") + 1 + case.supporters)
        return Change.of(moves.move_merge(case, at=now, target=target), note=note)

    with transaction.atomic():
        # ORDER BY before FOR UPDATE: PostgreSQL takes the row locks in the order the rows come out.
        list(Case.objects.select_for_update().filter(pk__in=[case_id, into_id]).order_by("pk").values_list("pk"))
        return _transition(action="merge", case_id=case_id, actor=actor, effect=effect)


def case_publish(*, case_id: int, actor: User, note: str = "") -> Case:
    """公开: a staff member makes the description and photos of a report from a staff channel (hotline,
    patrol, inspector, camera) public; residents' own reports are public already. No state change."""

    def effect(case: Case, now: datetime) -> Change:
        return Change.of(moves.move_publish(case, at=now), note=note)

    return _transition(action="publish", case_id=case_id, actor=actor, effect=effect)


def case_urge(*, case_id: int, actor: User, note: str) -> Case:
    """督办: a shift leader presses the party whose clock is running — the team holding the case, else the
    area's dispatchers (gridmgmt.notify tells them); a note is required. No state change."""

    def effect(case: Case, now: datetime) -> Change:
        text = _require(note, field="note", message=_("督办必须填写督办意见"))
        return Change.of(moves.move_urge(case, at=now), note=text)

    return _transition(action="urge", case_id=case_id, actor=actor, effect=effect)


def case_reassign(*, case_id: int, actor: User, team_id: int, reason: str, expected_version: int | None = None):
    """改派: a dispatched (or already accepted) case goes to another team of the district, with a reason; the new
    team must accept it in a new dispatch window. The event carries the new ownership evidence."""

    def effect(case: Case, now: datetime) -> Change:
        text = _require(reason, field="reason", message=_("改派必须填写原因"))
        team = _team_for(team_id, case)
        if team.pk == case.team_id:
            raise InvalidInput(_("请选择另一支队伍"), field="team", code="same_team")
        return Change.of(moves.move_reassign(case, at=now, team=team), note=text)

    return _transition(
        action="reassign", case_id=case_id, actor=actor, effect=effect, expected_version=expected_version
    )


def case_recall(*, case_id: int, actor: User, reason: str) -> Case:
    """撤回: the dispatchers take a dispatched (or accepted) case back from its team to 已立案, with a reason."""

    def effect(case: Case, now: datetime) -> Change:
        text = _require(reason, field="reason", message=_("撤回必须填写原因"))
        return Change.of(moves.move_recall(case, at=now), note=text)

    return _transition(action="recall", case_id=case_id, actor=actor, effect=effect)


def case_reclassify(*, case_id: int, actor: User, category: str, reason: str) -> Case:
    """改类: the case's category changes (old → new in the event); the due date and a running handling deadline
    are recomputed with the new category's limits (moves.move_reclassify), and the department follows it."""

    def effect(case: Case, now: datetime) -> Change:
        text = _require(reason, field="reason", message=_("改类必须填写原因"))
        new = Category.objects.filter(code=(category or "").strip(), is_active=True, parent__isnull=False).first()
        if new is None:
            raise InvalidInput(
                _("未知的案件类别: %(code)s") % {"code": category}, field="category", code="unknown_category"
            )
        if new.pk == case.category_id:
            raise InvalidInput(_("新类别与原类别相同"), field="category", code="same_category")
        return Change.of(moves.move_reclassify(case, at=now, category=new), note=text)

    return _transition(action="reclassify", case_id=case_id, actor=actor, effect=effect)


def case_component_link(*, case_id: int, actor: User, component: str, note: str = "") -> Case:
    """关联部件: a dispatcher names the component (部件) a case is about, by code (picked on the desk map); its
    maintainer then routes the case — the case's department and the ranking (selectors.dispatch_candidates)."""

    def effect(case: Case, now: datetime) -> Change:
        found = component_resolve(code=component or "", district_id=case.district_id)
        if found.pk == case.component_id:
            raise InvalidInput(_("案件已关联该部件"), field="component", code="same_component")
        return Change.of(moves.move_component_link(case, at=now, component=found), note=note)

    return _transition(action="component_link", case_id=case_id, actor=actor, effect=effect)


URGE_ANSWER_RULES = ("urge_answer", "urge_answer_team")


def case_urge_answer(*, case_id: int, actor: User, note: str, rule: str | None = None) -> Case:
    """督办回复: the urged party (the team, or the area's dispatchers) answers the oldest unanswered urge of the
    case; the answer is required. No state change; the ledger (desk_selectors.urges_ledger) pairs urge and answer.
    `rule`: which of the two RULES rows applies — by default the team's for a patrol member, else the
    dispatchers'."""

    def effect(case: Case, now: datetime) -> Change:
        text = _require(note, field="note", message=_("督办回复必须填写回复内容"))
        urge = urge_unanswered(case=case)
        if urge is None:  # the rule's guard saw a count; the ledger has none: nothing to answer
            raise TransitionNotAllowed(_("没有待回复的督办"), code="no_urge")
        case.urges_open = max(0, case.urges_open - 1)
        return Change.of(moves.move_urge_answer(case, at=now, urge=urge), note=text)

    if rule is None:
        rule = "urge_answer_team" if access.role_effective(actor) in access.FIELD_ROLES else "urge_answer"
    if rule not in URGE_ANSWER_RULES:
        raise ValueError(rule)
    return _transition(action=rule, case_id=case_id, actor=actor, effect=effect)


def urge_unanswered(*, case: Case) -> CaseEvent | None:
    """The case's oldest URGED event that no URGE_ANSWERED event names."""
    answered = case.events.filter(type=E.URGE_ANSWERED).values_list(f"data__{events.URGE}", flat=True)
    return case.events.filter(type=E.URGED).exclude(pk__in=[int(x) for x in answered if x]).order_by("id").first()
