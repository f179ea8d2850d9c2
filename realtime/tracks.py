"""Who was where: tracks and attendance (考勤) read from the position history (`realtime/positions.py`).

- **A track** is one device's fixes in a period, ordered by time, as one GeoJSON Feature: a MultiLineString
  whose parts break wherever two fixes are more than `TRACK_GAP` apart (a tracker switched off at lunch and on
  again across the street did not walk the straight line between), with `times` (Unix seconds, one per
  vertex, in the order of the vertices) for a replay. Built in PostgreSQL (window functions, `ST_MakeLine`
  per part, `ST_AsGeoJSON`), one statement for every device of the selection.
- **Attendance** is derived from the same history, not recorded separately: a member was on duty on a day from
  their first fix to their last (place and time of each), with `minutes` the time covered by fixes no more than
  `TRACK_GAP` apart. A day without a fix is a day off. The explicit team status (在岗/处置中/离岗,
  `realtime.services.team_status_set`) stays the dispatcher's live view; attendance is what the devices show.

Who may read which tracks is decided by the caller through `gridmgmt.access` (`track_teams_visible`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import connection

TRACK_GAP = timedelta(minutes=10)  # a longer silence between two fixes breaks the line (and the attendance)
TRACK_POINTS_MAX = 20_000  # vertices per device and request; beyond this the track is thinned evenly

_TRACKS = """
WITH p AS (
    SELECT p.device_id, p.user_id, p.team_id, p.at, p.point,
           row_number() OVER w AS n, count(*) OVER (PARTITION BY p.device_id) AS total,
           CASE WHEN p.at - lag(p.at) OVER w > %(gap)s THEN 1 ELSE 0 END AS brk
    FROM realtime_position p
    WHERE p.at >= %(start)s AND p.at < %(end)s
      AND (p.team_id = ANY(%(teams)s)
           OR p.device_id IN (SELECT id FROM realtime_device WHERE user_id = ANY(%(users)s)))  -- the key's index
    WINDOW w AS (PARTITION BY p.device_id ORDER BY p.at)
), thin AS (
    -- Every k-th fix of a device with more than TRACK_POINTS_MAX (its last and each part's first kept).
    SELECT *, sum(brk) OVER (PARTITION BY device_id ORDER BY at) AS part FROM p
    WHERE total <= %(max)s OR n %% ceil(total::float8 / %(max)s)::int = 0 OR n = total OR n = 1 OR brk = 1
), parts AS (
    -- A part of one fix is drawn as a line of two equal vertices (and given its time twice).
    SELECT device_id, part, min(at) AS t0,
           CASE WHEN count(*) > 1 THEN ST_MakeLine(point ORDER BY at)
                ELSE ST_MakeLine((array_agg(point))[1], (array_agg(point))[1]) END AS line,
           CASE WHEN count(*) > 1 THEN array_agg(extract(epoch FROM at)::bigint ORDER BY at)
                ELSE array_agg(extract(epoch FROM at)::bigint) || array_agg(extract(epoch FROM at)::bigint) END AS times
    FROM thin GROUP BY device_id, part
), devices AS (
    SELECT device_id, ST_Multi(ST_Collect(line ORDER BY t0)) AS geom FROM parts GROUP BY device_id
), times AS (
    SELECT t.device_id, array_agg(x ORDER BY t.t0, o) AS times
    FROM parts t, unnest(t.times) WITH ORDINALITY AS u(x, o) GROUP BY t.device_id
), summary AS (
    SELECT device_id, min(at) AS first_at, max(at) AS last_at, count(*) AS fixes,
           (array_agg(user_id ORDER BY at DESC))[1] AS user_id, (array_agg(team_id ORDER BY at DESC))[1] AS team_id
    FROM p GROUP BY device_id
)
SELECT json_build_object(
    'type', 'FeatureCollection',
    'features', coalesce(json_agg(json_build_object(
        'type', 'Feature',
        'id', d.device_id,
        'geometry', ST_AsGeoJSON(d.geom, 6)::json,
        'properties', json_build_object(
            'device', dv.identifier, 'kind', dv.kind,
            'user', s.user_id, 'username', u.username,
            'name', nullif(trim(u.last_name || u.first_name), ''),
            'team', s.team_id, 'team_name', tm.name,
            'first_at', s.first_at, 'last_at', s.last_at, 'fixes', s.fixes,
            'times', tt.times
        )
    ) ORDER BY s.team_id, u.username, dv.identifier), '[]'::json)
)::text
FROM devices d
JOIN times tt ON tt.device_id = d.device_id
JOIN summary s ON s.device_id = d.device_id
JOIN realtime_device dv ON dv.id = d.device_id
JOIN gridmgmt_user u ON u.id = s.user_id
LEFT JOIN gridmgmt_patrolteam tm ON tm.id = s.team_id
"""


def tracks_geojson(
    *, team_ids: Sequence[int] = (), user_ids: Sequence[int] = (), start: datetime, end: datetime
) -> str:
    """The tracks of the devices of `team_ids` (fixes made while in the team) and of `user_ids` in
    [start, end), as GeoJSON text: one Feature per device (MultiLineString, `times` per vertex; see the module)."""
    if not team_ids and not user_ids:
        return '{"type": "FeatureCollection", "features": []}'
    params = {
        "start": start,
        "end": end,
        "teams": list(team_ids),
        "users": list(user_ids),
        "gap": TRACK_GAP,
        "max": TRACK_POINTS_MAX,
    }
    with connection.cursor() as cur:
        cur.execute(_TRACKS, params)
        return cur.fetchone()[0]


@dataclass(frozen=True)
class Attendance:
    """One member's day as the devices show it (on duty from the first fix to the last)."""

    day: date
    user_id: int
    username: str
    name: str
    team_id: int | None
    on_at: datetime
    on_lon: float
    on_lat: float
    off_at: datetime
    off_lon: float
    off_lat: float
    fixes: int
    minutes: int  # time covered by fixes no more than TRACK_GAP apart


_ATTENDANCE = """
WITH p AS (
    SELECT (p.at AT TIME ZONE %(tz)s)::date AS day, p.user_id, p.team_id, p.at, p.point,
           p.at - lag(p.at) OVER (PARTITION BY p.user_id, (p.at AT TIME ZONE %(tz)s)::date ORDER BY p.at) AS step
    FROM realtime_position p
    WHERE p.at >= %(start)s AND p.at < %(end)s
      AND (p.team_id = ANY(%(teams)s) OR p.device_id IN (SELECT id FROM realtime_device WHERE user_id = ANY(%(users)s)))
)
SELECT p.day, p.user_id, u.username, trim(u.last_name || u.first_name),
       (array_agg(p.team_id ORDER BY p.at DESC))[1],
       min(p.at), ST_X((array_agg(p.point ORDER BY p.at))[1]), ST_Y((array_agg(p.point ORDER BY p.at))[1]),
       max(p.at), ST_X((array_agg(p.point ORDER BY p.at DESC))[1]), ST_Y((array_agg(p.point ORDER BY p.at DESC))[1]),
       count(*), coalesce(round(extract(epoch FROM sum(p.step) FILTER (WHERE p.step <= %(gap)s)) / 60), 0)::int
FROM p JOIN gridmgmt_user u ON u.id = p.user_id
GROUP BY p.day, p.user_id, u.username, u.last_name, u.first_name
ORDER BY p.day, u.username
"""


def attendance_read(
    *, team_ids: Sequence[int] = (), user_ids: Sequence[int] = (), start: datetime, end: datetime, tz: str
) -> list[Attendance]:
    """On and off duty per member and day (days of `tz`) in [start, end), derived from the fixes (module doc)."""
    if not team_ids and not user_ids:
        return []
    params = {"start": start, "end": end, "teams": list(team_ids), "users": list(user_ids), "gap": TRACK_GAP, "tz": tz}
    with connection.cursor() as cur:
        cur.execute(_ATTENDANCE, params)
        return [Attendance(*row) for row in cur.fetchall()]


def geojson_load(text: str) -> dict:
    return json.loads(text)
