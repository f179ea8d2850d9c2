"""One error shape for the whole API: `{"code": ..., "detail": ..., "field": ...}`.

Domain errors carry their own status and a message already in the request's language; DRF's validation,
authentication, throttling and not-found errors are folded into the same shape so clients parse one thing.
"""

import math

from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from gridmgmt.clients import throttled_message
from gridmgmt.errors import DomainError


def error_body(*, code: str, detail: str, field: str | None = None, **extra) -> dict:
    return {"code": code, "detail": str(detail), "field": field, **extra}


def _first_error(detail, field: str | None = None) -> tuple[str | None, exceptions.ErrorDetail | str]:
    """The first (field, message) of a nested DRF validation detail, with a dotted field path."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = None if key in ("non_field_errors", "detail") else str(key)
            path = ".".join(p for p in (field, name) if p) or None
            return _first_error(value, path)
        return field, _("请求无效")
    if isinstance(detail, list):
        for i, value in enumerate(detail):
            # A list of messages for one field vs. a list of nested objects (e.g. photos[2]).
            path = field if not isinstance(value, dict | list) else f"{field}.{i}" if field else str(i)
            return _first_error(value, path)
        return field, _("请求无效")
    return field, detail


def api_exception_handler(exc, context):
    if isinstance(exc, DomainError):
        set_rollback()
        return Response(error_body(code=exc.code, detail=exc.message, field=exc.field), status=exc.status)
    if isinstance(exc, RequestDataTooBig):  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE, read by the multipart parser
        return Response(error_body(code="too_large", detail=_("请求过大")), status=413)
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return Response(error_body(code="too_many_fields", detail=_("请求过大")), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*(exc.args or (_("不存在"),)))
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        field, message = _first_error(exc.detail)
        code = getattr(message, "code", None) or "invalid"
        response.data = error_body(code=code, detail=message, field=field, errors=exc.detail)
        response.status_code = status.HTTP_400_BAD_REQUEST
        return response
    if isinstance(exc, exceptions.Throttled):  # Retry-After is set by DRF from the throttle's wait
        wait = math.ceil(exc.wait) if exc.wait is not None else 60
        response.data = error_body(code="throttled", detail=throttled_message(wait))
        return response
    detail = exc.detail if isinstance(exc, exceptions.APIException) else response.data
    field, message = _first_error(detail)
    code = getattr(message, "code", None) or getattr(exc, "default_code", "error")
    response.data = error_body(code=code, detail=message, field=field)
    return response
