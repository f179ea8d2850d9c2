"""The one WebSocket endpoint, /ws/feed/: parse, authorise, hand over to the hub. Protocol: PROTOCOL.md."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from gridmgmt.errors import DomainError
from realtime import conf
from realtime.hub import frame, hub
from realtime.scopes import Scope, scope_allowed, scope_parse
from realtime.services import team_position_report

# Close codes (4000–4999 are ours; 1008/1009 are the standard policy/size ones).
CLOSE_TOO_BIG = 1009
CLOSE_POLICY = 1008
CLOSE_TOO_SLOW = 4008


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
        self.subs: dict[str, Scope] = {}
        self.inbound: deque[float] = deque()
        self.outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=conf.send_queue_frames())
        self.closing = False
        await self.accept()
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

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(conf.heartbeat_seconds())
            self.deliver(frame(t="hb", at=timezone.now().isoformat()))

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
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
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
        except ValueError:
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
        }.get(op)
        if handler is None:
            self._error("bad_op", _("未知操作: %(op)s") % {"op": str(op)[:40]})
            return
        try:
            await handler(message)
        except DomainError as exc:
            scope = message.get("scope")
            self._error(exc.code, str(exc.message), ref=message.get("ref"), scope=str(scope)[:40] if scope else None)

    def _error(self, code: str, message: str, **extra) -> None:
        self.deliver(frame(t="error", code=code, message=message, **{k: v for k, v in extra.items() if v}))

    async def _subscribe(self, message: dict) -> None:
        scope = scope_parse(text=message.get("scope"))
        last = message.get("last")
        if last is not None and (not isinstance(last, int) or isinstance(last, bool) or last < 0):
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
        at = parse_datetime(message["at"]) if isinstance(message.get("at"), str) else None
        stored = await database_sync_to_async(team_position_report)(
            actor=self.user, lon=message.get("lon"), lat=message.get("lat"), at=at
        )
        self.deliver(frame(t="position", stored=stored, ref=message.get("ref")))

    async def _ping(self, message: dict) -> None:
        self.deliver(frame(t="pong", ref=message.get("ref")))
