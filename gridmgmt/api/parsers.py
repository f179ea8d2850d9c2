"""Request bodies with a bound. DRF's JSON and form parsers read the request stream directly, so Django's
`DATA_UPLOAD_MAX_MEMORY_SIZE` — which caps every non-file body read through `request.body`/`request.POST`
— would not apply to them: here it does, and a body over it is a 413 in the API's error shape. Multipart
goes through Django's own parser, which applies the same setting to its fields (files have theirs)."""

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework import exceptions, parsers


class RequestTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "too_large"
    default_detail = "request too large"


def body_limit() -> int | None:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


class _Capped:
    def parse(self, stream, media_type=None, parser_context=None):
        limit = body_limit()
        request = (parser_context or {}).get("request")
        if limit is not None and request is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                raise RequestTooLarge(_("请求体超过 %(n)d MB") % {"n": limit // (1024 * 1024)})
        return super().parse(stream, media_type, parser_context)


class JSONParser(_Capped, parsers.JSONParser):
    pass


class FormParser(_Capped, parsers.FormParser):
    pass
