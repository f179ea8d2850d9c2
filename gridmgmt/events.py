"""Case events: the one definition of each event's payload, and the one place event rows are written.

The shape of Saleor's `order/events.py`: one small keyword-only builder per event type gives that type's
`data`; the timeline, the KPIs (`gridmgmt.kpi` reads the keys named here) and the real-time envelope
(`case_envelope`) all read what these builders wrote. `events_write` stores events, their photo links and
their feed rows in the writer's transaction and publishes them after commit, so a rolled-back change is
never published. Services write one event at a time (`event_append`); bulk paths (the demo) build many
with `event_build` and write them in one `events_write`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from django.contrib.gis.geos import Point
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from gridmgmt import metrics, states
from gridmgmt.models import Case, CaseEvent, CasePhoto, Category, PatrolTeam, User
from gridmgmt.notify import notifications_write
from gridmgmt.outbox import event_deliveries_write
from realtime.feed import FeedRow, feed_rows_write

log = logging.getLogger(__name__)
E = CaseEvent.Type

# --- payloads: one builder per event type ------------------------------------------------------------------
# Keys that readers (KPIs, timeline, escalation) look up by name.
ON_TIME = "on_time"  # handled / self_handled: the handling stage met its deadline
ON_TIME_OVERALL = "on_time_overall"  # closed: the resident-facing deadline (due_at) was met
DEADLINE_AT = "deadline_at"
SATISFACTION = "satisfaction"
TEAM = "team"  # the team's code


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def reported_data(*, source: str, extra: dict | None = None) -> dict:
    """上报: the channel, plus channel details (a camera alarm, an Open311 client…)."""
    return {**(extra or {}), "source": source}


def supported_data(*, alarm: dict | None = None) -> dict:
    """附议 (+1), or one more camera alarm of an event already reported."""
    return {"alarm": alarm} if alarm else {}


def filed_data(*, due_at: datetime) -> dict:
    return {"due_at": _iso(due_at)}


def dispatched_data(*, team: PatrolTeam, evidence: dict, forced: bool = False) -> dict:
    """派遣 / 审定: the team and why it owns the case (forced = decided by arbitration)."""
    data = {TEAM: team.code, "evidence": evidence}
    if forced:
        data["forced"] = True
    return data


def accepted_data(*, deadline_at: datetime) -> dict:
    return {DEADLINE_AT: _iso(deadline_at)}


def sent_back_data(*, team: PatrolTeam) -> dict:
    return {TEAM: team.code}


def handled_data(*, on_time: bool, deadline_at: datetime | None) -> dict:
    return {ON_TIME: on_time, DEADLINE_AT: _iso(deadline_at)}


def self_handled_data(*, team_id: int) -> dict:
    return {"team_id": team_id, ON_TIME: True}


def check_failed_data(*, rework: int) -> dict:
    return {"rework": rework}


def closed_data(*, on_time_overall: bool) -> dict:
    return {ON_TIME_OVERALL: on_time_overall}


def rated_data(*, satisfaction: int, via: str = "") -> dict:
    """评价 / 回访: the score; `via` = "phone" when a dispatcher recorded it on a return-visit call (回访)."""
    data = {SATISFACTION: satisfaction}
    if via:
        data["via"] = via
    return data


def reopened_data(*, previous_team: PatrolTeam | None) -> dict:
    return {"previous_team": previous_team.code if previous_team else None}


def extension_requested_data(*, hours: float) -> dict:
    return {"hours": hours}


def extension_approved_data(*, hours: float, deadline_at: datetime) -> dict:
    return {"hours": hours, DEADLINE_AT: _iso(deadline_at)}


def resumed_data(*, paused_seconds: int) -> dict:
    return {"paused_seconds": paused_seconds}


def escalated_data(*, level: int) -> dict:
    return {"level": level}


def merged_data(*, duplicate_of: Case) -> dict:
    return {"duplicate_of": duplicate_of.code}


def speaker_called_data(*, call_id: int, speakers: list[str], repeat: int, outcome: str, delivered: int) -> dict:
    """喇叭喊话: a message spoken through street loudspeakers about the case (the text is the event's note);
    the call log row (`call`), the speakers' codes, how many heard it. No state change."""
    return {"call": call_id, "speakers": speakers, "repeat": repeat, "outcome": outcome, "delivered": delivered}


URGED_PARTY = "party"  # urged: who was pressed — URGED_TEAM (the case's team) or URGED_DISPATCHERS (its area's)
URGED_TEAM, URGED_DISPATCHERS = "team", "dispatchers"


def urged_data(*, team: PatrolTeam | None) -> dict:
    """督办: the party urged — the team holding the case, or (none holding it) the dispatchers of its area. The
    urge's words are the event's note, which the service requires. No state change."""
    if team is not None:
        return {URGED_PARTY: URGED_TEAM, TEAM: team.code}
    return {URGED_PARTY: URGED_DISPATCHERS}


URGE = "urge"  # urge_answered: the id of the URGED event answered


def urge_answered_data(*, urge: CaseEvent) -> dict:
    """督办回复: the party urged answers one urge (its event id); the answer is the event's note."""
    return {URGE: urge.pk, "urged_at": _iso(urge.at)}


FROM_TEAM = "from_team"  # reassigned / recalled: the code of the team the case was taken from


def reassigned_data(*, from_team: PatrolTeam, team: PatrolTeam, evidence: dict) -> dict:
    """改派: the case moves from one team to another (the reason is the event's note)."""
    return {FROM_TEAM: from_team.code, TEAM: team.code, "evidence": evidence}


def recalled_data(*, from_team: PatrolTeam) -> dict:
    """撤回: the dispatchers take the case back from the team (the reason is the event's note)."""
    return {FROM_TEAM: from_team.code}


def reclassified_data(*, old: Category, new: Category, due_at: datetime | None, deadline_at: datetime | None) -> dict:
    """改类: the category before and after, and the deadlines as recomputed by the new category's limits."""
    return {"from": old.code, "to": new.code, "due_at": _iso(due_at), DEADLINE_AT: _iso(deadline_at)}


def component_linked_data(*, component, department_code: str | None, previous: str | None) -> dict:
    """关联部件: the component the case is about (code), the department it now routes to, the one it replaced."""
    return {"component": component.code, "department": department_code, "previous_component": previous}


def no_data() -> dict:
    """voided, check_passed, extension_rejected, parked, archived: the event row says it all."""
    return {}


# --- the feed envelope of a case event ----------------------------------------------------------------------

FEED_TYPES = {E.REPORTED: "case.created", E.ESCALATED: "case.escalated"}  # every other event: case.updated


def _names(cases: Iterable[Case]) -> tuple[dict[int, dict], dict[int, dict]]:
    """Codes and names of the cases' categories and teams: two queries however many events, fewer when the
    writer already holds a case's category with its code and name (intake)."""
    cases = list(cases)
    categories = {}
    for c in cases:
        held = c.category if Case.category.is_cached(c) else None
        if held is not None and not {"code", "name"} & held.get_deferred_fields():
            categories[c.category_id] = {"id": held.id, "code": held.code, "name": held.name}
    missing = {c.category_id for c in cases} - categories.keys()
    if missing:
        categories.update((c["id"], c) for c in Category.objects.filter(pk__in=missing).values("id", "code", "name"))
    team_ids = {c.team_id for c in cases} - {None}
    if not team_ids:  # a new case has no team: not even an empty query to build
        return categories, {}
    teams = {t["id"]: t for t in PatrolTeam.objects.filter(pk__in=team_ids).values("id", "code", "name")}
    return categories, teams


def event_scope_ids(event: CaseEvent) -> dict:
    """The area and team ids the event was copied with: the feed's scope keys."""
    return {
        "district_id": event.district_id_copy,
        "street_id": event.street_id_copy,
        "community_id": event.community_id_copy,
        "team_id": event.team_id_copy,
    }


def case_envelope(*, event: CaseEvent, case: Case, category: dict, team: dict | None) -> dict:
    """The feed's `data` for a case event: the case as it stands right after the event (realtime/PROTOCOL.md).
    `light` is the deadline light at the event's time by the one rule in gridmgmt.states."""
    return {
        "case_id": case.pk,
        "code": case.code,
        "event": event.type,
        "status": event.to_status,
        "from_status": event.from_status,
        "open": states.status_is_open(event.to_status),
        "team": team["code"] if team else None,
        "team_name": team["name"] if team else None,
        "category": category["code"],
        "category_name": category["name"],
        "urgency": case.urgency,
        "level": case.level,
        "source": case.source,
        "lon": round(case.point.x, 6),
        "lat": round(case.point.y, 6),
        "address": case.address,
        "deadline_at": _iso(case.deadline_at),
        "warn_at": _iso(case.warn_at),
        "light": _light_or_null(case=case, at=event.at),
        "actor_role": event.actor_role,
        "note": event.note[:200],
        **event_scope_ids(event),  # district_id, street_id, community_id, team_id
    }


def case_envelopes(events: Sequence[CaseEvent]) -> list[dict]:
    """case_envelope of each event (of a saved case, `event.case`), the names read in two queries at most."""
    categories, teams = _names(e.case for e in events)
    return [
        case_envelope(event=e, case=e.case, category=categories[e.case.category_id], team=teams.get(e.case.team_id))
        for e in events
    ]


def _light_or_null(*, case: Case, at: datetime) -> str | None:
    light = states.case_light(case=case, now=at)
    return None if light == states.NONE else light


# --- writing ----------------------------------------------------------------------------------------------

# Subscribers called after commit with the committed event ids, their feed rows and, when one row was
# written, its seq (the realtime app registers one).
_after_commit: list[Callable[..., None]] = []


def events_subscribe(fn: Callable[..., None]) -> None:
    """`fn(ids, *, rows, seq)`: after each commit of events `ids`, with their feed rows (same order) and the
    seq of the row when there is one (else None: the subscriber reads the seqs if it needs them)."""
    if fn not in _after_commit:
        _after_commit.append(fn)


def _publish(ids: list[int], rows: list[FeedRow], seq: int | None) -> None:
    for fn in _after_commit:
        try:
            fn(ids, rows=rows, seq=seq)
        except Exception:  # a failed push must never fail or undo the write; screens catch up from the log
            log.exception("event publish failed for %s", ids)


def event_build(
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
    recorded_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> CaseEvent:
    """An unsaved event row of `case` (its area and team ids copied for scoped feeds). `at` is when it
    happened; `recorded_at` (an action queued offline) when the server wrote it, None when that is `at`."""
    return CaseEvent(
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
        recorded_at=recorded_at,
        idempotency_key=idempotency_key,
        district_id_copy=case.district_id,
        street_id_copy=case.street_id,
        community_id_copy=case.community_id,
        team_id_copy=case.team_id,
        department_id_copy=case.department_id,
    )


# From this many events (bulk loads: the demo) rows go in by COPY: bulk_create spent ~5× longer building and
# sending its multi-row INSERTs (170,000 events: 125 s against 21 s).
COPY_FROM = 500
_EVENT_COLUMNS = (
    "id", "case_id", "type", "actor_id", "actor_role", "from_status", "to_status", "at", "location", "note", "data",
    "district_id_copy", "street_id_copy", "community_id_copy", "team_id_copy", "department_id_copy",
)  # fmt: skip


def _events_copy(events: list[CaseEvent], pairs: list[tuple[int, int]]) -> None:
    """Store `events` (ids drawn from the table's own sequence, in order) and their photo links by COPY."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT nextval(pg_get_serial_sequence('gridmgmt_caseevent', 'id')) FROM generate_series(1, %s) ORDER BY 1",
            [len(events)],
        )
        for event, (pk,) in zip(events, cur.fetchall(), strict=True):
            event.id = pk
            event._state.adding, event._state.db = False, connection.alias
        with cur.copy(f"COPY gridmgmt_caseevent ({', '.join(_EVENT_COLUMNS)}) FROM STDIN") as copy:
            for e in events:
                copy.write_row(
                    (
                        e.id, e.case_id, e.type, e.actor_id, e.actor_role, e.from_status, e.to_status, e.at,
                        e.location.ewkt if e.location is not None else None, e.note,
                        json.dumps(e.data, cls=DjangoJSONEncoder, ensure_ascii=False),
                        e.district_id_copy, e.street_id_copy, e.community_id_copy, e.team_id_copy,
                        e.department_id_copy,
                    )
                )  # fmt: skip
        if pairs:
            table = CaseEvent.photos.through._meta.db_table
            with cur.copy(f"COPY {table} (caseevent_id, casephoto_id) FROM STDIN") as copy:
                for i, photo_id in pairs:
                    copy.write_row((events[i].id, photo_id))


def events_write(
    events: Sequence[CaseEvent],
    *,
    photos: dict[int, Iterable[CasePhoto]] | None = None,
    envelopes: Sequence[dict] | None = None,
    notify: bool = True,
) -> list[CaseEvent]:
    """Store `events` (in order), their photo links (`photos`: index in `events` → photos), one feed row
    each and the notifications gridmgmt.notify's rules give (`notify=False`: none — a historical load), in
    the caller's transaction; publish after commit. `envelopes` may be given by bulk callers that already
    hold the names (same order as `events`); otherwise each is built with case_envelope."""
    events = list(events)
    pairs = [(i, p.id) for i, items in (photos or {}).items() for p in items]
    if len(events) >= COPY_FROM:
        _events_copy(events, pairs)
    else:
        CaseEvent.objects.bulk_create(events)
        if pairs:
            # New events have no links yet: one INSERT, not m2m set()'s SELECT-then-INSERT.
            through = CaseEvent.photos.through
            through.objects.bulk_create([through(caseevent_id=events[i].id, casephoto_id=p) for i, p in pairs])
    if envelopes is None:
        envelopes = case_envelopes(events)
    rows = [
        FeedRow(
            type=FEED_TYPES.get(event.type, "case.updated"),
            at=event.at,
            case_event_id=event.id,
            data=envelope,
            **event_scope_ids(event),
        )
        for event, envelope in zip(events, envelopes, strict=True)
    ]
    seq = feed_rows_write(rows)
    notified = 0
    if notify:
        notified = notifications_write(events, envelopes)
        event_deliveries_write(events, envelopes)  # robots and the reporter's SMS (gridmgmt.outbox)
    ids = [e.id for e in events]
    transaction.on_commit(lambda: _publish(ids, rows, seq))
    if notify:  # a historical (demo) load is not traffic
        types = [e.type for e in events]
        sources = [e.case.source for e in events if e.type == CaseEvent.Type.REPORTED]
        transaction.on_commit(lambda: metrics.events_count(types=types, report_sources=sources, notifications=notified))
    return events


def event_append(*, photos: Iterable[CasePhoto] = (), **fields) -> CaseEvent:
    """Append one event of `case` (call it after saving the case: the envelope shows the case as saved).
    `fields`: event_build's keywords (case, type, actor, from_status, to_status, at, note, data, location,
    recorded_at, idempotency_key)."""
    event = event_build(**fields)
    (event,) = events_write([event], photos={0: list(photos)})
    return event
