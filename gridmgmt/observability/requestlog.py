"""Per-request log context: a request id (the proxy's X-Request-ID when it sent a sane one, else a new
one), echoed in the response, and attached with the user's id to every log record written while the request
runs; one access line per request. Paths are logged without their query string (tracking tokens travel
there), and nothing logs a reporter's phone: records carry ids, never personal data."""

import contextvars
import logging
import re
import time
import uuid

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.utils.functional import SimpleLazyObject, empty

_request: contextvars.ContextVar = contextvars.ContextVar("gridmgmt_request", default=None)
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
access_log = logging.getLogger("gridmgmt.request")


def request_id_take(given: str) -> str:
    """The proxy's request id when it is a sane one, else a new one."""
    return given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex


def _user_id(request) -> int | None:
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        user = user._wrapped  # only if something already asked: a log call must never query the database
        if user is empty:
            return None
    return getattr(user, "pk", None)


class RequestContextFilter(logging.Filter):
    """Adds `request_id` and `user_id` to every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = _request.get()
        record.request_id = getattr(request, "request_id", None)
        record.user_id = _user_id(request) if request is not None else None
        return True


class RequestContextMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _start(self, request):
        request.request_id = request_id_take(request.headers.get("X-Request-ID", ""))
        return _request.set(request), time.perf_counter()

    def _finish(self, request, response, token, started):
        response["X-Request-ID"] = request.request_id
        match = getattr(request, "resolver_match", None)
        access_log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "route": match.route if match else None,
                "status": response.status_code,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        _request.reset(token)
        return response

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        token, started = self._start(request)
        return self._finish(request, self.get_response(request), token, started)

    async def __acall__(self, request):
        token, started = self._start(request)
        return self._finish(request, await self.get_response(request), token, started)
