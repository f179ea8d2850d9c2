"""Bad input at the edge: a 4xx in the caller's error shape, never a 500.

- `NulRefusalMiddleware`: a NUL byte in the path or the query string (`%00`) is refused with 400 before any
  view runs — PostgreSQL cannot store or compare one in text, so it would otherwise surface as a 500 from
  whichever query first met it. (Body fields: DRF's CharField refuses NUL itself; Open311 checks its form.)
- `not_found`: the project's 404 handler — under /api/ and /realtime/ the API's `{"code", "detail", "field"}`
  in JSON (a path no route matches, e.g. `/api/cells/1.5/`), elsewhere Django's page.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults

JSON_PREFIXES = ("/api/", "/realtime/")


def _json_error(status: int, code: str, detail: str, field: str | None = None) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail, "field": field}, status=status)


class NulRefusalMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            message = _("请求含有 NUL 字符")
            if request.path.startswith("/open311/"):
                from gridmgmt.open311 import formats

                return formats.error("json" if ".json" in request.path else "xml", 400, message)
            if request.path.startswith(JSON_PREFIXES):
                return _json_error(400, "invalid", message)
            return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


def not_found(request: HttpRequest, exception=None) -> HttpResponse:
    if request.path.startswith(JSON_PREFIXES):
        return _json_error(404, "not_found", _("不存在"))
    return defaults.page_not_found(request, exception)
