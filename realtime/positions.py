"""The position history: every accepted fix of every device, in `realtime_position`, a PostgreSQL table
partitioned by day (declarative range partitioning on the fix time `at`, one partition per day of
settings.TIME_ZONE, named `realtime_position_pYYYYMMDD`).

- Partitions are created ahead (today + `POSITION_PARTITIONS_AHEAD` days, default 7) by
  `partitions_maintain`, which `manage.py positions_partitions` and `manage.py realtime_prune` run; a fix for a
  day that has none yet (a tracker emptying a buffer from before the migration) creates its day's partition
  on the spot.
- Retention: `partitions_maintain` DROPS the partitions of days older than `POSITION_RETENTION_DAYS`
  (default 30) — a whole day goes at once, no DELETE, no vacuum. A fix older than that is acknowledged and
  not stored (it would be dropped at the next run; a device must be able to empty its buffer).
  A position that matters to a case is not lost with its partition: the case event's data (report, handle,
  check…) carries its own location, and events are kept for good.

Writes are set-based: one INSERT … SELECT FROM unnest(…) per batch of fixes, ON CONFLICT (device_id, at)
DO NOTHING (a fix sent twice is stored once), one UPDATE of the devices' `last_seen_at`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

log = logging.getLogger(__name__)

PARENT = "realtime_position"
_NAME = re.compile(r"^realtime_position_p(\d{8})$")


def _setting(name: str, default: int) -> int:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, default)
    return int(value)


def retention_days() -> int:
    """Days of history kept (POSITION_RETENTION_DAYS, default 30)."""
    return _setting("POSITION_RETENTION_DAYS", 30)


def partitions_ahead() -> int:
    """Days of partitions created ahead of today (POSITION_PARTITIONS_AHEAD, default 7)."""
    return _setting("POSITION_PARTITIONS_AHEAD", 7)


def future_seconds() -> int:
    """A fix further than this in the future is refused (POSITION_FUTURE_SECONDS, default 300): a device
    clock may be a little ahead, a time hours or years ahead is a broken clock or a forged fix."""
    return _setting("POSITION_FUTURE_SECONDS", 300)


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def day_of(at: datetime) -> date:
    """The partition day of a fix: its date in settings.TIME_ZONE."""
    return at.astimezone(_zone()).date()


def today_local() -> date:
    """Today in settings.TIME_ZONE, whatever zone a request activated (partition days are in that zone)."""
    return timezone.now().astimezone(_zone()).date()


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=_zone())


def partitions_list() -> list[date]:
    """Days that have a partition, oldest first."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [PARENT],
        )
        names = [r[0] for r in cur.fetchall()]
    days = []
    for name in names:
        match = _NAME.match(name)
        if match:
            days.append(datetime.strptime(match.group(1), "%Y%m%d").date())
    return sorted(days)


def partitions_create(days: Iterable[date]) -> list[date]:
    """Create the partitions of `days` that do not exist yet; returns those created. Safe to race: a
    partition another process created meanwhile is simply there."""
    have = set(partitions_list())
    created = []
    for day in sorted(set(days) - have):
        start, end = _day_start(day), _day_start(day + timedelta(days=1))
        # Identifiers and bounds come from a date, never from input.
        sql = (
            f'CREATE TABLE IF NOT EXISTS "{partition_name(day)}" PARTITION OF "{PARENT}" '
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
        try:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute(sql)
        except DatabaseError as exc:  # created by another process between our list and our CREATE
            if day not in set(partitions_list()):
                raise
            log.info("position partition %s created concurrently (%s)", day, exc)
            continue
        created.append(day)
    return created


def partitions_drop(*, before: date) -> list[date]:
    """DROP every partition of a day before `before`; returns the days dropped."""
    dropped = []
    for day in partitions_list():
        if day < before:
            with connection.cursor() as cur:
                cur.execute(f'DROP TABLE IF EXISTS "{partition_name(day)}"')
            dropped.append(day)
    return dropped


@dataclass(frozen=True)
class PartitionReport:
    created: list[date]
    dropped: list[date]


def partitions_maintain(
    *, today: date | None = None, ahead: int | None = None, keep_days: int | None = None
) -> PartitionReport:
    """Partitions for today … today + `ahead`; partitions of days older than `keep_days` (before
    today − keep_days) dropped. Idempotent: a second run creates and drops nothing."""
    today = today or today_local()
    ahead = partitions_ahead() if ahead is None else ahead
    keep_days = retention_days() if keep_days is None else keep_days
    created = partitions_create(today + timedelta(days=n) for n in range(ahead + 1))
    dropped = partitions_drop(before=today - timedelta(days=keep_days))
    return PartitionReport(created=created, dropped=dropped)


@dataclass(frozen=True)
class Fix:
    """One position as a device reported it. Units: degrees (WGS-84), m/s, degrees from north, metres, %."""

    lon: float
    lat: float
    at: datetime
    speed: float | None = None
    course: float | None = None
    altitude: float | None = None
    accuracy: float | None = None
    battery: float | None = None


_INSERT = """
INSERT INTO realtime_position
    (device_id, at, received_at, user_id, team_id, point, speed, course, altitude, accuracy, battery)
SELECT f.device, f.at, %(now)s, f.usr, f.team, ST_SetSRID(ST_MakePoint(f.lon, f.lat), 4326),
    f.speed, f.course, f.altitude, f.accuracy, f.battery
FROM unnest(%(device)s::bigint[], %(user)s::bigint[], %(team)s::bigint[], %(at)s::timestamptz[],
    %(lon)s::float8[], %(lat)s::float8[], %(speed)s::float8[], %(course)s::float8[], %(altitude)s::float8[],
    %(accuracy)s::float8[], %(battery)s::float8[])
    AS f(device, usr, team, at, lon, lat, speed, course, altitude, accuracy, battery)
ON CONFLICT (device_id, at) DO NOTHING
"""


@dataclass(frozen=True)
class DeviceFix:
    """A fix and whose it is: the device, its user and the user's team (stored on the history row)."""

    device_id: int
    user_id: int
    team_id: int | None
    fix: Fix


def positions_append(*, device_id: int, user_id: int, team_id: int | None, fixes: Sequence[Fix]) -> int:
    """Append `fixes` of one device to the history (validated by the caller); returns the rows stored."""
    return positions_append_many(
        rows=[DeviceFix(device_id=device_id, user_id=user_id, team_id=team_id, fix=f) for f in fixes]
    )


def positions_append_many(*, rows: Sequence[DeviceFix]) -> int:
    """Append the fixes of any number of devices to the history (validated by the caller) in one INSERT, and
    set their devices' `last_seen_at` in one UPDATE; returns the rows stored. Fixes older than the retention
    are skipped; a day without a partition gets one. Runs in the caller's
    transaction (a savepoint of its own)."""
    now = timezone.now()
    oldest = _day_start(today_local() - timedelta(days=retention_days()))
    rows = [r for r in rows if r.fix.at >= oldest]
    if not rows:
        return 0
    stored = 0
    params = {
        "now": now,
        "device": [r.device_id for r in rows],
        "user": [r.user_id for r in rows],
        "team": [r.team_id for r in rows],
        **{name: [getattr(r.fix, name) for r in rows] for name in Fix.__dataclass_fields__},
    }
    for attempt in (1, 2):
        try:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute(_INSERT, params)
                stored = cur.rowcount
            break
        except IntegrityError as exc:  # 23514: no partition of relation found for row
            if attempt == 2 or getattr(exc.__cause__, "sqlstate", None) != "23514":
                raise
            partitions_create({day_of(r.fix.at) for r in rows})
    with connection.cursor() as cur:
        seen = sorted({r.device_id for r in rows})
        cur.execute("UPDATE realtime_device SET last_seen_at = %s WHERE id = ANY(%s)", [now, seen])
    return stored


_PHONE_UPSERT = """
INSERT INTO realtime_device (user_id, kind, identifier, active, last_seen_at, created_at)
VALUES (%(user)s, 'phone', %(identifier)s, true, %(now)s, %(now)s)
ON CONFLICT (identifier) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at
RETURNING id, active
"""


def phone_identifier(user_id: int) -> str:
    return f"phone:{user_id}"


def phone_position_append(*, user_id: int, team_id: int | None, fix: Fix) -> int:
    """A fix from a user's phone (the WebSocket `position` op, `POST /realtime/position/`): its Device is
    registered on first use (`phone:<user id>`); a phone an administrator deactivated keeps no history."""
    with connection.cursor() as cur:
        cur.execute(_PHONE_UPSERT, {"user": user_id, "identifier": phone_identifier(user_id), "now": timezone.now()})
        device_id, active = cur.fetchone()
    if not active:
        return 0
    return positions_append(device_id=device_id, user_id=user_id, team_id=team_id, fixes=[fix])
