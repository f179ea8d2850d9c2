"""The one WebSocket endpoint, /ws/feed/: parse, authorise, hand over to the hub. Protocol: PROTOCOL.md."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from importlib import import_module
from types import SimpleNamespace

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib import auth
from django.utils import timezone
from django.utils.translation import gettext as _

from gridmgmt import metrics
from gridmgmt.datetimes import datetime_parse
from gridmgmt.errors import DomainError, InvalidInput
from gridmgmt.models import User
from realtime import conf
from realtime.hub import frame, hub
from realtime.scopes import Scope, scope_allowed, scope_parse
from realtime.services import team_position_report

# Close codes (4000–4999 are ours; 1008/1009 are the standard policy/size ones).
CLOSE_TOO_BIG = 1009
CLOSE_POLICY = 1008
CLOSE_TOO_SLOW = 4008
CLOSE_SESSION_ENDED = 4003  # logged out, password changed, account deactivated: reconnecting gets a 403
SEQ_MAX = 2**63 - 1  # seq is a bigint

log = logging.getLogger(__name__)


def _grants(user: User) -> tuple:
    """What the scopes a user may hold depend on: when none of it changed, the held scopes still hold."""
    return (user.is_active, user.role, user.area_id, user.team_id, user.is_staff, user.is_superuser)


def user_current(*, user: User, session_key: str | None) -> User | None:
    """The user a socket opened by `user` may still act as, read again: None once the session is gone (logout,
    expiry, flush), its auth hash no longer matches (password changed) or the account is inactive. Without a
    session (in-process tests), the account is read again by id."""
    if session_key is None:
        current = User.objects.filter(pk=user.pk).first()
        return current if current is not None and current.is_active else None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    current = auth.get_user(SimpleNamespace(session=store))  # Django's own checks: backend, hash, is_active
    if not current.is_authenticated or current.pk != user.pk or not current.is_active:
        return None
    return current


class FeedConsumer(AsyncWebsocketConsumer):
    # No channel-layer channel per socket: the hub receives for the whole process (one message per commit per
    # process, not per socket), and a socket stays up while Redis is down — it is fed by polling the log.
    channel_layer_alias = "realtime.no-layer-per-socket"  # not configured → Channels gives the consumer None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()  # before accept: the handshake is refused with HTTP 403
            return
        self.user = user
        session = self.scope.get("session")
        self.session_key = getattr(session, "session_key", None) if session is not None else None
        self.subs: dict[str, Scope] = {}
        self.inbound: deque[float] = deque()
        self.outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=conf.send_queue_frames())
        self.closing = False
        await self.accept()
        metrics.WS_CONNECTIONS.inc()
        self.tasks = [asyncio.create_task(self._write()), asyncio.create_task(self._beat())]
        self.deliver(frame(t="hello", heartbeat=conf.heartbeat_seconds(), batch_ms=conf.batch_seconds() * 1000))

    # -- outbound: everything goes through one queue, so hub frames and replies keep their order ----------

    def deliver(self, text: str) -> None:
        if self.closing:
            return
        try:
            self.outbox.put_nowait(text)
        except asyncio.QueueFull:  # a socket that cannot keep up is closed; it reconnects and catches up
            self._close_soon(CLOSE_TOO_SLOW, "too slow")

    async def _write(self) -> None:
        while True:
            text = await self.outbox.get()
            await self.send(text_data=text)
            metrics.WS_FRAMES.inc()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(conf.heartbeat_seconds())
            try:
                if not await self._recheck():
                    return
            except Exception:  # the database is away: keep the socket, check again at the next beat
                log.exception("realtime: re-checking a socket's session failed")
            self.deliver(frame(t="hb", at=timezone.now().isoformat()))

    async def _recheck(self) -> bool:
        """Every heartbeat: the session, the account and what it may see, read again. A socket whose session
        ended is closed (so a logout stops the stream within one heartbeat); a scope the user may no longer
        hold is dropped with a `not_found` error, as if it were refused at subscribe time."""
        current = await database_sync_to_async(user_current)(user=self.user, session_key=self.session_key)
        if current is None:
            self._close_soon(CLOSE_SESSION_ENDED, "session ended")
            return False
        changed = _grants(current) != _grants(self.user)
        self.user = current
        if changed:
            for key, scope in list(self.subs.items()):
                if not await database_sync_to_async(scope_allowed)(user=current, scope=scope):
                    if self.subs.pop(key, None) is not None:
                        hub.leave(self, scope)
                    self._error("not_found", _("订阅范围不存在或无权查看"), scope=key)
        return True

    def _close_soon(self, code: int, reason: str) -> None:
        if not self.closing:
            self.closing = True
            self._leave_all()
            asyncio.get_running_loop().create_task(self.close(code=code, reason=reason))

    def _leave_all(self) -> None:
        for scope in self.subs.values():
            hub.leave(self, scope)
        self.subs = {}

    async def disconnect(self, code) -> None:
        if not hasattr(self, "subs"):
            return
        self.closing = True
        metrics.WS_CONNECTIONS.dec()
        self._leave_all()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(BaseException):
                await task

    # -- inbound --------------------------------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if self.closing:
            return
        size = len(text_data.encode("utf-8", "surrogatepass")) if text_data is not None else len(bytes_data or b"")
        if size > conf.max_frame_bytes():
            self._close_soon(CLOSE_TOO_BIG, "frame too large")
            return
        now = time.monotonic()
        self.inbound.append(now)
        while self.inbound and self.inbound[0] <= now - 1:
            self.inbound.popleft()
        if len(self.inbound) > conf.max_inbound_per_second():
            self._close_soon(CLOSE_POLICY, "too many messages")
            return
        try:
            message = json.loads(text_data) if text_data is not None else None
        except (ValueError, RecursionError):  # not JSON, an integer of 5,000 digits, [[[[… nested too deep
            message = None
        if not isinstance(message, dict):
            self._error("bad_message", _("消息必须是 JSON 对象"))
            return
        op = message.get("op")
        handler = {
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "position": self._position,
            "ping": self._ping,
        }.get(op if isinstance(op, str) else "")  # {"op": []} is unhashable
        if handler is None:
            self._error("bad_op", _("未知操作: %(op)s") % {"op": str(op)[:40]})
            return
        scope = message.get("scope")
        scope = str(scope)[:40] if isinstance(scope, str) and scope else None
        try:
            await handler(message)
        except DomainError as exc:
            self._error(exc.code, str(exc.message), ref=message.get("ref"), scope=scope)
        except Exception:  # never a dead consumer with its memberships left behind: log it, answer, go on
            log.exception("realtime: %s frame failed", str(op)[:40])
            self._error("bad_message", _("无法处理的消息"), ref=message.get("ref"), scope=scope)

    def _error(self, code: str, message: str, **extra) -> None:
        self.deliver(frame(t="error", code=code, message=message, **{k: v for k, v in extra.items() if v}))

    async def _subscribe(self, message: dict) -> None:
        scope = scope_parse(text=message.get("scope"))
        last = message.get("last")
        if last is not None and (not isinstance(last, int) or isinstance(last, bool) or not 0 <= last <= SEQ_MAX):
            self._error("bad_seq", _("last 必须是非负整数或 null"), scope=scope.key)
            return
        if not await database_sync_to_async(scope_allowed)(user=self.user, scope=scope):
            self._error("not_found", _("订阅范围不存在或无权查看"), scope=scope.key)
            return
        if message.get("replace"):
            self._leave_all()
        if scope.key in self.subs:
            hub.leave(self, scope)  # re-subscribing restarts from the given seq
        elif len(self.subs) >= conf.max_scopes():
            message = _("每个连接最多订阅 %(n)d 个范围") % {"n": conf.max_scopes()}
            self._error("too_many_scopes", message, scope=scope.key)
            return
        self.subs[scope.key] = scope
        hub.join(self, scope, last)

    async def _unsubscribe(self, message: dict) -> None:
        scope = scope_parse(text=message.get("scope"))
        if self.subs.pop(scope.key, None) is not None:
            hub.leave(self, scope)
        self.deliver(frame(t="unsubscribed", scope=scope.key))

    async def _position(self, message: dict) -> None:
        if message.get("at") is not None and not isinstance(message["at"], str):
            raise InvalidInput(_("at 须为 ISO 8601 日期时间字符串"), field="at", code="bad_datetime")
        at = datetime_parse(message.get("at"), field="at", naive="refuse")  # garbage is an error, never "now"
        stored = await database_sync_to_async(team_position_report)(
            actor=self.user, lon=message.get("lon"), lat=message.get("lat"), at=at
        )
        self.deliver(frame(t="position", stored=stored, ref=message.get("ref")))

    async def _ping(self, message: dict) -> None:
        self.deliver(frame(t="pong", ref=message.get("ref")))
