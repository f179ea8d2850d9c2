"""Reads behind the desk's own screens: the 督办 ledger, the 回访 list and the component (部件) layer.

Each is one query over what the caller may see (gridmgmt.access); the ledger pairs every urge (an URGED event)
with the answer that names it (an URGE_ANSWERED event, `data.urge` = the urge's id) in the same statement.
"""

from __future__ import annotations

from django.contrib.gis.geos import Polygon
from django.db.models import CharField, DateTimeField, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from geo.models import Component
from gridmgmt import access
from gridmgmt.events import URGE
from gridmgmt.models import Case, CaseEvent, User

E = CaseEvent.Type

# Above this the layer is too dense to draw as points: the desk asks only from zoom 16 (a few hundred metres).
COMPONENTS_MAX = 1000


def urges_ledger(*, user: User, answered: bool | None = None) -> QuerySet[CaseEvent]:
    """督办台账: the urges on cases `user` may see, newest first, each annotated with its answer (answer_at,
    answer_note, answer_by; None while unanswered). `answered` filters on whether it has one."""
    answers = (
        CaseEvent.objects.filter(type=E.URGE_ANSWERED, case_id=OuterRef("case_id"))
        .annotate(urge_id=Cast(KT(f"data__{URGE}"), IntegerField()))
        .filter(urge_id=OuterRef("pk"))
        .order_by("id")
    )
    qs = (
        CaseEvent.objects.filter(type=E.URGED, case__in=access.cases_visible(user=user).values("pk"))
        .select_related("case", "actor")
        .only("id", "at", "note", "data", "case__id", "case__code", "case__status", "actor__username")
        .annotate(
            answer_at=Subquery(answers.values("at")[:1], output_field=DateTimeField()),
            answer_note=Subquery(answers.values("note")[:1], output_field=CharField()),
            answer_by=Subquery(answers.values("actor__username")[:1], output_field=CharField()),
        )
        .order_by("-id")
    )
    if answered is not None:
        qs = qs.filter(answer_at__isnull=not answered)
    return qs


def return_visits_pending(*, user: User) -> QuerySet[Case]:
    """回访: closed cases `user` may see that carry no satisfaction yet and have a reporter's phone to call,
    the longest-closed first."""
    return (
        access.cases_visible(user=user)
        .filter(status=Case.Status.CLOSED, satisfaction__isnull=True)
        .exclude(reporter_phone="")
        .select_related("category__parent", "cell", "team")
        .order_by("closed_at", "id")
    )


def components_in_bbox(*, user: User, bbox: Polygon) -> QuerySet[Component]:
    """The components inside `bbox` in the caller's district scope (the cells they may see), by code."""
    cells = access.cells_visible(user=user).values("pk")
    return (
        Component.objects.filter(location__within=bbox, cell__in=cells)
        .select_related("maintainer", "category")
        .order_by("code")[: COMPONENTS_MAX + 1]
    )
