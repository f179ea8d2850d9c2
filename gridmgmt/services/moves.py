"""What each workflow move does to a case: its clocks, fields and event payload — and nothing else.

A move is a plain function of the case and the time: it changes the (locked, or unsaved) case in memory and
returns the new status with the event's data. It reads no rows and checks nothing: who may make the move,
from which state and with which input is `gridmgmt.rules` and `gridmgmt.services.workflow`'s business, and
the workflow's services wrap each move in that. The demo's history is made of the same moves, so generated
cases follow the same deadlines (`gridmgmt.workcalendar`) and payloads (`gridmgmt.events`) as real ones.
`calendar` (from `workcalendar.calendar_load`) lets bulk callers count working time without a query each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gridmgmt import events
from gridmgmt.models import Case, Category, PatrolTeam
from gridmgmt.states import WARN_FRACTION
from gridmgmt.workcalendar import limit_add

S = Case.Status


@dataclass(frozen=True)
class Move:
    status: str
    data: dict = field(default_factory=dict)


def stage_start(case: Case, *, now: datetime, deadline: datetime | None, warn: datetime | None = None) -> None:
    """A new stage: its clock starts at `now`; yellow from `warn` (default: 75 % of the way to `deadline`)."""
    case.stage_started_at = now
    case.deadline_at = deadline
    if deadline is None:
        case.warn_at = None
    else:
        case.warn_at = warn or now + (deadline - now) * WARN_FRACTION


def dispatch_window(case: Case, now: datetime) -> datetime:
    """By when a filed (or sent-back, reopened) case must be dispatched: the category's minutes by urgency."""
    c = case.category
    minutes = c.dispatch_minutes_urgent if case.urgency == Case.Urgency.URGENT else c.dispatch_minutes_normal
    return now + timedelta(minutes=minutes)


def handling_limit(case: Case) -> tuple[float, str]:
    """The category's handling limit for the case's urgency: (amount, unit)."""
    c = case.category
    if case.urgency == Case.Urgency.URGENT:
        return c.limit_urgent, c.urgent_limit_unit
    return c.limit_normal, c.limit_unit


def ownership_evidence(*, case: Case, team: PatrolTeam) -> dict:
    """Why this team is responsible: the responsibility grid it owns, or the component's departments."""
    evidence: dict = {"team": team.code}
    grid = case.responsibility_grid
    if grid is not None:
        evidence["responsibility_grid"] = grid.code
        evidence["grid_owner"] = grid.team_id == team.id
    if case.department_id:
        evidence["department"] = case.department.code
        evidence["team_department"] = team.department_id == case.department_id
    if case.component_id:
        # 部件: the case names a public asset; its maintainer (养护单位) is the department that owns the case.
        component = case.component
        evidence["component"] = component.code
        evidence["department_basis"] = "component_maintainer"
    elif case.department_id:
        evidence["department_basis"] = "category_default"
    evidence["cell"] = case.cell.code
    return evidence


def department_route(*, category: Category, component=None):
    """The department that owns a case: the component's maintainer (养护单位) when the case names one that has
    it, else the category's default department. The one routing rule (intake, reclassify)."""
    if component is not None and component.maintainer_id:
        return component.maintainer_id
    return category.default_department_id


def move_file(case: Case, *, at: datetime, calendar: dict | None = None) -> Move:
    """立案: the dispatch clock starts; the resident-facing deadline (due_at) is set."""
    dispatch_by = dispatch_window(case, at)
    stage_start(case, now=at, deadline=dispatch_by)
    case.dispatch_deadline_at = dispatch_by
    amount, unit = handling_limit(case)
    case.due_at = limit_add(start=dispatch_by, amount=amount, unit=unit, calendar=calendar)
    return Move(S.FILED, events.filed_data(due_at=case.due_at))


def move_void(case: Case, *, at: datetime) -> Move:
    stage_start(case, now=at, deadline=None)
    case.closed_at = at
    return Move(S.VOIDED, events.no_data())


def move_dispatch(case: Case, *, at: datetime, team: PatrolTeam, forced: bool = False) -> Move:
    """派遣 (or 审定 when forced): the team and its ownership evidence; the team must accept in the window."""
    case.team = team
    stage_start(case, now=at, deadline=dispatch_window(case, at))
    evidence = ownership_evidence(case=case, team=team)
    return Move(S.DISPATCHED, events.dispatched_data(team=team, evidence=evidence, forced=forced))


def move_accept(case: Case, *, at: datetime, calendar: dict | None = None) -> Move:
    """签收: the handling clock starts, on the working calendar."""
    amount, unit = handling_limit(case)
    deadline = limit_add(start=at, amount=amount, unit=unit, calendar=calendar)
    warn = limit_add(start=at, amount=amount * WARN_FRACTION, unit=unit, calendar=calendar)
    stage_start(case, now=at, deadline=deadline, warn=warn)
    case.accepted_at = at
    return Move(S.HANDLING, events.accepted_data(deadline_at=deadline))


def move_send_back(case: Case, *, at: datetime) -> Move:
    """退单: back to the dispatchers, who have a new dispatch window."""
    data = events.sent_back_data(team=case.team)
    case.team = None
    case.send_back_count += 1
    stage_start(case, now=at, deadline=dispatch_window(case, at))
    return Move(S.SENT_BACK, data)


def move_handle(case: Case, *, at: datetime) -> Move:
    """处置反馈: on time if done by the deadline (gridmgmt.states: the deadline instant is on time)."""
    on_time = case.deadline_at is None or at <= case.deadline_at
    data = events.handled_data(on_time=on_time, deadline_at=case.deadline_at)
    case.extension_pending = False
    stage_start(case, now=at, deadline=None)
    return Move(S.HANDLED, data)


def move_self_handle(case: Case, *, at: datetime, team_id: int) -> Move:
    case.team_id = team_id
    case.accepted_at = at
    stage_start(case, now=at, deadline=None)
    return Move(S.HANDLED, events.self_handled_data(team_id=team_id))


def move_check_pass(case: Case, *, at: datetime) -> Move:
    return Move(S.CHECKED, events.no_data())


def move_check_fail(case: Case, *, at: datetime, handled_deadline: str | None) -> Move:
    """核查不通过 → 返工. The handling clock keeps running: a failed fix earns no extra time. Handling cleared
    the stage clock, so the deadline the HANDLED event recorded (`handled_deadline`) comes back."""
    case.rework_count += 1
    if handled_deadline:
        case.deadline_at = datetime.fromisoformat(handled_deadline)
        since = case.accepted_at or at
        case.warn_at = since + (case.deadline_at - since) * WARN_FRACTION
    case.stage_started_at = at
    return Move(S.HANDLING, events.check_failed_data(rework=case.rework_count))


def move_close(case: Case, *, at: datetime) -> Move:
    """结案: on time overall if closed by the resident-facing deadline."""
    case.closed_at = at
    on_time = case.due_at is None or at <= case.due_at
    return Move(S.CLOSED, events.closed_data(on_time_overall=on_time))


def move_rate(case: Case, *, at: datetime, satisfaction: int, via: str = "") -> Move:
    case.satisfaction = satisfaction
    return Move(S.CLOSED, events.rated_data(satisfaction=satisfaction, via=via))


def move_reopen(case: Case, *, at: datetime) -> Move:
    """ "Not fixed": back to dispatch, the same team suggested; the resident-facing clock is not reset."""
    data = events.reopened_data(previous_team=case.team)
    case.closed_at = None
    case.satisfaction = None
    stage_start(case, now=at, deadline=dispatch_window(case, at))
    return Move(S.FILED, data)


def move_archive(case: Case, *, at: datetime) -> Move:
    return Move(S.ARCHIVED, events.no_data())


def move_extension_request(case: Case, *, at: datetime, hours: float) -> Move:
    case.extension_pending = True
    return Move(S.HANDLING, events.extension_requested_data(hours=hours))


def move_extension_approve(case: Case, *, at: datetime, hours: float, calendar: dict | None = None) -> Move:
    """批准延时: the stage deadline and the resident-facing one move by `hours` working hours."""
    case.extension_pending = False
    unit = Category.LimitUnit.WORKING_HOURS
    case.deadline_at = limit_add(start=case.deadline_at or at, amount=hours, unit=unit, calendar=calendar)
    if case.due_at:
        case.due_at = limit_add(start=case.due_at, amount=hours, unit=unit, calendar=calendar)
    return Move(S.HANDLING, events.extension_approved_data(hours=hours, deadline_at=case.deadline_at))


def move_extension_reject(case: Case, *, at: datetime) -> Move:
    case.extension_pending = False
    return Move(S.HANDLING, events.no_data())


def move_park(case: Case, *, at: datetime) -> Move:
    """挂账: the clocks stop until resumed."""
    case.parked_at = at
    return Move(S.PARKED, events.no_data())


def move_resume(case: Case, *, at: datetime, to_status: str) -> Move:
    """恢复: every clock moves on by the time parked; back to the status it was parked from."""
    paused = at - (case.parked_at or at)
    for name in ("deadline_at", "warn_at", "due_at", "dispatch_deadline_at"):
        value = getattr(case, name)
        if value is not None:
            setattr(case, name, value + paused)
    case.parked_at = None
    return Move(to_status, events.resumed_data(paused_seconds=int(paused.total_seconds())))


def move_publish(case: Case, *, at: datetime) -> Move:
    """公开: the report's own words and before photos join the public view (gridmgmt.access)."""
    case.published_at = at
    return Move(case.status, events.no_data())


def move_reassign(case: Case, *, at: datetime, team: PatrolTeam) -> Move:
    """改派: another team takes the case; it must accept in a new dispatch window (the handling clock, if it
    had started, starts again at its acceptance; the resident-facing due_at is unchanged)."""
    old = case.team
    case.team = team
    case.accepted_at = None
    case.extension_pending = False
    stage_start(case, now=at, deadline=dispatch_window(case, at))
    evidence = ownership_evidence(case=case, team=team)
    return Move(S.DISPATCHED, events.reassigned_data(from_team=old, team=team, evidence=evidence))


def move_recall(case: Case, *, at: datetime) -> Move:
    """撤回: back to the dispatchers (filed), who have a new dispatch window; no send-back is counted."""
    data = events.recalled_data(from_team=case.team)
    case.team = None
    case.accepted_at = None
    case.extension_pending = False
    stage_start(case, now=at, deadline=dispatch_window(case, at))
    return Move(S.FILED, data)


def move_reclassify(case: Case, *, at: datetime, category: Category, calendar: dict | None = None) -> Move:
    """改类: the new category's limits apply from now on, counted from the stage starts they are counted from
    at filing and acceptance: due_at from the dispatch deadline, the handling deadline from acceptance. The
    department follows the new category unless a component routes the case."""
    old = case.category
    case.category = category
    case.department_id = department_route(category=category, component=case.component if case.component_id else None)
    amount, unit = handling_limit(case)
    if case.dispatch_deadline_at is not None:
        case.due_at = limit_add(start=case.dispatch_deadline_at, amount=amount, unit=unit, calendar=calendar)
    if case.status == S.HANDLING and case.accepted_at is not None:
        start = case.accepted_at
        case.deadline_at = limit_add(start=start, amount=amount, unit=unit, calendar=calendar)
        case.warn_at = limit_add(start=start, amount=amount * WARN_FRACTION, unit=unit, calendar=calendar)
    data = events.reclassified_data(old=old, new=category, due_at=case.due_at, deadline_at=case.deadline_at)
    return Move(case.status, data)


def move_component_link(case: Case, *, at: datetime, component) -> Move:
    """关联部件: the case names a component; its maintainer becomes the case's department (department_route)."""
    previous = case.component.code if case.component_id else None
    case.component = component
    case.department_id = department_route(category=case.category, component=component)
    dept = component.maintainer.code if component.maintainer_id else None  # None: the category's department stays
    return Move(case.status, events.component_linked_data(component=component, department_code=dept, previous=previous))


def move_urge_answer(case: Case, *, at: datetime, urge) -> Move:
    """督办回复: nothing about the case changes (the service lowers its count of unanswered urges); the event
    links the urge answered."""
    return Move(case.status, events.urge_answered_data(urge=urge))


def move_merge(case: Case, *, at: datetime, target: Case) -> Move:
    """Merged into `target` (whose supporters the service raises): closed with a link."""
    case.duplicate_of = target
    case.closed_at = at
    stage_start(case, now=at, deadline=None)
    return Move(S.CLOSED, events.merged_data(duplicate_of=target))


# The statuses in which a team holds the case (the clock is the team's): an urge presses that team; in the other
# clocked statuses (filed, sent back) the clock is the dispatchers'.
TEAM_HELD_STATUSES = frozenset({S.DISPATCHED, S.HANDLING})


def urged_party(case: Case) -> PatrolTeam | None:
    """Whom an urge presses: the case's team while it holds the case, else None (the area's dispatchers)."""
    return case.team if case.status in TEAM_HELD_STATUSES and case.team_id else None


def move_urge(case: Case, *, at: datetime) -> Move:
    """督办: nothing about the case changes but its count of unanswered urges; the event names who was pressed
    (gridmgmt.notify tells them)."""
    case.urges_open += 1
    return Move(case.status, events.urged_data(team=urged_party(case)))
