"""Writes of the real-time side: team positions and status, camera status, and the after-commit notice.

Each change writes its feed row (realtime.feed) in its own transaction and, once committed, tells every
server process which scopes moved. The notice is a wake-up, not the data: a lost notice (Redis down, full
channel) delays a frame until the next poll of the log, it never loses an event.
"""

import asyncio
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace

from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from geo.coords import lonlat_parse, point_parse
from geo.models import Camera
from gridmgmt import access
from gridmgmt.errors import DomainError, InvalidInput, RoleNotAllowed
from gridmgmt.models import PatrolTeam, User
from gridmgmt.notify import CameraGone, cameras_offline_notify
from realtime import conf, positions
from realtime.feed import FeedRow, camera_status_row, feed_rows_write, team_position_row, team_status_row
from realtime.models import Device, FeedEvent
from realtime.scopes import scope_keys

log = logging.getLogger(__name__)


class UnknownDevice(InvalidInput):
    code = "unknown_device"


NOTIFY_TIMEOUT = 2.0  # seconds; then the notice is dropped (the poll covers it)


class _Notifier:
    """Sends notices from one background thread with its own event loop. A request thread only enqueues
    (never waits on Redis or on the server's busy event loop), and notices pending together go out as one
    group_send — under a burst that is one channel-layer message per batch, not per commit."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.failing = False

    def put(self, keys: list[str], seq: int) -> None:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="realtime-notify", daemon=True)
                self.thread.start()
        self.queue.put((keys, seq))

    def _run(self) -> None:
        # A plain blocking get in this daemon thread (an executor thread would keep the interpreter from exiting).
        loop = asyncio.new_event_loop()
        while True:
            keys, seq = self.queue.get()
            pending = set(keys)
            while True:  # everything queued meanwhile rides along
                try:
                    more, more_seq = self.queue.get_nowait()
                except queue.Empty:
                    break
                pending.update(more)
                seq = max(seq, more_seq)
            loop.run_until_complete(self._send({"type": "rt.notify", "keys": sorted(pending), "seq": seq}))

    async def _send(self, message: dict) -> None:
        try:
            await asyncio.wait_for(get_channel_layer().group_send(conf.notify_group(), message), NOTIFY_TIMEOUT)
            if self.failing:
                log.warning("realtime notices are reaching the channel layer again")
            self.failing = False
        except Exception as exc:  # Redis down: screens get the rows at the next poll; writes are unaffected
            if not self.failing:
                log.warning("realtime notify failed (%s: %s); screens catch up from the log", type(exc).__name__, exc)
            self.failing = True


_notifier = _Notifier()


def feed_notify(*, keys: list[str], seq: int = 0) -> None:
    """Tell every server process that scopes `keys` have new rows. Never raises, never blocks."""
    if keys:
        _notifier.put(keys, seq)


def case_events_published(ids: list[int], *, rows: list[FeedRow], seq: int | None) -> None:
    """events_subscribe hook: runs after the commit of case events `ids`, with their feed rows. One event's
    row came back from its INSERT with its seq (no read: 0.4 ms of CPU and a query per report); the seqs of
    several are read."""
    if seq is None:
        scoped = FeedEvent.objects.filter(case_event_id__in=ids).values_list(
            "seq", "district_id", "street_id", "community_id", "team_id"
        )
    else:
        scoped = [(seq, r.district_id, r.street_id, r.community_id, r.team_id) for r in rows]
    keys: list[str] = []
    top = 0
    for s, district, street, community, team in scoped:
        top = max(top, s)
        keys += scope_keys(district_id=district, street_id=street, community_id=community, team_id=team)
    feed_notify(keys=keys, seq=top)


def _team_keys(team: PatrolTeam) -> list[str]:
    return scope_keys(district_id=team.district_id, street_id=team.street_id, team_id=team.id)


def team_position_report(*, actor: User, lon, lat, at: datetime | None = None, history: bool = True) -> bool:
    """A patrol device reports where its team is. At most one position per team per interval is stored;
    one that comes sooner, or is older than the stored one, is dropped (returns False): the device keeps
    its newest fix and sends it when the interval has passed, so the latest position wins.

    With `history` (the phone's paths) every accepted fix is also appended to the position history of the
    actor's phone (realtime/positions.py), coalesced or not; a tracker appends its own and passes False."""
    if not actor.is_authenticated or actor.team_id is None:
        raise RoleNotAllowed(_("只有巡查队员可以上报队伍位置"))
    point = point_parse(lon, lat)
    now = timezone.now()
    at = min(at or now, now)  # a device clock ahead of ours must not block the next reports
    if at < now - timedelta(hours=1):
        raise InvalidInput(_("位置时间过早"), field="at", code="stale_position")
    with transaction.atomic():
        if history:
            positions.phone_position_append(
                user_id=actor.pk, team_id=actor.team_id, fix=positions.Fix(lon=point.x, lat=point.y, at=at)
            )
        stored = team_positions_store(fixes={actor.team_id: (point.x, point.y, at)})
    return bool(stored)


# One statement for the teams of a batch (bench/positions.py: the ORM's select_for_update + bulk_update took 19 %
# of a worker's samples at 1,000 fixes/s, its CASE-expression resolution alone 9 %). `locked` takes the row locks
# in id order (ORDER BY under FOR UPDATE: rows are locked as the sort returns them), then the stored ones move.
_TEAMS_MOVE = """
WITH f AS (
    SELECT * FROM unnest(%s::bigint[], %s::float8[], %s::float8[], %s::timestamptz[]) AS f(team_id, lon, lat, at)
), locked AS MATERIALIZED (
    SELECT t.id, t.last_position_at FROM gridmgmt_patrolteam t
    WHERE t.id IN (SELECT team_id FROM f) ORDER BY t.id FOR UPDATE
)
UPDATE gridmgmt_patrolteam t
SET last_position = ST_SetSRID(ST_MakePoint(f.lon, f.lat), 4326)::geography, last_position_at = f.at
FROM f JOIN locked l ON l.id = f.team_id
WHERE t.id = f.team_id AND (l.last_position_at IS NULL OR l.last_position_at <= f.at - %s * interval '1 second')
RETURNING t.id, t.code, t.name, t.status, t.district_id, t.street_id, f.lon, f.lat, f.at
"""


def team_positions_store(*, fixes: dict[int, tuple[float, float, datetime]]) -> set[int]:
    """Each team's fix (team id → (lon, lat, at), WGS-84, checked) becomes its stored position when
    RT_POSITION_SECONDS have passed since the stored one (or there is none), with its `team.position` feed row;
    returns the teams stored. Runs in the caller's transaction (it must be in one).

    Two statements whatever the number of teams: the teams locked in id order and the stored ones moved (one
    UPDATE), then their feed rows in one write. Every team lock is taken before the feed's advisory lock (taken
    by the feed row's trigger and held to commit), so two workers' batches over overlapping teams queue instead
    of deadlocking (team by team, a batch holding the feed lock waited for a team the other had locked, which
    waited for the feed lock — seen in bench/positions.py with two workers)."""
    if not fixes:
        return set()
    ids = sorted(fixes)
    with connection.cursor() as cur:
        cur.execute(
            _TEAMS_MOVE,
            [
                ids,
                [fixes[i][0] for i in ids],
                [fixes[i][1] for i in ids],
                [fixes[i][2] for i in ids],
                conf.position_interval_seconds(),
            ],
        )
        moved = [
            (SimpleNamespace(id=i, code=code, name=name, status=status, district_id=d, street_id=s), lon, lat, at)
            for i, code, name, status, d, s, lon, lat, at in cur.fetchall()
        ]
    if not moved:
        return set()
    feed_rows_write([team_position_row(team=t, lon=lon, lat=lat, at=at) for t, lon, lat, at in moved])
    keys = [key for t, *_rest in moved for key in _team_keys(t)]
    transaction.on_commit(lambda: feed_notify(keys=keys))
    return {t.id for t, *_rest in moved}


def tracker_positions_report(*, reports: Sequence[tuple[str, positions.Fix]]) -> list[DomainError | None]:
    """Positions from registered trackers (`/track/osmand`), any number of devices at once: one outcome per
    report, in order — None when accepted, else the error to answer (400). A tracker must be active and belong
    to an active patrol member with a team, else `UnknownDevice` (as Traccar answers); a fix is checked
    (coordinates, not more than POSITION_FUTURE_SECONDS ahead). The accepted fixes are appended to the history
    together (one INSERT, one `last_seen_at` UPDATE, realtime/positions.py) and, per team, the newest one less
    than an hour old is offered to `team_positions_store` (its interval rule decides whether the wall moves),
    all in one transaction: when this returns, every accepted fix is stored."""
    identifiers = {identifier for identifier, _fix in reports}
    # identifier → (device id, user id, team id): three numbers, no model instances (a batch has up to 200)
    devices = {
        identifier: ids
        for identifier, *ids in Device.objects.filter(
            identifier__in=identifiers,
            kind=Device.Kind.TRACKER,
            active=True,
            user__is_active=True,
            user__role=User.Role.PATROL,
            user__team__isnull=False,
        ).values_list("identifier", "pk", "user_id", "user__team_id")
    }
    now = timezone.now()
    ahead, recent = now + timedelta(seconds=positions.future_seconds()), now - timedelta(hours=1)
    outcomes: list[DomainError | None] = []
    rows: list[positions.DeviceFix] = []
    newest: dict[int, tuple[float, float, datetime]] = {}  # team → its newest recent fix in this batch
    for identifier, fix in reports:
        device = devices.get(identifier)
        if device is None:
            outcomes.append(UnknownDevice(_("未登记的定位终端"), field="id"))
            continue
        try:
            lon, lat = lonlat_parse(fix.lon, fix.lat)
        except DomainError as exc:
            outcomes.append(exc)
            continue
        if fix.at > ahead:
            outcomes.append(InvalidInput(_("定位时间晚于当前时间"), field="timestamp", code="future_position"))
            continue
        outcomes.append(None)
        device_id, user_id, team_id = device
        rows.append(positions.DeviceFix(device_id=device_id, user_id=user_id, team_id=team_id, fix=fix))
        # an old fix from a buffer: history only, the team has moved on
        if fix.at >= recent and (team_id not in newest or newest[team_id][2] < fix.at):
            newest[team_id] = (lon, lat, min(fix.at, now))  # a clock ahead of ours must not block the next
    if rows:
        with transaction.atomic():
            positions.positions_append_many(rows=rows)
            team_positions_store(fixes=newest)
    return outcomes


def team_status_set(*, actor: User, team_id: int, status: str) -> PatrolTeam:
    """在岗/处置中/离岗: a patrol member for their own team, dispatch staff for the teams they see."""
    if status not in PatrolTeam.Status.values:
        raise InvalidInput(_("未知的队伍状态: %(s)s") % {"s": status}, field="status")
    if access.role_effective(actor) not in access.FIELD_ROLES | access.DISPATCHERS:
        raise RoleNotAllowed(_("该角色不能修改队伍状态"))
    with transaction.atomic():
        team = access.teams_visible(user=actor).select_for_update().filter(pk=team_id).first()
        if team is None:
            raise InvalidInput(_("队伍不存在"), field="team", code="unknown_team")
        if team.status != status:
            from_status, team.status = team.status, status
            team.save(update_fields=["status"])
            feed_rows_write([team_status_row(team=team, from_status=from_status, at=timezone.now())])
            transaction.on_commit(lambda: feed_notify(keys=_team_keys(team)))
    return team


def _camera_row(**kwargs):
    """`camera.status` with `online`: screens colour the marker by it, never by a status list of their own."""
    row = camera_status_row(**kwargs)
    row.data["online"] = row.data["status"] == Camera.Status.ONLINE
    return row


def camera_status_set(
    *, camera_id: int, status: str, seen_at: datetime | None = None, notify: bool = True
) -> CameraGone | None:
    """A video platform reports a camera online/offline (the intake authenticates the platform). Returns the
    camera as `CameraGone` when this call turned it offline, else None. With `notify` (the default) the centre is
    told of it (gridmgmt.notify.cameras_offline_notify); a caller changing several cameras at once (a heartbeat)
    passes False and tells of them together."""
    if status not in Camera.Status.values:
        raise InvalidInput(_("未知的摄像头状态: %(s)s") % {"s": status}, field="status")
    with transaction.atomic():
        camera = Camera.objects.select_for_update(of=("self",)).select_related("cell").filter(pk=camera_id).first()
        if camera is None:
            raise InvalidInput(_("摄像头不存在"), field="camera", code="unknown_camera")
        from_status = camera.status
        changed = from_status != status
        camera.status = status
        if status == Camera.Status.ONLINE:
            camera.last_seen_at = seen_at or timezone.now()
        camera.save(update_fields=["status", "last_seen_at"])
        gone = None
        if changed:
            cell = camera.cell
            ids = {
                "district_id": camera.district_id or (cell.district_id if cell else None),
                "street_id": cell.street_id if cell else None,
                "community_id": cell.community_id if cell else None,
            }
            now = timezone.now()
            feed_rows_write([_camera_row(camera=camera, from_status=from_status, at=now, **ids)])
            keys = scope_keys(**ids)
            transaction.on_commit(lambda: feed_notify(keys=keys))
            if status == Camera.Status.OFFLINE:
                gone = CameraGone(code=camera.code, name=camera.name, **ids)
                if notify:
                    cameras_offline_notify(cameras=[gone], at=now, timeout=False)
    return gone


@dataclass(frozen=True)
class CameraTimeoutReport:
    now: datetime
    offline: list[str]  # codes of the cameras this run marked offline


_TIMEOUT_SQL = """
UPDATE geo_camera AS c SET status = %(offline)s
WHERE c.status = %(online)s AND c.last_seen_at IS NOT NULL AND c.last_seen_at < %(cutoff)s
RETURNING c.id, c.code, c.name, ST_X(c.location), ST_Y(c.location),
    coalesce(c.district_id, (SELECT g.district_id FROM geo_gridcell g WHERE g.id = c.cell_id)),
    (SELECT g.street_id FROM geo_gridcell g WHERE g.id = c.cell_id),
    (SELECT g.community_id FROM geo_gridcell g WHERE g.id = c.cell_id)
"""


def cameras_offline_timeout(*, now: datetime | None = None, after: float | None = None) -> CameraTimeoutReport:
    """Mark offline every online camera whose last heartbeat is older than `after` seconds
    (settings.CAMERA_OFFLINE_AFTER): one UPDATE … RETURNING, then one `camera.status` feed row per camera, in
    the same transaction, with one notification per centre user for the whole pass (gridmgmt.notify). A camera
    never heard from (`last_seen_at` empty) is not watched. A second run finds
    nothing to do; a heartbeat that commits first keeps its camera online (the UPDATE re-checks its row)."""
    now = now or timezone.now()
    after = settings.CAMERA_OFFLINE_AFTER if after is None else after
    if not after or after <= 0:
        return CameraTimeoutReport(now=now, offline=[])
    params = {
        "offline": Camera.Status.OFFLINE.value,
        "online": Camera.Status.ONLINE.value,
        "cutoff": now - timedelta(seconds=after),
    }
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(_TIMEOUT_SQL, params)
            rows = sorted(cur.fetchall(), key=lambda r: r[1])
        feed: list = []
        keys: set[str] = set()
        for camera_id, code, name, lon, lat, district_id, street_id, community_id in rows:
            camera = Camera(id=camera_id, code=code, name=name, status=Camera.Status.OFFLINE, location=Point(lon, lat))
            ids = {"district_id": district_id, "street_id": street_id, "community_id": community_id}
            feed.append(_camera_row(camera=camera, from_status=Camera.Status.ONLINE, at=now, **ids))
            keys.update(scope_keys(**ids))
        feed_rows_write(feed)
        # The centre is told in this transaction, once for the whole pass (one notification per person, naming
        # the cameras of their area): a retried run finds nothing to change and tells nobody again.
        cameras_offline_notify(
            cameras=[
                CameraGone(code=r[1], name=r[2], district_id=r[5], street_id=r[6], community_id=r[7]) for r in rows
            ],
            at=now,
            timeout=True,
        )
        if keys:
            transaction.on_commit(lambda: feed_notify(keys=sorted(keys)))
    return CameraTimeoutReport(now=now, offline=[r[1] for r in rows])
