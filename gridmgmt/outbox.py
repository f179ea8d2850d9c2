"""The outbox: which message goes out on which channel, written with its event; and the pass that sends them.

Writing (in the case write's transaction, called by `gridmgmt.events.events_write` and `gridmgmt.notify`):

- **A person's notification** (gridmgmt.notify's RULES) goes, besides the inbox, to the channels of the person's
  preference for its kind (`NotifyPreference` of the user, else of their team, field by field), else to
  settings.NOTIFY_DEFAULT_CHANNELS — in every case only to channels the operator configured
  (`senders.channels_configured`) and where the person has an address (e-mail, phone). With no channel
  configured everything stays in-app.
- **Group robots** (`Robot`, set up in the admin): an escalation goes to the robots of the new level's area
  (community, street or district of the case — that area's own robots, no fallback upwards); an area robot
  that lists other kinds gets those for cases in its area, a team robot the kinds it lists (default: new
  tasks) for its team's cases.
- **The reporter** who left a phone number gets an SMS when the case is filed, closed (with the public tracking
  link, settings.PUBLIC_BASE_URL, carrying a token of its own — gridmgmt.tokens — with which the reporter rates
  the case from the phone) and reopened — only with SMS configured and settings.NOTIFY_REPORTER_SMS.
  The text holds only what the public view shows (gridmgmt.access): the case code, the category's public
  name (none for a sensitive category) and the state.
- **Quiet hours**: a message written inside the recipient's quiet hours waits until they end (`next_at`);
  escalations to supervisors do not wait — an overdue case is what supervisors are on call for (a documented
  choice). Residents' quiet hours are settings.NOTIFY_REPORTER_QUIET; robots post to a group at once.

Each message is one `Delivery` row, unique per (event, kind, channel, target) and inserted with ON CONFLICT DO
NOTHING, so a retried or replayed event writes nothing twice. The rows are written in a savepoint: a fault in
these rules is logged and never fails the case write.

Sending (`deliveries_send`, run by `manage.py deliveries_send [--loop]` and on every `cases_escalate` pass):
due rows are claimed with SELECT … FOR UPDATE SKIP LOCKED and leased (`next_at` moved LEASE ahead) in one short
transaction, then sent outside any transaction — two senders never take the same row, and a sender that dies
mid-send leaves its rows to be retried when the lease ends. Each try is logged (`DeliveryAttempt`: ok, answer
or error, duration). A failed try waits NOTIFY_RETRY_SECONDS × 2^(n-1) (capped by NOTIFY_RETRY_MAX_SECONDS);
after NOTIFY_MAX_ATTEMPTS tries, or at once when retrying cannot help, the row is marked failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dtime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from gridmgmt import access, metrics, senders, tokens
from gridmgmt.models import (
    Case,
    CaseEvent,
    Channel,
    Delivery,
    DeliveryAttempt,
    Notification,
    NotifyPreference,
    Robot,
    User,
)

log = logging.getLogger(__name__)
E, K = CaseEvent.Type, Notification.Kind
LEASE = timedelta(minutes=5)  # longer than any one send (timeouts are seconds)
BATCH = 100

# The reporter's SMS: event type → delivery kind.
REPORTER_KINDS = {E.FILED: "reporter_filed", E.CLOSED: "reporter_closed", E.REOPENED: "reporter_reopened"}
# Kinds a robot gets when it lists none.
ROBOT_DEFAULT_KINDS = {"area": (K.ESCALATED,), "team": (K.DISPATCHED,)}
_LEVEL_AREA = {Case.Level.COMMUNITY: "community_id_copy", Case.Level.STREET: "street_id_copy"}


# --- quiet hours -------------------------------------------------------------------------------------------


def quiet_parse(text: str) -> tuple[dtime, dtime] | None:
    """ "21:00-08:00" → (21:00, 08:00); "" → None."""
    if not text.strip():
        return None
    start, _sep, end = text.partition("-")
    return dtime.fromisoformat(start.strip()), dtime.fromisoformat(end.strip())


def quiet_until(*, at: datetime, quiet_from: dtime | None, quiet_to: dtime | None) -> datetime:
    """When a message written at `at` may go: `at` itself, or the end of the quiet hours it falls in (local time;
    a span past midnight such as 22:00–07:00 is understood)."""
    if quiet_from is None or quiet_to is None or quiet_from == quiet_to:
        return at
    local = timezone.localtime(at)
    now = local.time()
    inside = quiet_from <= now < quiet_to if quiet_from < quiet_to else (now >= quiet_from or now < quiet_to)
    if not inside:
        return at
    end = local.replace(hour=quiet_to.hour, minute=quiet_to.minute, second=0, microsecond=0)
    if end <= local:
        end = timezone.make_aware(datetime.combine(local.date() + timedelta(days=1), quiet_to))
    return end


# --- writing ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """A notification just stored by gridmgmt.notify, with its words. `event` is None for a notification about no
    case (cameras gone offline); `at` is then when it was written."""

    id: int
    user_id: int
    event: CaseEvent | None
    kind: str
    title: str
    text: str
    at: datetime | None = None


def _insert(rows: list[Delivery]) -> None:
    if rows:
        Delivery.objects.bulk_create(rows, ignore_conflicts=True)


def _guarded(fn, *args) -> None:
    """Run a writer in a savepoint: a fault there is logged and never fails the case write around it."""
    try:
        with transaction.atomic():
            fn(*args)
    except Exception:
        log.exception("outbox: %s failed; the case write goes on without these messages", fn.__name__)


def _preferences(users: list[User]) -> tuple[dict[int, NotifyPreference], dict[int, NotifyPreference]]:
    team_ids = {u.team_id for u in users} - {None}
    found = NotifyPreference.objects.filter(Q(user__in=[u.id for u in users]) | Q(team__in=team_ids))
    by_user, by_team = {}, {}
    for p in found:
        (by_user if p.user_id else by_team)[p.user_id or p.team_id] = p
    return by_user, by_team


def user_channels(
    *, user: User, kind: str, own: NotifyPreference | None, team: NotifyPreference | None
) -> list[tuple[str, str]]:
    """(channel, address) pairs a notification of `kind` goes to for `user` besides the inbox."""
    for pref in (own, team):
        if pref is not None and kind in (pref.channels or {}):
            wanted = pref.channels[kind]
            break
    else:
        wanted = settings.NOTIFY_DEFAULT_CHANNELS
    configured = senders.channels_configured()
    addresses = {Channel.EMAIL: user.email.strip(), Channel.SMS: user.phone.strip()}
    return [(c, addresses[c]) for c in Channel.values if c in wanted and c in configured and addresses.get(c)]


def user_quiet(*, own: NotifyPreference | None, team: NotifyPreference | None) -> tuple[dtime | None, dtime | None]:
    for pref in (own, team):
        if pref is not None and pref.quiet_from is not None and pref.quiet_to is not None:
            return pref.quiet_from, pref.quiet_to
    return None, None


def notification_deliveries_write(stored: Sequence[Stored]) -> None:
    """The personal channels' deliveries of notifications just stored (caller's transaction; no query at all
    when no personal channel is configured)."""
    if stored and senders.channels_configured():
        _guarded(_notification_rows_write, stored)


def _notification_rows_write(stored: Sequence[Stored]) -> None:
    found = User.objects.filter(pk__in={s.user_id for s in stored}).only("id", "email", "phone", "team_id")
    users = {u.id: u for u in found}
    by_user, by_team = _preferences(list(users.values()))
    rows = []
    for s in stored:
        user = users[s.user_id]
        own, team = by_user.get(user.id), by_team.get(user.team_id)
        pairs = user_channels(user=user, kind=s.kind, own=own, team=team)
        if not pairs:
            continue
        quiet_from, quiet_to = user_quiet(own=own, team=team)
        at = s.event.at if s.event is not None else s.at
        next_at = at if s.kind == K.ESCALATED else quiet_until(at=at, quiet_from=quiet_from, quiet_to=quiet_to)
        for channel, address in pairs:
            body = s.text if channel == Channel.EMAIL else f"{s.title}:{s.text}"
            rows.append(
                Delivery(
                    event=s.event, case_id=s.event.case_id if s.event else None, notification_id=s.id,
                    user_id=user.id, kind=s.kind, channel=channel, target=address[:254], subject=s.title[:200],
                    body=body, next_at=next_at, created_at=at,
                )
            )  # fmt: skip
    _insert(rows)


def _robots_for(event: CaseEvent, kind: str, robots: list[Robot]) -> list[Robot]:
    level_area = None
    if kind == K.ESCALATED:
        level = int(event.data.get("level", 0))
        level_area = event.district_id_copy if level == Case.Level.DISTRICT else None
        if level in _LEVEL_AREA:
            level_area = getattr(event, _LEVEL_AREA[level])
    case_areas = {event.district_id_copy, event.street_id_copy, event.community_id_copy} - {None}
    chosen = []
    for robot in robots:
        kinds = robot.kinds or ROBOT_DEFAULT_KINDS["area" if robot.area_id else "team"]
        if kind not in kinds:
            continue
        if kind == K.ESCALATED:
            hit = robot.area_id is not None and robot.area_id == level_area
        elif robot.area_id is not None:
            hit = robot.area_id in case_areas
        else:
            hit = robot.team_id is not None and robot.team_id == event.team_id_copy
        if hit:
            chosen.append(robot)
    return chosen


def _reporter_text(*, event: CaseEvent, case: Case, token: str | None = None) -> str:
    """The reporter's SMS about `event`; a "closed" one links to the tracking page with `token` (the SMS's own
    token, gridmgmt.tokens), with which the reporter may rate the case (or say it is not fixed) from the phone."""
    name = "" if case.category.is_sensitive else access.category_public_name(case.category)
    what = _("您反映的问题(编号%(code)s%(name)s)") % {"code": case.code, "name": f",{name}" if name else ""}
    if event.type == E.FILED:
        return what + _("已立案受理,我们将尽快处置。")
    if event.type == E.CLOSED:
        text = what + _("已办结。")
        if settings.PUBLIC_BASE_URL:
            url = f"{settings.PUBLIC_BASE_URL}/report/track/{case.code}" + (f"?token={token}" if token else "")
            text += _("查看结果并评价:%(url)s") % {"url": url}
        return text
    return what + _("已重新打开,我们将再次处置。")


def event_deliveries_write(events: Sequence[CaseEvent], envelopes: Sequence[dict]) -> None:
    """The robots' and the reporter's deliveries of events just stored, with their feed envelopes (caller's
    transaction). A robot's message has the words of the notification gridmgmt.notify's RULES give the event.
    Events no robot or reporter rule can concern cost no query."""
    from gridmgmt.notify import RULES  # notify imports this module

    ruled = [(e, env, RULES[e.type].kind) for e, env in zip(events, envelopes, strict=True) if e.type in RULES]
    reporter = (
        Channel.SMS in senders.channels_configured()
        and settings.NOTIFY_REPORTER_SMS
        and any(e.type in REPORTER_KINDS and (e.case.reporter_phone or "").strip() for e in events)
    )
    if ruled or reporter:
        _guarded(_event_rows_write, events, ruled, reporter)


def _event_rows_write(events: Sequence[CaseEvent], ruled: list, reporter: bool) -> None:
    from gridmgmt.notify import notification_words  # notify imports this module

    rows = []
    if ruled:
        robots = list(Robot.objects.filter(is_active=True))
        for event, env, kind in ruled:
            chosen = _robots_for(event, kind, robots)
            if not chosen:
                continue
            with translation.override(settings.LANGUAGE_CODE):
                title, text = notification_words(kind=kind, event=event, env=env)
            for robot in chosen:
                rows.append(
                    Delivery(
                        event=event, case_id=event.case_id, robot=robot, kind=kind, channel=robot.vendor,
                        target=f"robot:{robot.pk}", subject=title[:200], body=f"{title}\n{text}", next_at=event.at,
                        created_at=event.at,
                    )
                )  # fmt: skip
    if reporter:
        quiet = quiet_parse(settings.NOTIFY_REPORTER_QUIET) or (None, None)
        with translation.override(settings.LANGUAGE_CODE):
            for event in events:
                phone = (event.case.reporter_phone or "").strip()
                if event.type not in REPORTER_KINDS or not phone:
                    continue
                kind = REPORTER_KINDS[event.type]
                token = None
                if event.type == E.CLOSED and settings.PUBLIC_BASE_URL:
                    once = {"event": event, "kind": kind, "channel": Channel.SMS, "target": phone}
                    if Delivery.objects.filter(**once).exists():
                        continue  # written already (a replay): a new token now would void the one that SMS carries
                    token = tokens.sms_token_issue(case=event.case)
                rows.append(
                    Delivery(
                        event=event, case_id=event.case_id, kind=kind, channel=Channel.SMS,
                        target=phone, body=_reporter_text(event=event, case=event.case, token=token),
                        next_at=quiet_until(at=event.at, quiet_from=quiet[0], quiet_to=quiet[1]), created_at=event.at,
                    )
                )  # fmt: skip
    _insert(rows)


# --- sending --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryReport:
    now: datetime
    sent: int
    retried: int
    failed: int

    @property
    def count(self) -> int:
        return self.sent + self.retried + self.failed


def retry_delay(*, attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed try: NOTIFY_RETRY_SECONDS doubled each time, capped."""
    seconds = settings.NOTIFY_RETRY_SECONDS * 2 ** max(0, attempts - 1)
    return timedelta(seconds=min(seconds, settings.NOTIFY_RETRY_MAX_SECONDS))


def delivery_transmit(delivery: Delivery) -> str:
    """Hand one delivery to its channel's sender; returns the answer, raises senders.SendFailed."""
    if delivery.channel == Channel.EMAIL:
        return senders.email_send(to=delivery.target, subject=delivery.subject, body=delivery.body)
    if delivery.channel == Channel.SMS:
        return senders.sms_send(phone=delivery.target, text=delivery.body)
    robot = delivery.robot
    if robot is None or not robot.is_active:
        raise senders.SendRefused("the robot was removed or switched off")
    return senders.robot_send(vendor=robot.vendor, url=robot.webhook_url, secret=robot.secret, text=delivery.body)


def deliveries_claim(*, now: datetime, batch: int = BATCH) -> list[Delivery]:
    """Take up to `batch` due deliveries: locked with SKIP LOCKED (another sender takes others) and leased."""
    with transaction.atomic():
        rows = list(
            Delivery.objects.filter(status=Delivery.Status.PENDING, next_at__lte=now)
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("robot")
            .order_by("next_at", "id")[:batch]
        )
        if rows:
            Delivery.objects.filter(pk__in=[d.pk for d in rows]).update(next_at=now + LEASE)
    return rows


def delivery_send(*, delivery: Delivery, now: datetime) -> str:
    """Try one claimed delivery once and record the try; returns its new status."""
    started = time.monotonic()
    ok, detail, error, give_up = True, "", "", False
    try:
        detail = delivery_transmit(delivery)
    except senders.SendRefused as exc:
        ok, error, give_up = False, str(exc), True
    except senders.SendFailed as exc:
        ok, error = False, str(exc)
    except Exception as exc:  # a bug in a sender must not stop the pass: logged, retried like a failure
        log.exception("delivery %s: unexpected error", delivery.pk)
        ok, error = False, f"{type(exc).__name__}: {exc}"
    duration_ms = round((time.monotonic() - started) * 1000)
    attempts = delivery.attempts + 1
    fields: dict = {"attempts": attempts, "last_error": error[:2000]}
    if ok:
        fields |= {"status": Delivery.Status.SENT, "sent_at": now}
    elif give_up or attempts >= settings.NOTIFY_MAX_ATTEMPTS:
        fields |= {"status": Delivery.Status.FAILED}
    else:
        fields |= {"next_at": now + retry_delay(attempts=attempts)}
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            delivery=delivery, at=now, ok=ok, detail=detail[:200], error=error[:2000], duration_ms=duration_ms
        )
        Delivery.objects.filter(pk=delivery.pk).update(**fields)
    status = fields.get("status", "retry")
    metrics.DELIVERY_ATTEMPTS.labels(channel=delivery.channel, outcome=status).inc()
    log.info("delivery %s %s → %s: %s in %d ms", delivery.pk, delivery.channel, status,
             detail or error, duration_ms)  # fmt: skip
    return fields.get("status", Delivery.Status.PENDING)


def deliveries_send(*, now: datetime | None = None, batch: int = BATCH) -> DeliveryReport:
    """One pass: send every due delivery (up to `batch`), one try each. Never raises for a failed send."""
    now = now or timezone.now()
    counts = {Delivery.Status.SENT: 0, Delivery.Status.PENDING: 0, Delivery.Status.FAILED: 0}
    for delivery in deliveries_claim(now=now, batch=batch):
        counts[delivery_send(delivery=delivery, now=now)] += 1
    return DeliveryReport(
        now=now,
        sent=counts[Delivery.Status.SENT],
        retried=counts[Delivery.Status.PENDING],
        failed=counts[Delivery.Status.FAILED],
    )
