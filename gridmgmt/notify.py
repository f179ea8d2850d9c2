"""Who is told of what: the inbox rules, kept as data, and the one place notifications are written and read.

`RULES` maps a case event type to the kind of notification it gives and who receives it:

- `team`: the members of the case's team at the event (`CaseEvent.team_id_copy`);
- `area_roles`: the active users of these roles that have the case's area in scope by the access gate's area
  rule (`gridmgmt.access.area_filter`: a user bound to the case's district, street or community, or to the
  city above the district; staff bound to no area, and superusers, see every case);
- `level_supervisors`: the supervisors of the new level, exactly as `gridmgmt.escalation.level_supervisors`
  decides (属地兜底 included);
- `urged_party`: the party a 督办 (urge) pressed, as its event recorded it (`gridmgmt.events.urged_data`): the
  members of the case's team when a team held it (dispatched, handling), else the dispatchers (role dispatcher)
  of the case's area;
- `urger`: who wrote the urge an answer answers (`gridmgmt.events.urge_answered_data`);
- `from_team`: the members of the team a case was taken from (`gridmgmt.events.recalled_data`), whose phones
  would otherwise keep a task that is no longer theirs.

The actor of an event is never told of their own action. `events_write` calls `notifications_write` in the
writer's transaction: one INSERT … SELECT … ON CONFLICT DO NOTHING per batch of events, whatever the number
of recipients, so notifications commit (or roll back) with their event, and a rule that fires again on a
retried or replayed event stores nothing twice (unique user, event, kind). Each stored notification also
writes one `notification.created` feed row in scope `user:<id>` (realtime/PROTOCOL.md), with the user's
unread count, so every open face of that user hears of it after commit. The same transaction writes the
messages that go out by e-mail, SMS or group robot (gridmgmt.outbox: the user's channels and quiet hours).

Cameras gone offline tell the centre too, though no case is concerned: `cameras_offline_notify`, called where
cameras change status (realtime.services), writes one notification per person per pass with no case or event.

Titles and texts are written in the recipient's terms ("your team", "please accept"), in the site language.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q
from django.http import Http404
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from geo.models import AdminArea
from gridmgmt import access, metrics
from gridmgmt.models import Case, CaseEvent, Notification, PatrolTeam, User
from gridmgmt.outbox import Stored, notification_deliveries_write
from realtime.feed import FeedRow, feed_rows_write

E = CaseEvent.Type
K = Notification.Kind
FEED_TYPE = "notification.created"


@dataclass(frozen=True)
class Rule:
    kind: str
    team: bool = False
    area_roles: frozenset[str] = frozenset()
    level_supervisors: bool = False
    urged_party: bool = False
    urger: bool = False
    from_team: bool = False


URGED_DISPATCHER_ROLES = frozenset({User.Role.DISPATCHER})  # an urge not on a team presses the area's dispatchers

# event type → (kind, who is told). Arbitration (审定) and reassignment (改派) assign a team like a dispatch does.
RULES: dict[str, Rule] = {
    E.DISPATCHED: Rule(K.DISPATCHED, team=True),
    E.ARBITRATED: Rule(K.DISPATCHED, team=True),
    E.REASSIGNED: Rule(K.DISPATCHED, team=True),  # 改派: the new team is told like any dispatch
    E.SENT_BACK: Rule(K.SENT_BACK, area_roles=access.DISPATCHERS),
    E.ESCALATED: Rule(K.ESCALATED, level_supervisors=True),
    E.EXTENSION_REQUESTED: Rule(K.EXTENSION_REQUESTED, area_roles=frozenset({User.Role.SHIFT_LEADER})),
    E.REOPENED: Rule(K.REOPENED, team=True, area_roles=frozenset({User.Role.INSPECTOR})),
    E.URGED: Rule(K.URGED, urged_party=True),
    E.URGE_ANSWERED: Rule(K.URGE_ANSWERED, urger=True),
    E.RECALLED: Rule(K.RECALLED, from_team=True),
}


def notification_words(*, kind: str, event: CaseEvent, env: dict) -> tuple[str, str]:
    """(title, text) of a notification of `kind` about `event`; `env` is the event's feed envelope (the case
    right after the event, with its category and team names)."""
    code, what = env["code"], f"{env['category_name']} · {env['address'] or ''}".rstrip(" ·")
    note = (event.note or "")[:200]
    if kind == K.DISPATCHED:
        return _("新任务 %(code)s") % {"code": code}, _("%(what)s:已派遣给你的队伍%(team)s,请签收") % {
            "what": what,
            "team": env["team_name"] or "",
        }
    if kind == K.SENT_BACK:
        return _("退单 %(code)s") % {"code": code}, _("%(team)s 退回了案件(%(what)s),请重新派遣。%(note)s") % {
            "team": env["team_name"] or event.data.get("team") or "",  # the case has no team any more: its code
            "what": what,
            "note": note,
        }
    if kind == K.ESCALATED:
        level = Case.Level(event.data.get("level", env["level"])).label
        return _("%(code)s 已升级至%(level)s督办") % {"code": code, "level": level}, _(
            "%(what)s:超过处置时限,请督办"
        ) % {"what": what}
    if kind == K.EXTENSION_REQUESTED:
        return _("延时申请 %(code)s") % {"code": code}, _("%(team)s申请延时 %(hours)s 小时:%(note)s") % {
            "team": env["team_name"] or "",
            "hours": event.data.get("hours", ""),
            "note": note,
        }
    if kind == K.URGED:
        return _("督办 %(code)s") % {"code": code}, _("%(what)s:指挥中心督办,请抓紧办理。%(note)s") % {
            "what": what,
            "note": note,
        }
    if kind == K.URGE_ANSWERED:
        return _("督办已回复 %(code)s") % {"code": code}, _("%(what)s:%(note)s") % {"what": what, "note": note}
    if kind == K.RECALLED:
        return _("任务已撤回 %(code)s") % {"code": code}, _("%(what)s:指挥中心已收回此任务,无需再处置。%(note)s") % {
            "what": what,
            "note": note,
        }
    return _("%(code)s 被重新打开") % {"code": code}, _("%(what)s:%(note)s") % {"what": what, "note": note}


_INSERT = """
WITH t AS (
    SELECT * FROM unnest(
        %(event)s::bigint[], %(case)s::bigint[], %(kind)s::text[], %(title)s::text[], %(text)s::text[],
        %(at)s::timestamptz[], %(actor)s::bigint[], %(to_user)s::bigint[], %(team)s::bigint[], %(roles)s::text[],
        %(district)s::bigint[], %(street)s::bigint[], %(community)s::bigint[]
    ) AS t(event_id, case_id, kind, title, text, at, actor_id, to_user, team_id, roles, district_id, street_id,
           community_id)
), recipients AS (
    SELECT u.id AS user_id, t.event_id, t.case_id, t.kind, t.title, t.text, t.at, t.actor_id
    FROM t JOIN gridmgmt_user u ON u.id = t.to_user
    UNION ALL
    SELECT u.id, t.event_id, t.case_id, t.kind, t.title, t.text, t.at, t.actor_id
    FROM t JOIN gridmgmt_user u ON u.team_id = t.team_id
    UNION ALL
    SELECT u.id, t.event_id, t.case_id, t.kind, t.title, t.text, t.at, t.actor_id
    FROM t JOIN gridmgmt_user u
      ON (u.role = ANY (string_to_array(t.roles, ',')) OR u.is_superuser)
     AND (u.area_id IS NULL OR u.area_id IN (t.district_id, t.street_id, t.community_id)
          OR u.area_id = (SELECT a.parent_id FROM geo_adminarea a WHERE a.id = t.district_id))
    WHERE t.roles IS NOT NULL
), ins AS (
    INSERT INTO gridmgmt_notification (user_id, case_id, event_id, kind, title, text, created_at)
    SELECT DISTINCT ON (r.event_id, r.kind, r.user_id) r.user_id, r.case_id, r.event_id, r.kind, r.title, r.text, r.at
    FROM recipients r JOIN gridmgmt_user u ON u.id = r.user_id
    WHERE u.is_active AND r.user_id IS DISTINCT FROM r.actor_id
    ORDER BY r.event_id, r.kind, r.user_id
    ON CONFLICT (user_id, event_id, kind) DO NOTHING
    RETURNING id, user_id, case_id, event_id, kind, title, text, created_at
)
SELECT ins.id, ins.user_id, ins.case_id, ins.event_id, ins.kind, ins.title, ins.text, ins.created_at,
       (SELECT count(*) FROM gridmgmt_notification n WHERE n.user_id = ins.user_id AND n.read_at IS NULL)
       + row_number() OVER (PARTITION BY ins.user_id ORDER BY ins.id) AS unread
FROM ins ORDER BY ins.id
"""


def notifications_write(events: Sequence[CaseEvent], envelopes: Sequence[dict]) -> int:
    """Apply RULES to saved `events` (their feed envelopes in the same order), in the caller's transaction:
    one statement stores every notification, then one `notification.created` feed row each; returns how
    many were stored (0 for events already notified)."""
    params: dict[str, list] = {k: [] for k in (
        "event", "case", "kind", "title", "text", "at", "actor", "to_user", "team", "roles", "district", "street",
        "community",
    )}  # fmt: skip
    codes: dict[int, str] = {}

    def add(event: CaseEvent, kind: str, words: tuple[str, str], *, to_user=None, team=None, roles=None) -> None:
        for key, value in (
            ("event", event.id), ("case", event.case_id), ("kind", kind), ("title", words[0][:200]),
            ("text", words[1]), ("at", event.at), ("actor", event.actor_id), ("to_user", to_user), ("team", team),
            ("roles", roles), ("district", event.district_id_copy), ("street", event.street_id_copy),
            ("community", event.community_id_copy),
        ):  # fmt: skip
            params[key].append(value)

    from gridmgmt.events import FROM_TEAM, URGE, URGED_PARTY, URGED_TEAM  # events imports this module

    escalations: list[tuple[CaseEvent, tuple[str, str]]] = []
    said: dict[tuple[int, str], tuple[str, str]] = {}  # (event id, kind) → words, for the outbox
    # The urges answered and the teams recalled from, each looked up once for the batch (and only if any).
    ruled = [(e, RULES[e.type]) for e in events if e.type in RULES]
    urges = [e.data[URGE] for e, rule in ruled if rule.urger and e.data.get(URGE)]
    team_codes = [e.data[FROM_TEAM] for e, rule in ruled if rule.from_team and e.data.get(FROM_TEAM)]
    urgers = dict(CaseEvent.objects.filter(pk__in=urges).values_list("pk", "actor_id")) if urges else {}
    from_teams = dict(PatrolTeam.objects.filter(code__in=team_codes).values_list("code", "pk")) if team_codes else {}
    with translation.override(settings.LANGUAGE_CODE):
        for event, env in zip(events, envelopes, strict=True):
            rule = RULES.get(event.type)
            if rule is None:
                continue
            codes[event.id] = env["code"]
            words = notification_words(kind=rule.kind, event=event, env=env)
            said[(event.id, rule.kind)] = words
            if rule.team and event.team_id_copy is not None:
                add(event, rule.kind, words, team=event.team_id_copy)
            if rule.area_roles:
                add(event, rule.kind, words, roles=",".join(sorted(rule.area_roles)))
            if rule.level_supervisors:
                escalations.append((event, words))
            if rule.urger and urgers.get(event.data.get(URGE)) is not None:
                add(event, rule.kind, words, to_user=urgers[event.data[URGE]])
            if rule.from_team and from_teams.get(event.data.get(FROM_TEAM)) is not None:
                add(event, rule.kind, words, team=from_teams[event.data[FROM_TEAM]])
            if rule.urged_party:
                if event.data.get(URGED_PARTY) == URGED_TEAM and event.team_id_copy is not None:
                    add(event, rule.kind, words, team=event.team_id_copy)
                else:
                    add(event, rule.kind, words, roles=",".join(sorted(URGED_DISPATCHER_ROLES)))
    if escalations:
        from gridmgmt.escalation import level_supervisors  # escalation writes events: imported when used

        targets = [(e.case, int(e.data.get("level", e.case.level))) for e, _w in escalations]
        for (event, words), users in zip(escalations, level_supervisors(targets), strict=True):
            for user_id in users:
                add(event, K.ESCALATED, words, to_user=user_id)
    if not params["event"]:
        return 0
    with connection.cursor() as cur:
        cur.execute(_INSERT, params)
        stored = cur.fetchall()
    if stored:
        _feed_rows(
            [
                (pk, user_id, kind, case_id, codes[event_id], title, text, created_at, unread)
                for pk, user_id, case_id, event_id, kind, title, text, created_at, unread in stored
            ]
        )
        by_id = {e.id: e for e in events}
        notification_deliveries_write(
            [
                Stored(pk, user_id, by_id[event_id], kind, title, said[(event_id, kind)][1])
                for pk, user_id, _case_id, event_id, kind, title, _text, _at, _unread in stored
            ]
        )
    return len(stored)


def _feed_rows(rows: list[tuple]) -> None:
    """One `notification.created` feed row per stored notification, in its user's scope (realtime/PROTOCOL.md);
    `rows`: (id, user id, kind, case id or None, case code or None, title, text, created at, unread count). The
    users' open faces are woken after commit."""
    feed_rows_write(
        [
            FeedRow(
                type=FEED_TYPE,
                at=created_at,
                user_id=user_id,
                data={
                    "id": pk,
                    "kind": kind,
                    "case_id": case_id,
                    "code": code,
                    "title": title,
                    "text": text,
                    "created_at": created_at.isoformat(),
                    "unread": unread,
                },
            )
            for pk, user_id, kind, case_id, code, title, text, created_at, unread in rows
        ]
    )
    keys = sorted({f"user:{row[1]}" for row in rows})
    transaction.on_commit(lambda: _wake(keys))


def _wake(keys: list[str]) -> None:
    from realtime.services import feed_notify  # the realtime side depends on gridmgmt, not the reverse

    feed_notify(keys=keys)


def notifications_replay(*, event_ids: Sequence[int]) -> int:
    """Run the rules again over stored events (after a failed delivery, or to backfill): only what is
    missing is added. Returns how many notifications were stored."""
    from gridmgmt.events import case_envelopes  # events imports this module

    events = list(CaseEvent.objects.filter(pk__in=event_ids, type__in=list(RULES)).select_related("case"))
    with transaction.atomic():
        return notifications_write(events, case_envelopes(events))


# --- notifications about no case: cameras gone offline ---------------------------------------------------------

CAMERA_WATCHERS = frozenset({User.Role.DISPATCHER, User.Role.SHIFT_LEADER})  # told when cameras go offline
CAMERAS_LISTED = 20  # a notice names at most this many cameras, then "…等 N 个"


@dataclass(frozen=True)
class CameraGone:
    """A camera that has just gone offline, with the area ids of its cell (as its feed row carries them)."""

    code: str
    name: str
    district_id: int | None
    street_id: int | None
    community_id: int | None


def _cameras_words(cameras: Sequence[CameraGone], *, timeout: bool) -> tuple[str, str]:
    shown = "、".join(f"{c.code} {c.name}".strip() for c in cameras[:CAMERAS_LISTED])
    if len(cameras) > CAMERAS_LISTED:
        shown = _("%(shown)s 等 %(n)s 个") % {"shown": shown, "n": len(cameras)}
    title = _("%(n)s 个摄像头离线") % {"n": len(cameras)}
    if timeout:
        return title, _("%(cameras)s:超过规定时间没有心跳,已标记离线,请检查设备或视频平台。") % {"cameras": shown}
    return title, _("%(cameras)s:视频平台报告离线,请检查设备。") % {"cameras": shown}


def cameras_offline_notify(*, cameras: Sequence[CameraGone], at, timeout: bool) -> int:
    """Tell the centre of cameras that have just gone offline together (one timeout pass, one heartbeat), in the
    caller's transaction: each active dispatcher and shift leader (CAMERA_WATCHERS) with one of the cameras in
    their area — by the access gate's area rule, as for a case (district, street or community of the camera's
    cell, or the city above; bound to no area: every camera) — gets ONE notification naming the cameras of their
    area, with its feed row and its deliveries (gridmgmt.outbox, like any other kind). It has no case and no
    event. The caller writes it once per status change, so a second pass, which changes nothing, tells nobody.
    Returns how many notifications were stored."""
    if not cameras:
        return 0
    districts = {c.district_id for c in cameras} - {None}
    parents = dict(AdminArea.objects.filter(pk__in=districts).exclude(parent=None).values_list("id", "parent_id"))
    areas = {a for c in cameras for a in (c.district_id, c.street_id, c.community_id)} - {None}
    watchers = list(
        User.objects.filter(is_active=True, role__in=list(CAMERA_WATCHERS))
        .filter(Q(area__isnull=True) | Q(area_id__in=areas | set(parents.values())))
        .order_by("id")
        .only("id", "area_id")
    )
    rows: list[Notification] = []
    words: list[tuple[str, str]] = []
    with translation.override(settings.LANGUAGE_CODE):
        for user in watchers:
            mine = [
                c
                for c in cameras
                if user.area_id is None
                or user.area_id in (c.district_id, c.street_id, c.community_id, parents.get(c.district_id))
            ]
            if not mine:
                continue
            title, text = _cameras_words(mine, timeout=timeout)
            words.append((title, text))
            rows.append(
                Notification(user_id=user.id, kind=K.CAMERAS_OFFLINE, title=title[:200], text=text, created_at=at)
            )
    if not rows:
        return 0
    Notification.objects.bulk_create(rows)
    unread = dict(
        Notification.objects.filter(user__in=[n.user_id for n in rows], read_at__isnull=True)
        .values("user")
        .annotate(n=Count("id"))
        .values_list("user", "n")
    )
    _feed_rows(
        [(n.id, n.user_id, n.kind, None, None, n.title, n.text, n.created_at, unread.get(n.user_id, 1)) for n in rows]
    )
    notification_deliveries_write(
        [Stored(n.id, n.user_id, None, n.kind, n.title, text, at=at) for n, (_t, text) in zip(rows, words, strict=True)]
    )
    stored = len(rows)
    transaction.on_commit(lambda: metrics.events_count(types=(), report_sources=(), notifications=stored))
    return stored


# --- reads and marks for the inbox API ---------------------------------------------------------------------


def notifications_of(*, user: User):
    """The user's own notifications, newest first, with the case code."""
    return (
        Notification.objects.filter(user=user)
        .select_related("case")
        .only("id", "kind", "title", "text", "created_at", "read_at", "case__id", "case__code", "event_id")
    )


def unread_count(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notification_read(*, user: User, notification_id: int) -> Notification:
    """Mark one of the user's notifications read (again: no change). Another user's looks like none (404)."""
    now = timezone.now()
    Notification.objects.filter(pk=notification_id, user=user, read_at__isnull=True).update(read_at=now)
    try:
        return notifications_of(user=user).get(pk=notification_id)
    except Notification.DoesNotExist:
        raise Http404("通知不存在 (notification not found)") from None


def notifications_read_all(*, user: User) -> int:
    """Mark every unread notification of the user read; returns how many."""
    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())
