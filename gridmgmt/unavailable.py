"""A dependency gone for a moment answers 503 in the user's language, never a 500 (README, "Faults").

Redis unreachable where a request cannot do without it (the +1-once mark of a public case) is a 503 too, with
a message that does not blame the database; rate limits do without it (gridmgmt.clients: fail open).

PostgreSQL restarting, failing over or refusing connections raises `OperationalError` / `InterfaceError`
somewhere in a view; this middleware turns that into `503 Service Unavailable` with `Retry-After` and the API's
error shape (`{"code": "unavailable", "detail": …}`; an HTML page outside /api/). Nothing was written: the
service functions write in one transaction, which the failure rolled back. Clients resend — the phone's queue
with its idempotency key, so a report that did reach the database is never filed twice.
"""

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from django.utils.html import escape
from django.utils.translation import gettext as _
from redis.exceptions import RedisError

RETRY_AFTER_SECONDS = 5


def unavailable_message(*, database: bool = True) -> str:
    if database:
        return _("服务暂时不可用(数据库连接中断),请稍后重试")
    return _("服务暂时不可用,请稍后重试")


def unavailable_response(request, *, database: bool = True) -> HttpResponse:
    message = unavailable_message(database=database)
    if request.path.startswith("/api/") or "json" in request.headers.get("Accept", ""):
        response = JsonResponse({"code": "unavailable", "detail": message, "field": None}, status=503)
    else:
        response = HttpResponse(f"<!doctype html><title>503</title><p>{escape(message)}</p>", status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """Sync and async capable (MiddlewareMixin): no thread hop in the ASGI chain."""

    def process_exception(self, request, exception):
        if isinstance(exception, OperationalError | InterfaceError):
            return unavailable_response(request)
        if isinstance(exception, RedisError):
            return unavailable_response(request, database=False)
        return None
