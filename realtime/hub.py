"""Per-process fan-out. One `ScopeFeed` per scope with local subscribers reads the log, builds one frame
and hands the same string to every local socket of that scope; one channel-layer listener per process
receives the after-commit notices (one message per commit per process, whatever the number of sockets).

Order and completeness come from the log, not from the notices: a feed reads `seq > cursor` in seq
order (seq order is commit order), so a notice that arrives late, twice or never changes only *when* a
frame goes out — at the latest on the next poll (conf.poll_seconds()).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from channels.layers import get_channel_layer
from django.db import connection
from redis.exceptions import TimeoutError as RedisTimeout

from gridmgmt import metrics
from realtime import conf, selectors
from realtime.scopes import Scope

log = logging.getLogger(__name__)
REPLAY_CHUNK = 200  # events per replay frame
GROUP_REFRESH_SECONDS = 600  # re-join the notice group inside the core layer's group expiry (a no-op with pub/sub)


class Member(Protocol):
    def deliver(self, frame: str) -> None: ...


def _read_call(fn, kw: dict):
    try:
        return fn(**kw)
    except Exception:
        connection.close()  # a broken connection (database restarted) is opened afresh by the next read
        raise


def _close() -> None:
    connection.close()  # `connection` is per thread: looked up here, on the reader's thread


class _Reader:
    """The hub's log reads, on one thread of their own that keeps its database connection between reads.
    (Channels' database_sync_to_async closes it after every call, and with CONN_MAX_AGE 0 each read — one per
    scope per interval — would open a new PostgreSQL connection; reads would also queue behind the consumers'
    own database calls on the shared thread.) The connection is closed once the process has no feeds."""

    def __init__(self) -> None:
        self.executor: ThreadPoolExecutor | None = None

    async def __call__(self, fn, /, **kw):
        if self.executor is None:
            self.executor = ThreadPoolExecutor(1, thread_name_prefix="realtime-read")
        return await asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(_read_call, fn, kw))

    def release(self, *, wait: bool = False) -> None:
        """Close the reader's connection (the next read opens one again)."""
        if self.executor is not None:
            done = self.executor.submit(_close)
            if wait:
                done.result()


read = _Reader()


def frame_events(scope: Scope, rows: list[selectors.Row], *, replay: bool = False, kpi: dict | None = None) -> str:
    head = {"t": "events", "scope": scope.key}
    if replay:
        head["replay"] = True
    if kpi is not None:
        head["kpi"] = kpi
    text = json.dumps(head, ensure_ascii=False, separators=(",", ":"))
    return text[:-1] + ',"events":[' + ",".join(r.json for r in rows) + "]}"


def frame(**fields) -> str:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"), default=str)


class ScopeFeed:
    def __init__(self, hub: Hub, scope: Scope):
        self.hub = hub
        self.scope = scope
        self.members: set[Member] = set()
        self.joins: list[tuple[Member, int | None]] = []
        self.cursor: int | None = None  # the last seq every member has been sent
        self.behind = False  # the last read hit batch_max: more rows are waiting
        self.wake = asyncio.Event()
        self.last_frame = 0.0
        self.last_kpi = 0.0
        self.noticed: float | None = None  # when the oldest commit notice not yet delivered arrived
        self.task = asyncio.get_running_loop().create_task(self._run())

    def idle(self) -> bool:
        return not self.members and not self.joins

    async def _run(self) -> None:
        try:
            while not self.idle():
                try:
                    await asyncio.wait_for(self.wake.wait(), conf.poll_seconds())
                except TimeoutError:
                    pass
                # Leading-edge throttle: the first event after a quiet spell goes at once, then ≤ 1 frame/interval.
                pause = self.last_frame + conf.batch_seconds() - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                self.wake.clear()  # whatever was notified until now is covered by the read below
                try:
                    await self._step()
                except Exception:
                    log.exception("realtime feed %s failed; retrying", self.scope.key)
                    await asyncio.sleep(1)
                    self.wake.set()
        finally:
            self.hub.feed_done(self)

    async def _step(self) -> None:
        if self.cursor is None:
            self.cursor = await read(selectors.feed_head, scope=self.scope)
        if self.members:
            rows = await read(selectors.feed_read, scope=self.scope, after=self.cursor, limit=conf.batch_max())
            if rows:
                self.behind = len(rows) == conf.batch_max()
                kpi = await self._kpi() if any(r.type.startswith("case.") for r in rows) else None
                text = frame_events(self.scope, selectors.rows_coalesce(rows), kpi=kpi)
                for member in list(self.members):
                    member.deliver(text)
                if self.noticed is not None:
                    metrics.FEED_DELIVERY.observe(time.monotonic() - self.noticed)
                    self.noticed = None
                self.cursor = rows[-1].seq
                self.last_frame = time.monotonic()
                if self.behind:
                    self.wake.set()
            else:
                self.behind = False
        else:
            # Nobody to send to: jump to the head so new members start from here.
            self.cursor = max(self.cursor, await read(selectors.feed_head, scope=self.scope))
            self.behind = False
        if not self.behind:
            self.noticed = None  # nothing of that notice is left to deliver
        joins, self.joins = self.joins, []
        for member, last in joins:
            if last is not None and last > self.cursor and self.behind:
                self.joins.append((member, last))  # we are still reading up to where that client was
                self.wake.set()
                continue
            await self._admit(member, last)

    async def _kpi(self) -> dict | None:
        if time.monotonic() - self.last_kpi < conf.poll_seconds():
            return None
        self.last_kpi = time.monotonic()
        figures = await read(selectors.kpi_for_scope, scope=self.scope)
        return {"seq": self.cursor, "type": "kpi.updated", "data": figures}

    async def _admit(self, member: Member, last: int | None) -> None:
        """Join a member at the feed's cursor: replay (last, cursor] to it first, or tell it to reload."""
        key, head = self.scope.key, self.cursor
        if last is None or last == head:
            member.deliver(frame(t="subscribed", scope=key, seq=head, replay=0))
            self.members.add(member)
            return
        reason = None
        if last > head:
            reason = "unknown_seq"  # not a seq of this scope's log (wrong scope, or a different database)
        elif last < await read(selectors.feed_floor) - 1:
            reason = "too_old"  # pruned from the log
        rows: list[selectors.Row] = []
        if reason is None:
            rows = await read(selectors.feed_read, scope=self.scope, after=last, upto=head, limit=conf.replay_max() + 1)
            if len(rows) > conf.replay_max():
                reason = "too_many"
        if reason is not None:
            member.deliver(frame(t="reload", scope=key, seq=head, reason=reason))
        else:
            member.deliver(frame(t="subscribed", scope=key, seq=head, replay=len(rows)))
            for i in range(0, len(rows), REPLAY_CHUNK):
                member.deliver(frame_events(self.scope, rows[i : i + REPLAY_CHUNK], replay=True))
        self.members.add(member)


class Hub:
    """The process's scope feeds and its channel-layer listener (started with the first subscription)."""

    def __init__(self) -> None:
        self.feeds: dict[str, ScopeFeed] = {}
        self.listener: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connected = False

    def _ensure_listener(self) -> None:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # a new event loop (tests): start afresh
            self.loop, self.feeds, self.listener = loop, {}, None
            read.release()
        if self.listener is None or self.listener.done():
            self.listener = loop.create_task(self._listen())

    def join(self, member: Member, scope: Scope, last: int | None) -> None:
        self._ensure_listener()
        feed = self.feeds.get(scope.key)
        if feed is None or feed.task.done():
            feed = self.feeds[scope.key] = ScopeFeed(self, scope)
        feed.joins.append((member, last))
        feed.wake.set()

    def leave(self, member: Member, scope: Scope) -> None:
        feed = self.feeds.get(scope.key)
        if feed is not None:
            feed.members.discard(member)
            feed.joins = [(m, last) for m, last in feed.joins if m is not member]
            if feed.idle():
                feed.wake.set()  # let its task end

    def feed_done(self, feed: ScopeFeed) -> None:
        if self.feeds.get(feed.scope.key) is feed:
            del self.feeds[feed.scope.key]
        if not self.feeds:
            read.release()

    def wake(self, keys: list[str]) -> None:
        for key in (*keys, "all"):
            feed = self.feeds.get(key)
            if feed is not None:
                if feed.noticed is None:
                    feed.noticed = time.monotonic()
                feed.wake.set()

    async def _listen(self) -> None:
        backoff = 0.5
        while True:
            layer = get_channel_layer()
            try:
                channel = await layer.new_channel("rt.hub.")
                await layer.group_add(conf.notify_group(), channel)
                joined = time.monotonic()
                if not self.connected:
                    self.connected = True
                    self.wake(list(self.feeds))  # (re)connected: read whatever was missed meanwhile
                backoff = 0.5
                while True:
                    try:
                        message = await layer.receive(channel)
                    except RedisTimeout:
                        continue  # a slow read on a busy machine; the layer keeps queued notices meanwhile
                    self.wake(message.get("keys") or [])
                    if time.monotonic() - joined > GROUP_REFRESH_SECONDS:
                        await layer.group_add(conf.notify_group(), channel)
                        joined = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.connected:
                    log.warning("realtime listener lost the channel layer (%s); polling the log meanwhile", exc)
                self.connected = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)


hub = Hub()
