"""Writes of the case domain, by concern: `intake` (a report from any channel becomes a case) and
`workflow` (every transition after that). The rules they enforce live in `gridmgmt.rules` (who may do
what) and `gridmgmt.states` (status sets, deadline light); both are re-exported here for callers that
only need "the services"."""

from gridmgmt.services.bulk import cases_bulk_act
from gridmgmt.services.intake import (
    case_alarm_attach,
    case_report,
    case_support,
    category_resolve,
)
from gridmgmt.services.moves import ownership_evidence
from gridmgmt.services.workflow import (
    Change,
    case_accept,
    case_arbitrate,
    case_archive,
    case_check,
    case_close,
    case_dispatch,
    case_extension_decide,
    case_extension_request,
    case_file,
    case_handle,
    case_merge,
    case_park,
    case_publish,
    case_rate,
    case_reassign,
    case_recall,
    case_reclassify,
    case_reopen,
    case_resume,
    case_self_handle,
    case_send_back,
    case_urge,
    case_urge_answer,
    case_void,
)

__all__ = [
    "Change",
    "case_accept",
    "case_alarm_attach",
    "case_arbitrate",
    "case_archive",
    "case_check",
    "case_close",
    "case_dispatch",
    "case_extension_decide",
    "case_extension_request",
    "case_file",
    "case_handle",
    "case_merge",
    "case_park",
    "case_publish",
    "case_rate",
    "case_reassign",
    "case_recall",
    "case_reclassify",
    "case_reopen",
    "case_report",
    "case_resume",
    "case_self_handle",
    "case_send_back",
    "case_support",
    "case_urge",
    "case_urge_answer",
    "case_void",
    "cases_bulk_act",
    "category_resolve",
    "ownership_evidence",
]
