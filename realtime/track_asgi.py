"""An ASGI fast path for `/track/osmand` (realtime/tracking.py): devices' fixes written in batches.

Through Django, each fix was its own request in a synchronous view — a dozen SQL statements and two Redis
counters, one request at a time per worker (README, "Tracker positions"). Here a GET, or a POST of at most
MAX_BODY bytes that is not multipart, is parsed in the event loop by the view's own `osmand_parse`, then
queued; one flush at a time per worker process answers the queued requests together with the view's own
`osmand_answers` in a thread (the limits counted per request, the devices looked up in one query, the accepted
fixes stored in one INSERT and one `last_seen_at` UPDATE, each team's newest fix offered to `team_positions_store`
— three statements for all the batch's teams —, one transaction). While a flush runs, new requests wait for the
next one, so a batch is whatever came meanwhile, up to BATCH_MAX: an idle worker writes a fix at once, a busy one
writes many per statement. A device is answered only after the flush that stored its fix committed — a 200 is a
stored fix — with the same status and body as the view. Anything else (another method, multipart, a larger or
chunked body, another path) goes to Django unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection
from django.http import QueryDict
from django.utils.http import parse_header_parameters

from gridmgmt.asgi_headers import response_headers
from gridmgmt.clients import client_ip
from gridmgmt.errors import DomainError
from realtime.tracking import Answer, OsmandRequest, osmand_answers, osmand_parse

log = logging.getLogger(__name__)

TRACK_PATH = "/track/osmand"
BATCH_MAX = 200  # requests per flush
MAX_BODY = 64 * 1024  # a fix is a few hundred bytes; larger bodies go to Django (and its limits)
# The view's own header; the middleware's come from gridmgmt.asgi_headers (see tests/realtime/test_tracking.py).
HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]


def _answers_flush(requests: list[OsmandRequest]) -> list[Answer]:
    try:
        if not connection.in_atomic_block:  # as Django does around a request (never inside a test's transaction)
            close_old_connections()
        return osmand_answers(requests)
    except Exception:  # one request's failure must not fail the others': each alone
        log.exception("tracker batch of %d failed; answering one by one", len(requests))
    answers = []
    for request in requests:
        try:
            answers.extend(osmand_answers([request]))
        except Exception:
            log.exception("tracker position failed")
            answers.append(Answer(500, "server_error"))
    return answers


class _Batcher:
    """The queue of one event loop (a uvicorn worker has one; tests make several)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.pending: list[tuple[OsmandRequest, asyncio.Future]] = []
        self.task: asyncio.Task | None = None
        # thread_sensitive: one thread, so one DB connection and one flush at a time per process
        self.flush = sync_to_async(_answers_flush, thread_sensitive=True)

    async def answer(self, request: OsmandRequest) -> Answer:
        future = self.loop.create_future()
        self.pending.append((request, future))
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._run())
        return await future

    async def _run(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[:BATCH_MAX], self.pending[BATCH_MAX:]
            try:
                answers = await self.flush([request for request, _future in batch])
            except BaseException:  # cancelled (shutdown): nobody is answered
                for _request, future in batch:
                    future.cancel()
                raise
            for (_request, future), answer in zip(batch, answers, strict=True):
                if not future.done():
                    future.set_result(answer)


def _request_parse(scope, headers: dict[bytes, bytes], body: bytes) -> OsmandRequest:
    meta = {"REMOTE_ADDR": (scope.get("client") or ("", 0))[0] or ""}
    if b"x-forwarded-for" in headers:
        meta["HTTP_X_FORWARDED_FOR"] = headers[b"x-forwarded-for"].decode("latin-1")
    address = client_ip(SimpleNamespace(META=meta))
    content_type = parse_header_parameters(headers.get(b"content-type", b"").decode("latin-1"))[0]
    try:
        identifier, fix = osmand_parse(
            method=scope["method"],
            content_type=content_type,
            query=QueryDict(scope.get("query_string", b"").decode("utf-8", "replace")),
            body=body,
            form=lambda: QueryDict(body) if content_type == "application/x-www-form-urlencoded" else QueryDict(),
        )
    except DomainError as exc:
        return OsmandRequest(address=address, error=exc)
    return OsmandRequest(address=address, identifier=identifier, fix=fix)


class TrackFastPath:
    def __init__(self, app):
        self.app = app
        self._batcher: _Batcher | None = None

    def _ours(self, scope, headers: dict[bytes, bytes]) -> bool:
        if scope["type"] != "http" or scope["path"] != TRACK_PATH or scope["method"] not in ("GET", "POST"):
            return False
        if scope["method"] == "GET":
            return True
        length = headers.get(b"content-length", b"")
        content_type = headers.get(b"content-type", b"").lower()
        return length.isdigit() and int(length) <= MAX_BODY and not content_type.startswith(b"multipart/")

    async def __call__(self, scope, receive, send):
        headers = {k.lower(): v for k, v in scope.get("headers") or []} if scope["type"] == "http" else {}
        if not self._ours(scope, headers):
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        loop = asyncio.get_running_loop()
        if self._batcher is None or self._batcher.loop is not loop:
            self._batcher = _Batcher(loop)
        answer = await self._batcher.answer(_request_parse(scope, headers, body))
        data = answer.text.encode()
        extra = [(b"retry-after", str(answer.retry_after).encode())] if answer.retry_after is not None else []
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    *HEADERS,
                    *response_headers(scope, headers),
                    *extra,
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})
