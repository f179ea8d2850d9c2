"""Reads for the intake channels, through the one access gate."""

from django.http import Http404
from django.utils.translation import gettext as _

from gridmgmt import access
from gridmgmt.models import Case


def hotline_order_get(*, user, order_no: str) -> Case:
    """The case of a 12345 order, if the user may see it (otherwise it does not exist)."""
    case = (
        access.cases_visible(user=user).filter(source=Case.Source.HOTLINE, external_id=order_no).order_by("id").first()
    )
    if case is None:
        raise Http404(_("工单不存在"))
    return case
