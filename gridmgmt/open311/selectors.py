"""Public reads for GeoReport v2: the service list (non-sensitive categories) and service requests.

Requests are the public view of cases (gridmgmt.access.cases_public / case_public_view), the same as the
residents' map and /api/public/: no reporter, lat/long at the cell centre, no address (address_id is the
cell code), descriptions and media only from the public's own channels, sensitive categories not listed.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from gridmgmt import access
from gridmgmt.datetimes import datetime_parse
from gridmgmt.errors import InvalidInput, NotFound
from gridmgmt.models import Case, CaseEvent, CasePhoto, Category
from gridmgmt.names import name_localized as _name
from gridmgmt.open311.formats import w3
from gridmgmt.states import OPEN_STATUSES

MAX_WINDOW = timedelta(days=90)
MAX_RESULTS = 1000  # the spec's default query limit
MAX_IDS = 200
URGENCY_ATTRIBUTE = "urgency"


# --- services -------------------------------------------------------------------------------------------------


def categories_public() -> QuerySet[Category]:
    """The services: active, non-sensitive subclasses (a major class is a group, not a service)."""
    return Category.objects.filter(is_active=True, is_sensitive=False, parent__isnull=False).select_related("parent")


def category_public(*, code: str) -> Category:
    category = categories_public().filter(code=code).first()
    if category is None:
        raise NotFound(_("service_code %(code)s 不存在") % {"code": code}, field="service_code")
    return category


def service_notice(category: Category, urgency: str = Case.Urgency.NORMAL) -> str:
    """The promise made at intake: the handling time limit of this class and urgency."""
    if urgency == Case.Urgency.URGENT:
        amount, unit = category.limit_urgent, category.urgent_limit_unit
    else:
        amount, unit = category.limit_normal, category.limit_unit
    return _("立案后 %(amount)s %(unit)s内处置") % {"amount": amount, "unit": Category.LimitUnit(unit).label}


def service_item(category: Category) -> dict:
    keywords = [k for k in (category.plain_name, category.parent.name, category.name_en) if k]
    return {
        "service_code": category.code,
        "service_name": _name(category),
        "description": category.filing_condition or category.plain_name or category.name,
        "metadata": True,
        "type": "realtime",
        "keywords": ", ".join(keywords),
        "group": _name(category.parent),
    }


def service_definition(category: Category) -> dict:
    values = [{"key": u.value, "name": str(u.label)} for u in Case.Urgency]
    return {
        "service_code": category.code,
        "attributes": [
            {
                "variable": True,
                "code": URGENCY_ATTRIBUTE,
                "datatype": "singlevaluelist",
                "required": True,
                "datatype_description": _("选择一项"),
                "order": 1,
                "description": _("紧急程度:影响处置时限(紧急:%(notice)s)")
                % {"notice": service_notice(category, Case.Urgency.URGENT)},
                "values": values,
            }
        ],
    }


# --- requests -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestQuery:
    ids: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: tuple[str, ...] = ()


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in (value or "").split(",") if v.strip()))


def _date(value: str | None, *, field: str) -> datetime | None:
    if not value:
        return None
    # A '+' sent unencoded arrives as a space; a time without an offset is local (gridmgmt.datetimes).
    return datetime_parse(value.strip().replace(" ", "+"), field=field)


def request_query_parse(params, *, now: datetime | None = None) -> RequestQuery:
    """The GET filters. `service_request_id` overrides all others; otherwise the window is at most 90 days
    and defaults to the last 90."""
    ids = _split(params.get("service_request_id"))
    if ids:
        if len(ids) > MAX_IDS:
            message = _("一次最多查询 %(n)s 个 service_request_id") % {"n": MAX_IDS}
            raise InvalidInput(message, field="service_request_id")
        return RequestQuery(ids=ids)
    statuses = _split(params.get("status"))
    if any(s not in ("open", "closed") for s in statuses):
        raise InvalidInput(_("status 只能是 open 或 closed"), field="status")
    now = now or timezone.now()
    start = _date(params.get("start_date"), field="start_date")
    end = _date(params.get("end_date"), field="end_date")
    if start is None and end is None:
        end = now
    if end is None:
        end = min(now, start + MAX_WINDOW)
    if start is None:
        start = end - MAX_WINDOW
    if start > end:
        raise InvalidInput(_("start_date 不能晚于 end_date"), field="start_date")
    if end - start > MAX_WINDOW:
        raise InvalidInput(_("查询时间范围不能超过 90 天"), field="end_date", code="window_too_long")
    return RequestQuery(codes=_split(params.get("service_code")), start=start, end=end, statuses=statuses)


def _with_public_relations(qs: QuerySet[Case]) -> QuerySet[Case]:
    events = CaseEvent.objects.only("id", "case_id", "type", "at", "data").order_by("id")
    qs = access.cases_public_related(qs).select_related("department")
    return qs.prefetch_related(Prefetch("events", queryset=events, to_attr="public_events"))


def requests_public(*, query: RequestQuery) -> list[Case]:
    qs = access.cases_public()
    if query.ids:
        qs = qs.filter(code__in=query.ids)
    else:
        qs = qs.filter(reported_at__gte=query.start, reported_at__lte=query.end)
        if query.codes:
            qs = qs.filter(category__code__in=query.codes)
        if set(query.statuses) == {"open"}:
            qs = qs.filter(status__in=OPEN_STATUSES)
        elif set(query.statuses) == {"closed"}:
            qs = qs.exclude(status__in=OPEN_STATUSES)
    return list(_with_public_relations(qs.order_by("-reported_at", "-id"))[:MAX_RESULTS])


def request_public_get(*, code: str) -> Case:
    case = None if "\x00" in code else _with_public_relations(access.cases_public().filter(code=code)).first()
    if case is None:
        raise NotFound(_("service_request_id %(id)s 不存在") % {"id": code}, field="service_request_id")
    return case


def _status_notes(view: access.PublicCase) -> str:
    if view.merged:
        return _("%(status)s(重复上报,已合并)") % {"status": view.status_label}
    return view.status_label


def request_item(case: Case, *, absolute_url) -> dict:
    """One request as the public sees it (access.case_public_view). `absolute_url(path)` makes media links
    absolute."""
    view = access.case_public_view(case)
    reported = case.public_events[0].data if case.public_events else {}
    before = [p.url for p in view.photos if p.kind == CasePhoto.Kind.BEFORE]
    if before:
        media_url = absolute_url(before[0])
    else:  # a link the reporter posted instead of a file: public exactly when their description is
        media_url = (reported.get("media_url") or None) if view.reporter_words_public else None
    return {
        "service_request_id": view.code,
        "status": "open" if view.is_open else "closed",
        "status_notes": _status_notes(view),
        "service_name": _name(case.category),
        "service_code": view.category_code,
        "description": view.description,
        "agency_responsible": _name(case.department) if case.department else None,
        "service_notice": service_notice(case.category, case.urgency),
        "requested_datetime": w3(view.reported_at),
        "updated_datetime": w3(view.updated_at if view.is_open else view.closed_at or view.updated_at),
        "expected_datetime": w3(view.due_at),
        "address": None,  # the reporter's words may name a door; address_id locates to the cell
        "address_id": view.cell_code,
        "zipcode": None,
        "lat": view.location.y,
        "long": view.location.x,
        "media_url": media_url,
        # Extension (as in Chicago's Open311): the stage history, without staff notes or people.
        "notes": [
            {"datetime": w3(e.at), "summary": str(CaseEvent.Type(e.type).label), "type": e.type}
            for e in case.public_events
        ],
    }
