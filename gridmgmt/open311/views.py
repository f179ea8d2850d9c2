"""GeoReport v2 endpoints. Each view parses the request, calls a selector or the intake service, and renders
in the format named by the URL's extension; every error is the spec's error list with its HTTP status."""

import json
import re
from collections.abc import Callable
from functools import wraps

from django.core.exceptions import RequestDataTooBig, TooManyFilesSent
from django.http import Http404, HttpRequest, HttpResponse, UnreadablePostError
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from gridmgmt import clients
from gridmgmt.errors import DomainError, InvalidInput, RoleNotAllowed
from gridmgmt.models import Open311Client
from gridmgmt.open311 import formats, selectors
from gridmgmt.open311.services import open311_request_submit

SPEC_URL = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-24T00:00:00+08:00"
_ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]+)\](\[\])?$")


class _Throttled(Exception):
    def __init__(self, wait: int):
        self.wait = wait


def _throttled(fmt: str, wait: int) -> HttpResponse:
    response = formats.error(fmt, 429, clients.throttled_message(wait))
    response["Retry-After"] = str(wait)
    return response


def endpoint(*methods: str) -> Callable:
    """Method check, and every failure rendered as the spec's error in the requested format."""

    def decorate(view):
        @csrf_exempt  # an API for other systems: no cookies are read, so there is nothing to forge
        @wraps(view)
        def wrapper(request: HttpRequest, *args, fmt: str = "xml", **kwargs) -> HttpResponse:
            if request.method not in methods:
                response = formats.error(fmt, 405, _("不支持的请求方法 %(m)s") % {"m": request.method})
                response["Allow"] = ", ".join(methods)
                return response
            try:
                _refuse_nul(request.GET.lists(), kwargs.items())
                if request.method == "GET":  # reads per client address; POSTs per api_key (_requests_create)
                    wait = clients.limit_hit(scope="open311_read", ident=clients.client_ident(request))
                    if wait is not None:
                        raise _Throttled(wait)
                return view(request, *args, fmt=fmt, **kwargs)
            except _Throttled as exc:
                return _throttled(fmt, exc.wait)
            except DomainError as exc:
                return formats.error(fmt, exc.status, exc.message)
            except Http404:
                return formats.error(fmt, 404, _("不存在"))
            except (RequestDataTooBig, TooManyFilesSent):
                return formats.error(fmt, 400, _("请求过大"))
            except UnreadablePostError:
                return formats.error(fmt, 400, _("请求体不完整"))

        return wrapper

    return decorate


def _refuse_nul(*pairs) -> None:
    """A NUL byte cannot be stored (PostgreSQL text refuses it) nor match anything: a 400, not a 500."""
    for items in pairs:
        for key, value in items:
            values = value if isinstance(value, list | tuple) else [value]
            if "\x00" in str(key) or any(isinstance(v, str) and "\x00" in v for v in values):
                raise InvalidInput(_("%(field)s 含有 NUL 字符") % {"field": str(key).replace("\x00", "")[:40]})


@endpoint("GET")
def discovery(request: HttpRequest, fmt: str) -> HttpResponse:
    base = request.build_absolute_uri("/open311/v2/")
    data = {
        "changeset": CHANGESET,
        "contact": _("网格化管理指挥中心"),
        "key_service": _("提交 (POST) 须使用网格化管理指挥中心发放的 api_key;查询无需"),
        "endpoints": [
            {
                "specification": SPEC_URL,
                "url": base,
                "changeset": CHANGESET,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }
    return formats.render(fmt, "discovery", data)


@endpoint("GET")
def service_list(request: HttpRequest, fmt: str) -> HttpResponse:
    items = [selectors.service_item(c) for c in selectors.categories_public().order_by("code")]
    return formats.render(fmt, "services", items)


@endpoint("GET")
def service_definition(request: HttpRequest, service_code: str, fmt: str) -> HttpResponse:
    category = selectors.category_public(code=service_code)
    return formats.render(fmt, "service_definition", selectors.service_definition(category))


def _requests_list(request: HttpRequest, fmt: str) -> HttpResponse:
    query = selectors.request_query_parse(request.GET)
    cases = selectors.requests_public(query=query)
    items = [selectors.request_item(c, absolute_url=request.build_absolute_uri) for c in cases]
    return formats.render(fmt, "service_requests", items)


def _post_params(request: HttpRequest) -> tuple[dict, dict]:
    """Form fields (the spec's encoding, or multipart with a `media` file), or a JSON object as some clients
    send. Returns (fields, attributes)."""
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput(_("请求体不是有效的 JSON")) from None
        if not isinstance(body, dict):
            raise InvalidInput(_("请求体须为 JSON 对象"))
        fields = {k: v for k, v in body.items() if not isinstance(v, dict | list)}
        attributes = dict(body.get("attribute") or {}) if isinstance(body.get("attribute"), dict) else {}
        raw = body.items()
    else:
        fields = {k: request.POST.get(k) for k in request.POST}
        attributes = {}
        raw = request.POST.lists()
    raw = list(raw)
    _refuse_nul(raw, attributes.items())
    for key, value in raw:
        match = _ATTRIBUTE.match(key)
        if match:
            # attribute[code]=v once; attribute[code][]=v1&attribute[code][]=v2 for a multivaluelist.
            many = bool(match.group(2))
            attributes[match.group(1)] = value if many or not isinstance(value, list) else value[-1]
    return fields, attributes


def _client(api_key: str) -> Open311Client:
    """The application posting: GeoReport v2 requires an api_key on POST; ours are issued in the admin
    (Open311Client) and counted per key."""
    if not api_key:
        raise RoleNotAllowed(_("缺少 api_key"), field="api_key", code="invalid_api_key")
    app = Open311Client.by_key(api_key)
    if app is None:
        raise RoleNotAllowed(_("api_key 无效"), field="api_key", code="invalid_api_key")
    wait = clients.limit_hit(scope="open311_post", ident=f"key{app.pk}")
    if wait is not None:
        raise _Throttled(wait)
    return app


def _requests_create(request: HttpRequest, fmt: str) -> HttpResponse:
    fields, attributes = _post_params(request)

    def text(name: str) -> str:
        value = fields.get(name)
        return "" if value is None else str(value)

    _client(text("api_key") or request.GET.get("api_key", ""))
    case = open311_request_submit(
        service_code=text("service_code").strip(),
        lat=fields.get("lat"),
        long=fields.get("long"),
        address_string=text("address_string"),
        address_id=text("address_id"),
        attributes=attributes,
        first_name=text("first_name"),
        last_name=text("last_name"),
        phone=text("phone"),
        description=text("description"),
        media_url=text("media_url").strip(),
        media=request.FILES.getlist("media"),
        reporter=None,
    )
    item = {
        "service_request_id": case.code,
        "service_notice": selectors.service_notice(case.category, case.urgency),
        "account_id": None,  # the api_key names an application, not a person
    }
    return formats.render(fmt, "service_requests", [item])


@endpoint("GET", "POST")
def requests_collection(request: HttpRequest, fmt: str) -> HttpResponse:
    if request.method == "POST":
        return _requests_create(request, fmt)
    return _requests_list(request, fmt)


@endpoint("GET")
def request_detail(request: HttpRequest, service_request_id: str, fmt: str) -> HttpResponse:
    case = selectors.request_public_get(code=service_request_id)
    return formats.render(
        fmt, "service_requests", [selectors.request_item(case, absolute_url=request.build_absolute_uri)]
    )


@csrf_exempt
def not_found(request: HttpRequest, rest: str) -> HttpResponse:
    """Anything else under the endpoint: still the spec's error, in the format the path asks for."""
    fmt = "json" if rest.endswith(".json") else "xml"  # XML is the spec's required format
    return formats.error(fmt, 404, _("没有这个 Open311 资源: %(path)s") % {"path": rest})
