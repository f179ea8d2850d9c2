"""The workflow's rules: who may do what to a case in which state — the one place that says it.

`RULES` maps each action to the statuses it starts from, the roles allowed (the sets in
`gridmgmt.access`), the event it writes, its label, the inputs it needs and a guard for the conditions
that are neither role nor status (the actor's team, a pending extension…). The services enforce it
(`gridmgmt.services.workflow._transition`), and `case_actions_allowed` turns it into the list of actions a
user may take on a case now, which the API sends to the faces: the browser renders buttons from that list
and holds no role or status table of its own.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from gridmgmt.access import (
    CHECKERS,
    DISPATCHERS,
    FIELD_ROLES,
    LEADERS,
    PUBLIC_TEXT_SOURCES,
    SPEAKER_CALLERS,
    role_effective,
)
from gridmgmt.errors import DomainError, RoleNotAllowed, TransitionNotAllowed
from gridmgmt.models import Case, CaseEvent, User
from gridmgmt.states import CLOCKED_STATUSES, DONE_STATUSES, OPEN_STATUSES

S = Case.Status
E = CaseEvent.Type
R = User.Role

MAX_SEND_BACKS = 2  # after this many, only arbitration (审定) can assign the case


@dataclass(frozen=True)
class Input:
    """A value an action needs from the user. `kind` tells a face which control to show:
    text, team, photos, hours, satisfaction, case (a case code), urgency, category (a category code), component (a component code)."""

    name: str
    kind: str
    label: str
    required: bool | Callable[[Case], bool] = False

    def describe(self, case: Case) -> dict:
        required = self.required(case) if callable(self.required) else self.required
        return {"name": self.name, "kind": self.kind, "label": str(self.label), "required": required}


def _team_member(case: Case, user: User) -> DomainError | None:
    if not user.team_id or case.team_id != user.team_id:
        return RoleNotAllowed(_("只有被派遣队伍的队员可以执行此操作"))
    return None


def _in_a_team(case: Case, user: User) -> DomainError | None:
    if not user.team_id:
        return RoleNotAllowed(_("只有巡查队员可以自处理"))
    return None


def _not_over_sent_back(case: Case, user: User) -> DomainError | None:
    if case.send_back_count >= MAX_SEND_BACKS:
        return TransitionNotAllowed(_("已多次退单,须由值班长审定后派遣"), code="needs_arbitration")
    return None


def _not_rated(case: Case, user: User) -> DomainError | None:
    if case.satisfaction is not None:
        return TransitionNotAllowed(_("该案件已评价"), code="already_rated")
    return None


def _no_extension_pending(case: Case, user: User) -> DomainError | None:
    if case.extension_pending:
        return TransitionNotAllowed(_("已有延时申请待审批"), code="extension_pending")
    return _team_member(case, user)


def _extension_pending(case: Case, user: User) -> DomainError | None:
    if not case.extension_pending:
        return TransitionNotAllowed(_("没有待审批的延时申请"), code="no_extension")
    return None


def _not_published(case: Case, user: User) -> DomainError | None:
    # Residents' own reports (and Open311's) are public already; only staff channels need publishing.
    if case.published_at is not None or case.source in PUBLIC_TEXT_SOURCES:
        return TransitionNotAllowed(_("该案件已公开"), code="already_published")
    return None


def _urge_open_to(case: Case, user: User) -> DomainError | None:
    """督办回复: an urge awaits an answer, and the user is of the party urged — a member of the case's team (it
    holds the case: services.moves.urged_party), else one of the area's dispatchers."""
    if case.urges_open <= 0:
        return TransitionNotAllowed(_("没有待回复的督办"), code="no_urge")
    if role_effective(user) in FIELD_ROLES:
        return _team_member(case, user)
    return None


def _is_hotline(case: Case) -> bool:
    return case.source == Case.Source.HOTLINE


_NOTE = Input("note", "text", gettext_lazy("说明"))
_REASON = Input("reason", "text", gettext_lazy("原因"), required=True)
_TEAM = Input("team", "team", gettext_lazy("处置队伍"), required=True)
_AFTER_PHOTOS = Input("photos", "photos", gettext_lazy("处置后照片"), required=True)
_CHECK_PHOTOS = Input("photos", "photos", gettext_lazy("核查照片"))
_INTO = Input("into", "case", gettext_lazy("合并到案件编号"), required=True)
_GROUNDS = Input("note", "text", gettext_lazy("理由"), required=True)
_FAILURE = Input("note", "text", gettext_lazy("原因"), required=True)
_HOURS = Input("hours", "hours", gettext_lazy("延长工作小时"), required=True)
_HOTLINE_REPLY = Input("hotline_reply", "text", gettext_lazy("12345 回复内容"), required=_is_hotline)
_URGE_NOTE = Input("note", "text", gettext_lazy("督办意见"), required=True)
_COMPONENT = Input("component", "component", gettext_lazy("部件编码"), required=True)
_CATEGORY = Input("category", "category", gettext_lazy("新类别代码"), required=True)
_ANSWER = Input("note", "text", gettext_lazy("回复内容"), required=True)
_SATISFACTION = Input("satisfaction", "satisfaction", gettext_lazy("满意度 (1–5)"), required=True)


@dataclass(frozen=True)
class Rule:
    sources: frozenset
    roles: frozenset
    event: str
    # Lazy, so 403/409 messages are built in the request's language; the context keeps these verb phrases
    # ("不能挂账" → "cannot park") apart from the same words used as status/event labels.
    label: str
    path: str  # the API action: POST /api/cases/{id}/{path}/
    inputs: tuple[Input, ...] = ()
    fields: dict = field(default_factory=dict)  # fixed body values (check: passed=true…)
    guard: Callable[[Case, User], DomainError | None] | None = None
    danger: bool = False  # a face asks for confirmation (void, send back, fail, park…)
    # The status the action always leads to, for the field actions a phone may queue offline: the phone shows
    # the actions allowed from there (`then`) before the server has taken the first. services.workflow checks
    # that the move agrees.
    to: str | None = None


def _rule(sources, roles, event, label, path, *inputs, **kw) -> Rule:
    return Rule(frozenset(sources), frozenset(roles), event, label, path, inputs, **kw)


# One row a rule: action, statuses it starts from, roles allowed, event written, label (verb phrase), API path,
# inputs, then the fixed body values, guard and whether a face asks for confirmation.
# fmt: off
RULES: dict[str, Rule] = {
    "file":              _rule({S.REPORTED},             DISPATCHERS, E.FILED,      pgettext_lazy("workflow action", "立案"), "file", _NOTE),
    "void":              _rule({S.REPORTED},             DISPATCHERS, E.VOIDED,     pgettext_lazy("workflow action", "作废"), "void", _REASON, danger=True),
    "merge":             _rule({S.REPORTED, S.FILED},    DISPATCHERS, E.MERGED,     pgettext_lazy("workflow action", "合并"), "merge", _INTO, _NOTE),
    "dispatch":          _rule({S.FILED, S.SENT_BACK},   DISPATCHERS, E.DISPATCHED, pgettext_lazy("workflow action", "派遣"), "dispatch", _TEAM, _NOTE, guard=_not_over_sent_back),
    "arbitrate":         _rule({S.SENT_BACK, S.FILED},   LEADERS,     E.ARBITRATED, pgettext_lazy("workflow action", "审定"), "arbitrate", _TEAM, _GROUNDS),
    "accept":            _rule({S.DISPATCHED},           FIELD_ROLES, E.ACCEPTED,   pgettext_lazy("workflow action", "签收"), "accept", guard=_team_member, to=S.HANDLING),
    "send_back":         _rule({S.DISPATCHED},           FIELD_ROLES, E.SENT_BACK,  pgettext_lazy("workflow action", "退单"), "send-back", _REASON, guard=_team_member, danger=True, to=S.SENT_BACK),
    "handle":            _rule({S.HANDLING},             FIELD_ROLES, E.HANDLED,    pgettext_lazy("workflow action", "处置反馈"), "handle", _AFTER_PHOTOS, _NOTE, guard=_team_member, to=S.HANDLED),
    "extension_request": _rule({S.HANDLING},             FIELD_ROLES, E.EXTENSION_REQUESTED, pgettext_lazy("workflow action", "申请延时"), "extension-request", _HOURS, _REASON, guard=_no_extension_pending),
    "self_handle":       _rule({S.REPORTED},             FIELD_ROLES, E.SELF_HANDLED, pgettext_lazy("workflow action", "自处理"), "self-handle", _AFTER_PHOTOS, _NOTE, guard=_in_a_team, to=S.HANDLED),
    "check_pass":        _rule({S.HANDLED},              CHECKERS,    E.CHECK_PASSED, pgettext_lazy("workflow action", "核查通过"), "check", _CHECK_PHOTOS, _NOTE, fields={"passed": True}),
    "check_fail":        _rule({S.HANDLED},              CHECKERS,    E.CHECK_FAILED, pgettext_lazy("workflow action", "核查不通过"), "check", _CHECK_PHOTOS, _FAILURE, fields={"passed": False}, danger=True),
    "close":             _rule({S.CHECKED},              LEADERS,     E.CLOSED,     pgettext_lazy("workflow action", "结案"), "close", _HOTLINE_REPLY, _NOTE),
    "rate":              _rule({S.CLOSED},               {R.RESIDENT, *DISPATCHERS}, E.RATED, pgettext_lazy("workflow action", "评价"), "rate", _SATISFACTION, _NOTE, guard=_not_rated),
    "reopen":            _rule({S.CLOSED},               {R.RESIDENT, *LEADERS}, E.REOPENED, pgettext_lazy("workflow action", "重新打开"), "reopen", _REASON, danger=True),
    "archive":           _rule({S.CLOSED},               LEADERS,     E.ARCHIVED,   pgettext_lazy("workflow action", "归档"), "archive"),
    "extension_approve": _rule({S.HANDLING},             LEADERS,     E.EXTENSION_APPROVED, pgettext_lazy("workflow action", "批准延时"), "extension-decide", _NOTE, fields={"approve": True}, guard=_extension_pending),
    "extension_reject":  _rule({S.HANDLING},             LEADERS,     E.EXTENSION_REJECTED, pgettext_lazy("workflow action", "驳回延时"), "extension-decide", _NOTE, fields={"approve": False}, guard=_extension_pending, danger=True),
    "publish":           _rule({*OPEN_STATUSES, *DONE_STATUSES}, DISPATCHERS, E.PUBLISHED, pgettext_lazy("workflow action", "公开"), "publish", _NOTE, guard=_not_published),
    "park":              _rule({S.FILED, S.DISPATCHED, S.SENT_BACK, S.HANDLING}, LEADERS, E.PARKED, pgettext_lazy("workflow action", "挂账"), "park", _REASON, danger=True),
    "resume":            _rule({S.PARKED},               LEADERS,     E.RESUMED,    pgettext_lazy("workflow action", "恢复"), "resume", _NOTE),
    # 督办: the command centre presses whoever holds a running clock (services.moves.urged_party); no state change.
    "urge":              _rule(CLOCKED_STATUSES,         LEADERS,     E.URGED,      pgettext_lazy("workflow action", "督办"), "urge", _URGE_NOTE),
    # 督办回复: the party urged answers (the ledger pairs each urge with its answer); no state change. The team
    # answers while it holds the case; the area's dispatchers while its clock runs (one API path, two rules, so
    # the patrol phone's task list — statuses_actionable — stays the team's own statuses).
    "urge_answer":       _rule(CLOCKED_STATUSES,         {R.DISPATCHER}, E.URGE_ANSWERED, pgettext_lazy("workflow action", "回复督办"), "urge-answer", _ANSWER, guard=_urge_open_to),
    "urge_answer_team":  _rule({S.DISPATCHED, S.HANDLING}, FIELD_ROLES, E.URGE_ANSWERED, pgettext_lazy("workflow action", "回复督办"), "urge-answer", _ANSWER, guard=_urge_open_to),
    # 改派 to another team / 撤回 back to the dispatchers, while a team holds the case.
    "reassign":          _rule({S.DISPATCHED, S.HANDLING}, DISPATCHERS, E.REASSIGNED, pgettext_lazy("workflow action", "改派"), "reassign", _TEAM, _REASON),
    "recall":            _rule({S.DISPATCHED, S.HANDLING}, DISPATCHERS, E.RECALLED, pgettext_lazy("workflow action", "撤回"), "recall", _REASON, danger=True),
    # 改类: before the work is reported done; deadlines follow the new category's limits.
    # 关联部件: before dispatch, name the component the case is about; its maintainer routes the case.
    "component_link":    _rule({S.REPORTED, S.FILED, S.SENT_BACK}, DISPATCHERS, E.COMPONENT_LINKED, pgettext_lazy("workflow action", "关联部件"), "component-link", _COMPONENT, _NOTE),
    "reclassify":        _rule({S.REPORTED, S.FILED, S.DISPATCHED, S.SENT_BACK, S.HANDLING}, DISPATCHERS, E.RECLASSIFIED, pgettext_lazy("workflow action", "改类"), "reclassify", _CATEGORY, _REASON),
}
# fmt: on


# What a face writes on the action's button (the rule's label is the verb phrase of its error messages).
BUTTONS = {
    "file": pgettext_lazy("button", "立案"),
    "void": pgettext_lazy("button", "作废"),
    "merge": pgettext_lazy("button", "合并"),
    "dispatch": pgettext_lazy("button", "派遣"),
    "arbitrate": pgettext_lazy("button", "审定"),
    "accept": pgettext_lazy("button", "签收"),
    "send_back": pgettext_lazy("button", "退单"),
    "handle": pgettext_lazy("button", "处置反馈"),
    "extension_request": pgettext_lazy("button", "申请延时"),
    "self_handle": pgettext_lazy("button", "自处理"),
    "check_pass": pgettext_lazy("button", "核查通过"),
    "check_fail": pgettext_lazy("button", "核查不通过"),
    "close": pgettext_lazy("button", "结案"),
    "rate": pgettext_lazy("button", "评价"),
    "reopen": pgettext_lazy("button", "重新打开"),
    "archive": pgettext_lazy("button", "归档"),
    "extension_approve": pgettext_lazy("button", "批准延时"),
    "extension_reject": pgettext_lazy("button", "驳回延时"),
    "publish": pgettext_lazy("button", "公开"),
    "park": pgettext_lazy("button", "挂账"),
    "resume": pgettext_lazy("button", "恢复"),
    "urge": pgettext_lazy("button", "督办"),
    "urge_answer": pgettext_lazy("button", "回复督办"),
    "urge_answer_team": pgettext_lazy("button", "回复督办"),
    "reassign": pgettext_lazy("button", "改派"),
    "recall": pgettext_lazy("button", "撤回"),
    "reclassify": pgettext_lazy("button", "改类"),
    "component_link": pgettext_lazy("button", "关联部件"),
}


# What a face tells the user once the server has taken the action: what happened and what comes next.
DONE = {
    "file": pgettext_lazy("action done", "已立案,等待派遣"),
    "void": pgettext_lazy("action done", "已作废"),
    "merge": pgettext_lazy("action done", "已合并到另一案件"),
    "dispatch": pgettext_lazy("action done", "已派遣,等待队伍签收"),
    "arbitrate": pgettext_lazy("action done", "已审定派遣"),
    "accept": pgettext_lazy("action done", "已签收,请到现场处置"),
    "send_back": pgettext_lazy("action done", "已退单,等待重新派遣"),
    "handle": pgettext_lazy("action done", "已提交处理,等待核查"),
    "extension_request": pgettext_lazy("action done", "已申请延时,等待审批"),
    "self_handle": pgettext_lazy("action done", "已提交自处理,等待核查"),
    "check_pass": pgettext_lazy("action done", "核查通过,等待结案"),
    "check_fail": pgettext_lazy("action done", "核查不通过,已退回返工"),
    "close": pgettext_lazy("action done", "已结案"),
    "rate": pgettext_lazy("action done", "已评价"),
    "reopen": pgettext_lazy("action done", "已重新打开"),
    "archive": pgettext_lazy("action done", "已归档"),
    "extension_approve": pgettext_lazy("action done", "已批准延时"),
    "extension_reject": pgettext_lazy("action done", "已驳回延时"),
    "publish": pgettext_lazy("action done", "已公开"),
    "park": pgettext_lazy("action done", "已挂账"),
    "resume": pgettext_lazy("action done", "已恢复办理"),
    "urge": pgettext_lazy("action done", "已督办,责任方已收到通知"),
    "urge_answer": pgettext_lazy("action done", "已回复督办"),
    "urge_answer_team": pgettext_lazy("action done", "已回复督办"),
    "reassign": pgettext_lazy("action done", "已改派,等待新队伍签收"),
    "recall": pgettext_lazy("action done", "已撤回,等待重新派遣"),
    "reclassify": pgettext_lazy("action done", "已改类,时限已按新类别重算"),
    "component_link": pgettext_lazy("action done", "已关联部件,由其养护单位处置"),
}


def rule_check(*, action: str, case: Case, user: User) -> None:
    """Raise the error that refuses `user` doing `action` to `case` now (role 403, state 409, guard)."""
    rule = RULES[action]
    role = role_effective(user)
    if role not in rule.roles:
        raise RoleNotAllowed(
            _("角色「%(role)s」不能执行「%(action)s」") % {"role": User.Role(role).label, "action": rule.label}
        )
    if case.status not in rule.sources:
        raise TransitionNotAllowed(
            _("案件当前状态为「%(status)s」,不能%(action)s")
            % {"status": Case.Status(case.status).label, "action": rule.label}
        )
    if rule.guard is not None:
        problem = rule.guard(case, user)
        if problem is not None:
            raise problem


def action_allowed(*, action: str, case: Case, user: User) -> bool:
    rule = RULES[action]
    if role_effective(user) not in rule.roles or case.status not in rule.sources:
        return False
    return rule.guard is None or rule.guard(case, user) is None


def statuses_actionable(*, roles) -> frozenset:
    """The statuses some action of `roles` starts from (for FIELD_ROLES: the patrol phone's task list)."""
    return frozenset(s for rule in RULES.values() if rule.roles & roles for s in rule.sources)


def case_actions_allowed(*, case: Case, user: User, then: bool = True) -> list[dict]:
    """The actions `user` may take on `case` now, in RULES order, as the faces render them:
    {"name", "label", "path", "fields", "inputs": [{"name", "kind", "label", "required"}], "danger", "done"},
    and for an action with a certain outcome (`Rule.to`) "then": the actions allowed once it is taken (what a
    phone offline offers next, e.g. 处置反馈 after 签收). Whether the user may see the case at all is the access
    gate's decision, made before this."""
    actions = []
    for name, rule in RULES.items():
        if not action_allowed(action=name, case=case, user=user):
            continue
        action = {
            "name": name,
            "label": str(BUTTONS[name]),
            "path": rule.path,
            "fields": rule.fields,
            "inputs": [i.describe(case) for i in rule.inputs],
            "danger": rule.danger,
            "done": str(DONE[name]),
        }
        if then and rule.to is not None:
            after = copy.copy(case)
            after.status = rule.to
            action["then"] = case_actions_allowed(case=after, user=user, then=False)
        actions.append(action)
    return actions


# --- street loudspeakers (街头语音呼叫喇叭) ------------------------------------------------------------------
# Not a workflow transition (a call changes no state, so it is not in RULES): who may speak to the street, and
# about which cases. The API asks here; the faces are told the answer (a case's `speaker_call`, the wall's config).

SPEAKER_CALL_STATUSES = OPEN_STATUSES  # a call about a case is about one that is still somebody's work


def speaker_call_check(*, user: User, case: Case | None = None) -> None:
    """Raise the error that refuses `user` a loudspeaker call (about `case`, when one is named)."""
    role = role_effective(user)
    if role not in SPEAKER_CALLERS:
        raise RoleNotAllowed(_("角色「%(role)s」不能使用街头喇叭喊话") % {"role": User.Role(role).label})
    if case is not None and case.status not in SPEAKER_CALL_STATUSES:
        raise TransitionNotAllowed(
            _("案件当前状态为「%(status)s」,不能喇叭喊话") % {"status": Case.Status(case.status).label},
            code="not_open",
        )


def speaker_call_allowed(*, user: User, case: Case | None = None) -> bool:
    try:
        speaker_call_check(user=user, case=case)
    except DomainError:
        return False
    return True


# --- reporting -------------------------------------------------------------------------------------------

SRC = Case.Source
# Which intake channels each role may report through; the first one is the default.
REPORT_SOURCES: dict[str, tuple[str, ...]] = {
    R.RESIDENT: (SRC.RESIDENT,),
    R.PATROL: (SRC.PATROL,),
    R.INSPECTOR: (SRC.INSPECTOR, SRC.CAMERA),
    R.DISPATCHER: (SRC.HOTLINE, SRC.CAMERA, SRC.ASSIGNED, SRC.RESIDENT),
    R.SHIFT_LEADER: (SRC.ASSIGNED, SRC.HOTLINE, SRC.CAMERA),
    R.ADMIN: tuple(v for v in SRC.values if v != SRC.OPEN311),
}


def report_source_resolve(*, user: User, source: str | None) -> str:
    role = role_effective(user)
    allowed = REPORT_SOURCES.get(role, ())
    if not allowed:
        raise RoleNotAllowed(_("角色「%(role)s」不能上报案件") % {"role": User.Role(role).label})
    if source is None:
        return allowed[0]
    if source not in allowed:
        raise RoleNotAllowed(
            _("角色「%(role)s」不能以「%(source)s」渠道上报")
            % {"role": User.Role(role).label, "source": SRC(source).label},
            field="source",
        )
    return source
