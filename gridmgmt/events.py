"""The one place case events are written. Every state change appends exactly one row here; pushes to
screens (realtime) are scheduled with `transaction.on_commit`, so a rolled-back change is never published."""

from collections.abc import Callable, Iterable
from datetime import datetime

from django.contrib.gis.geos import Point
from django.db import transaction
from django.utils import timezone

from gridmgmt.models import Case, CaseEvent, CasePhoto, User

# Subscribers called after commit with the committed event ids (the realtime app registers one).
_after_commit: list[Callable[[list[int]], None]] = []


def events_subscribe(fn: Callable[[list[int]], None]) -> None:
    if fn not in _after_commit:
        _after_commit.append(fn)


def _publish(ids: list[int]) -> None:
    for fn in _after_commit:
        try:
            fn(ids)
        except Exception:  # a failed push must never fail or undo the write; screens catch up from the log
            import logging

            logging.getLogger(__name__).exception("event publish failed for %s", ids)


def event_append(
    *,
    case: Case,
    type: str,
    actor: User | None,
    from_status: str,
    to_status: str,
    at: datetime | None = None,
    note: str = "",
    data: dict | None = None,
    location: Point | None = None,
    photos: Iterable[CasePhoto] = (),
) -> CaseEvent:
    event = CaseEvent.objects.create(
        case=case,
        type=type,
        actor=actor,
        actor_role=(actor.role if actor is not None else "system"),
        from_status=from_status,
        to_status=to_status,
        at=at or timezone.now(),
        note=note,
        data=data or {},
        location=location,
        district_id_copy=case.district_id,
        street_id_copy=case.street_id,
        community_id_copy=case.community_id,
        team_id_copy=case.team_id,
    )
    photos = list(photos)
    if photos:
        # A new event has no links yet: one INSERT, not m2m set()'s SELECT-then-INSERT.
        through = CaseEvent.photos.through
        through.objects.bulk_create([through(caseevent_id=event.id, casephoto_id=p.id) for p in photos])
    transaction.on_commit(lambda: _publish([event.id]))
    return event
