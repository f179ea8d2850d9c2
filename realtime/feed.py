"""Writing the real-time log: one `realtime_feedevent` row per message screens receive.

Envelopes are built in Python by their writers, in the writer's transaction (case events:
`gridmgmt.events.case_envelope`; team and camera changes: the builders below). The database keeps only what
must be there: a BEFORE INSERT trigger takes the feed's transaction-level advisory lock and draws `seq`
(so seq order is commit order, migration 0003), and the log is append-only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection

_COLUMNS = "type, at, district_id, street_id, community_id, team_id, user_id, case_event_id, data"
_INSERT = f"INSERT INTO realtime_feedevent ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)"
COPY_FROM = 500  # rows; fewer go in as one executemany


@dataclass(frozen=True)
class FeedRow:
    type: str
    at: datetime
    data: dict
    district_id: int | None = None
    street_id: int | None = None
    community_id: int | None = None
    team_id: int | None = None
    user_id: int | None = None  # a row for one person (scope user:<id>; gridmgmt.notify)
    case_event_id: int | None = None


def feed_rows_write(rows: list[FeedRow]) -> int | None:
    """Append `rows` to the log in the caller's transaction (seq is drawn by the database, in this order).
    Returns the seq of a single row (the common case: one event, one change) for the after-commit notice;
    None for several rows (the notice then reads them back)."""
    if not rows:
        return None
    params = [
        (
            r.type,
            r.at,
            r.district_id,
            r.street_id,
            r.community_id,
            r.team_id,
            r.user_id,
            r.case_event_id,
            json.dumps(r.data, cls=DjangoJSONEncoder, ensure_ascii=False),
        )
        for r in rows
    ]
    with connection.cursor() as cur:
        if len(params) == 1:  # the common case (one event, one change): its seq comes back with the INSERT
            cur.execute(_INSERT + " RETURNING seq", params[0])
            return cur.fetchone()[0]
        if len(params) < COPY_FROM:
            cur.executemany(_INSERT, params)
            return None
        # Bulk loads (the demo): COPY; the BEFORE INSERT trigger draws seq for each row all the same.
        with cur.copy(f"COPY realtime_feedevent ({_COLUMNS}) FROM STDIN") as copy:
            for row in params:
                copy.write_row(row)
    return None


def _round(value: float) -> float:
    return round(value, 6)


def _team_row(*, type: str, team, at: datetime, data: dict) -> FeedRow:
    """A team.* frame: scoped to the team's district, street and team; its data the team's keys, then `data`."""
    return FeedRow(
        type=type,
        at=at,
        district_id=team.district_id,
        street_id=team.street_id,
        team_id=team.id,
        data={"team_id": team.id, "team": team.code, "team_name": team.name, "status": team.status, **data},
    )


def team_position_row(*, team, lon: float, lat: float, at: datetime) -> FeedRow:
    """`team.position`: where a team was at `at`."""
    data = {"lon": _round(lon), "lat": _round(lat), "at": at.isoformat()}
    return _team_row(type="team.position", team=team, at=at, data=data)


def team_status_row(*, team, from_status: str, at: datetime) -> FeedRow:
    """`team.status`: 在岗/处置中/离岗 changed."""
    return _team_row(type="team.status", team=team, at=at, data={"from_status": from_status})


def camera_status_row(*, camera, from_status: str, at: datetime, district_id, street_id, community_id) -> FeedRow:
    """`camera.status`: a camera went online or offline."""
    return FeedRow(
        type="camera.status",
        at=at,
        district_id=district_id,
        street_id=street_id,
        community_id=community_id,
        data={
            "camera_id": camera.id,
            "code": camera.code,
            "name": camera.name,
            "status": camera.status,
            "from_status": from_status,
            "lon": _round(camera.location.x),
            "lat": _round(camera.location.y),
        },
    )
