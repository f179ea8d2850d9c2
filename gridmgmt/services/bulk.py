"""Bulk desk work (批量立案 / 作废 / 派遣): one request for several cases, each case its own transition.

Per-case results, not all-or-nothing: each case goes through the same service as a single action (its own
transaction, row lock, rule check and one event), so a case another dispatcher moved meanwhile is refused
(409) and reported on its own line while the others go through — a dispatcher clearing a queue wants the
twenty that can be filed filed, and the one that cannot named. The result keeps the order asked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.http import Http404
from django.utils.translation import gettext as _

from gridmgmt.errors import DomainError, InvalidInput
from gridmgmt.models import Case, User
from gridmgmt.services import workflow

BULK_MAX = 100


def _services(*, note: str, reason: str, team_id: int | None) -> dict[str, Callable[..., Case]]:
    return {
        "file": lambda case_id, actor: workflow.case_file(case_id=case_id, actor=actor, note=note),
        "void": lambda case_id, actor: workflow.case_void(case_id=case_id, actor=actor, reason=reason),
        "dispatch": lambda case_id, actor: workflow.case_dispatch(
            case_id=case_id, actor=actor, team_id=team_id, note=note
        ),
    }


def cases_bulk_act(
    *, actor: User, action: str, case_ids: Sequence[int], note: str = "", reason: str = "", team_id: int | None = None
) -> list[dict]:
    """Take `action` (file, void, dispatch) on each case of `case_ids`, one transition each. Returns one result
    a case, in order: {"id", "ok": True, "code", "status"} or {"id", "ok": False, "http_status", "error":
    {"code", "detail", "field"}} (403 role, 404 not visible, 409 state/guard, 400 input)."""
    services = _services(note=note, reason=reason, team_id=team_id)
    if action not in services:
        raise InvalidInput(_("批量操作只能是立案、作废或派遣"), field="action")
    ids = list(dict.fromkeys(case_ids))  # a case named twice is acted on once
    if not 1 <= len(ids) <= BULK_MAX:
        raise InvalidInput(_("一次最多处理 %(n)d 个案件") % {"n": BULK_MAX}, field="cases")
    if action == "void" and not reason.strip():  # the same input check for every case: say it once
        raise InvalidInput(_("作废必须填写原因"), field="reason", code="required")
    if action == "dispatch" and not team_id:
        raise InvalidInput(_("请选择本区的处置队伍"), field="team", code="unknown_team")
    results = []
    for case_id in ids:
        try:
            case = services[action](case_id, actor)
        except DomainError as e:
            error = {"code": e.code, "detail": str(e.message), "field": e.field}
            results.append({"id": case_id, "ok": False, "http_status": e.status, "error": error})
        except Http404:
            error = {"code": "not_found", "detail": _("案件不存在"), "field": None}
            results.append({"id": case_id, "ok": False, "http_status": 404, "error": error})
        else:
            results.append({"id": case_id, "ok": True, "code": case.code, "status": case.status})
    return results
