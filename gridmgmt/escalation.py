"""四级处置: a case in breach of its deadline climbs grid → community → street → district.

The rule, run by `manage.py cases_escalate` (once, or every N seconds with --loop):

- **In breach since** ``breached_at = min(deadline_at, due_at)``: ``deadline_at`` is the current stage's clock
  and counts only while one runs (filed, dispatched, sent back, handling); ``due_at`` is the resident-facing
  promise and counts in every open stage, so a case waiting at the inspector or the command centre past its
  promise escalates too. Parked cases (clock stopped) and cases not yet filed (no clock) never escalate.
- **Span**: the wall-clock length of the current stage's limit (deadline − acceptance while handling,
  deadline − stage start while waiting for dispatch, else the handling limit due_at − dispatch deadline),
  never less than MIN_SPAN, so a 10-minute dispatch window does not race a case to the district.
- **Thresholds**: level L+1 is due once ``now > breached_at + L × span`` (the first level as soon as the
  deadline passes, each further level one span later). A run raises a due case by exactly ONE level,
  whatever it missed, so a run every minute cannot push a case to the district in three minutes, and a
  scheduler that was down catches up one level per run. Running twice at the same moment changes nothing
  the second time: the run is idempotent.
- Each escalation bumps `level` and `version`, appends one ESCALATED event (actor None, data {"level": n})
  and alerts the supervisors of the new level: active inspectors, shift leaders and admins whose `area` is
  the case's community (level 1), street (2) or district (3). The grid level (0) is the owning team's own,
  so nobody is alerted for it. Where the target area is missing or has no supervisor, the next area up
  is alerted instead (属地兜底: an escalation never goes unseen). `level_supervisors` decides who; the
  alerts are notifications of kind "escalated", written with the event by `gridmgmt.notify`'s rules.

One run is one transaction. The breached cases are chosen by one query that locks them with
``SELECT … FOR UPDATE SKIP LOCKED``: a case a person is acting on right now is skipped and picked up by
the next run, and two schedulers running at once never escalate one case twice.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Case as CaseWhen
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Value, When
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone
from django.utils.translation import gettext as _

from gridmgmt import access
from gridmgmt.events import escalated_data, event_build, events_write
from gridmgmt.models import Case, CaseEvent, Notification, User
from gridmgmt.states import CLOCKED_STATUSES, OPEN_STATUSES

S = Case.Status
MIN_SPAN = timedelta(hours=2)
BATCH = 1000  # cases per run; the rest are picked up by the next run
ESCALATING_STATUSES = sorted(OPEN_STATUSES - {S.PARKED, S.REPORTED})
# The case's area field for each level, and the ones above it (the fallback order).
_AREA_CHAIN = {
    Case.Level.COMMUNITY: ("community_id", "street_id", "district_id"),
    Case.Level.STREET: ("street_id", "district_id"),
    Case.Level.DISTRICT: ("district_id",),
}


@dataclass(frozen=True)
class EscalationReport:
    now: datetime
    escalated: tuple[tuple[int, int], ...]  # (case id, new level)
    alerts: int

    @property
    def count(self) -> int:
        return len(self.escalated)


def breach_annotations() -> dict:
    """Annotations `breached_at`, `span` and `next_level_at` (when the next level is due) on Case."""
    clock = CaseWhen(When(status__in=CLOCKED_STATUSES, then=F("deadline_at")), output_field=DateTimeField())
    stage_span = CaseWhen(
        When(status=S.HANDLING, accepted_at__isnull=False, then=F("deadline_at") - F("accepted_at")),
        When(status__in=CLOCKED_STATUSES, then=F("deadline_at") - F("stage_started_at")),
        default=F("due_at") - F("dispatch_deadline_at"),
        output_field=DurationField(),
    )
    floor = Value(MIN_SPAN, output_field=DurationField())
    return {
        # PostgreSQL's LEAST/GREATEST skip NULLs: a case with only one of the two clocks uses that one.
        "breached_at": Least(clock, F("due_at"), output_field=DateTimeField()),
        "span": Greatest(Coalesce(stage_span, floor), floor, output_field=DurationField()),
    }


def cases_breached(*, now: datetime):
    """Open, unparked cases below district level whose next escalation threshold has passed."""
    after = ExpressionWrapper(F("level") * F("span"), output_field=DurationField())
    return (
        Case.objects.annotate(**breach_annotations())
        .annotate(next_level_at=ExpressionWrapper(F("breached_at") + after, output_field=DateTimeField()))
        .filter(status__in=ESCALATING_STATUSES, level__lt=Case.Level.DISTRICT, next_level_at__lt=now)
    )


def level_supervisors(targets: list[tuple[Case, int]]) -> list[list[int]]:
    """For each (case, new level): the ids of the supervisors that escalation alerts — the active supervisors
    whose area is exactly the level's area of the case, or the next area up where that has none (one query
    for the whole list; nobody for the grid level)."""
    chains = [_AREA_CHAIN.get(level, ()) for _case, level in targets]
    area_ids = {getattr(c, f) for (c, _level), chain in zip(targets, chains, strict=True) for f in chain} - {None}
    by_area: dict[int, list[int]] = defaultdict(list)
    if area_ids:
        rows = User.objects.filter(area_id__in=area_ids, role__in=access.SUPERVISOR_ROLES, is_active=True)
        for user_id, area_id in rows.order_by("id").values_list("id", "area_id"):
            by_area[area_id].append(user_id)
    found = []
    for (case, _level), chain in zip(targets, chains, strict=True):
        area = next((a for f in chain if (a := getattr(case, f)) in by_area), None)
        found.append(list(by_area.get(area, ())))
    return found


def cases_escalate(*, now: datetime | None = None, batch: int = BATCH) -> EscalationReport:
    """Raise every due case one level (see the module docstring). One transaction; returns what it did."""
    now = now or timezone.now()
    with transaction.atomic():
        cases = list(cases_breached(now=now).select_for_update(skip_locked=True, of=("self",)).order_by("id")[:batch])
        if not cases:
            return EscalationReport(now=now, escalated=(), alerts=0)
        Case.objects.filter(pk__in=[c.pk for c in cases]).update(
            level=F("level") + 1, version=F("version") + 1, updated_at=now
        )
        built = []
        for case in cases:
            case.level += 1
            case.version += 1
            label = Case.Level(case.level).label
            built.append(
                event_build(
                    case=case,
                    type=CaseEvent.Type.ESCALATED,
                    actor=None,
                    from_status=case.status,
                    to_status=case.status,
                    at=now,
                    note=_("超过处置时限,升级至%(level)s督办") % {"level": label},
                    data=escalated_data(level=case.level),
                )
            )
        # The supervisors' notifications are written with the events (gridmgmt.notify, rule "escalated").
        events = events_write(built)
        alerts = Notification.objects.filter(event__in=[e.pk for e in events], kind=Notification.Kind.ESCALATED).count()
    return EscalationReport(now=now, escalated=tuple((c.pk, c.level) for c in cases), alerts=alerts)
