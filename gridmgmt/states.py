"""Case states: which statuses are open, which run a clock, the deadline light and "overdue".

The one definition of each. REST, the KPIs, the feed envelope, the wall snapshot, escalation and the
browser (which is sent these from the server) all use what is here.

The deadline instant: a stage is on time *at* its deadline and breached only after it
(`now > deadline`), the same as `on_time = done_at <= deadline` when a stage ends. So a case is red
from the first instant after its deadline, and a step done exactly at the deadline counts as on time.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Case as CaseWhen
from django.db.models import CharField, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from gridmgmt.models import Case

S = Case.Status

# Not yet closed, voided or archived: the case is somebody's work.
OPEN_STATUSES = frozenset({S.REPORTED, S.FILED, S.DISPATCHED, S.SENT_BACK, S.HANDLING, S.HANDLED, S.CHECKED, S.PARKED})
# Finished with a result (voided and merged-away cases are closed_at too, but voided is not "done").
DONE_STATUSES = frozenset({S.CLOSED, S.ARCHIVED})
# A stage deadline is running (a parked case is paused; reported/handled/checked wait on the centre).
CLOCKED_STATUSES = frozenset({S.FILED, S.DISPATCHED, S.SENT_BACK, S.HANDLING})
# The share of a stage's limit after which its light turns yellow.
WARN_FRACTION = 0.75

GREEN, YELLOW, RED, NONE = "green", "yellow", "red", "none"
LIGHTS = (RED, YELLOW, GREEN, NONE)  # worst first
# What each light means, in words (a face shows it next to the colour: colour alone is not enough).
LIGHT_LABELS = {RED: _("已超时"), YELLOW: _("临近时限"), GREEN: _("时限内"), NONE: _("未计时")}


def deadline_passed(*, deadline: datetime | None, at: datetime) -> bool:
    """The one rule for the deadline instant: passed only strictly after it."""
    return deadline is not None and at > deadline


def case_light(*, case: Case, now: datetime | None = None) -> str:
    """The current stage's light: red once the stage deadline has passed, yellow once 75 % of its limit is
    used (warn_at), else green; "none" when no clock runs (reported, parked, handled, closed…). A parked
    case is paused, so it is never red however old its deadline."""
    now = now or timezone.now()
    if case.status not in CLOCKED_STATUSES or case.deadline_at is None:
        return NONE
    if deadline_passed(deadline=case.deadline_at, at=now):
        return RED
    if case.warn_at is not None and now >= case.warn_at:
        return YELLOW
    return GREEN


def _light_whens(*, now: datetime, prefix: str) -> tuple[list[tuple[Q, str]], str]:
    """case_light's conditions in SQL, in order, each with its light; the default light last."""
    p = prefix
    return [
        (~Q(**{f"{p}status__in": CLOCKED_STATUSES}) | Q(**{f"{p}deadline_at__isnull": True}), NONE),
        (Q(**{f"{p}deadline_at__lt": now}), RED),
        (Q(**{f"{p}warn_at__lte": now}), YELLOW),
    ], GREEN


def light_expression(*, now: datetime, prefix: str = "") -> CaseWhen:
    """case_light as an ORM expression (filterable, countable, orderable) over Case rows."""
    whens, default = _light_whens(now=now, prefix=prefix)
    return CaseWhen(
        *(When(q, then=Value(light)) for q, light in whens), default=Value(default), output_field=CharField()
    )


def light_rank_expression(*, now: datetime, prefix: str = "") -> CaseWhen:
    """The light's place in LIGHTS (0 = red … 3 = none) as one integer CASE: the same conditions as
    light_expression, cheaper to sort by than comparing its text (the desk's "overdue first")."""
    whens, default = _light_whens(now=now, prefix=prefix)
    return CaseWhen(
        *(When(q, then=Value(LIGHTS.index(light))) for q, light in whens),
        default=Value(LIGHTS.index(default)),
        output_field=IntegerField(),
    )


def cases_with_light(qs: QuerySet[Case], now: datetime | None = None) -> QuerySet[Case]:
    """`qs` annotated with `light`, the same rule as case_light in SQL (filterable, countable)."""
    return qs.annotate(light=light_expression(now=now or timezone.now()))


def open_q() -> Q:
    return Q(status__in=OPEN_STATUSES)


def overdue_q(*, now: datetime) -> Q:
    """Overdue = red: a running stage clock past its deadline. Parked cases are paused, so never overdue."""
    return Q(status__in=CLOCKED_STATUSES, deadline_at__lt=now)


def status_is_open(status: str) -> bool:
    return status in OPEN_STATUSES


def states_describe() -> dict:
    """What the browser needs to know of the states (sent with each page, never copied into JavaScript)."""
    return {
        "open": sorted(OPEN_STATUSES),
        "clocked": sorted(CLOCKED_STATUSES),
        "lights": list(LIGHTS),
        "lightLabels": {light: str(LIGHT_LABELS[light]) for light in LIGHTS},
        "labels": {value: str(label) for value, label in S.choices},
    }
