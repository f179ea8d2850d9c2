"""POST Service Request: turn GeoReport v2 arguments into one `case_report` call (source open311)."""

import re

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext as _

from geo.coords import lonlat_parse
from geo.models import GridCell
from gridmgmt import services
from gridmgmt.errors import InvalidInput
from gridmgmt.models import Case, User
from gridmgmt.open311.selectors import URGENCY_ATTRIBUTE, category_public

_CJK = re.compile(r"[\u3400-\u9fff]")
_url = URLValidator(schemes=["http", "https"])


def reporter_name_join(*, first_name: str, last_name: str) -> str:
    """Given + family name in the order its script expects: 张 + 三 → 张三, John Smith."""
    first, last = first_name.strip(), last_name.strip()
    if _CJK.search(first + last):
        return f"{last}{first}"
    return " ".join(p for p in (first, last) if p)


def _location(*, lat, long, address_id: str, address_string: str) -> tuple[float, float]:
    """lat/long, or our own address ids: a unit grid cell code (网格编码) locates at the cell's
    representative point. A free-text address alone cannot be located: we hold no address register."""
    if lat not in (None, "") or long not in (None, ""):
        if lat in (None, "") or long in (None, ""):
            raise InvalidInput(_("lat 与 long 须同时提供"), field="location", code="location_missing")
        return lonlat_parse(long, lat)
    if address_id:
        cell = GridCell.objects.filter(code=address_id).only("center").first()
        if cell is None:
            raise InvalidInput(_("address_id %(id)s 不是有效的单元网格编码") % {"id": address_id}, field="address_id")
        return cell.center.x, cell.center.y
    if address_string:
        raise InvalidInput(
            _("仅凭地址文字无法定位,请提供 lat/long 坐标或 address_id(单元网格编码)"),
            field="address_string",
            code="address_not_geocodable",
        )
    raise InvalidInput(_("缺少位置:请提供 lat/long 坐标或 address_id"), field="location", code="location_missing")


def _urgency(attributes: dict) -> str:
    value = attributes.get(URGENCY_ATTRIBUTE)
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    if value in (None, ""):
        raise InvalidInput(_("attribute[urgency] 为必填项"), field="attribute[urgency]", code="required")
    if value not in Case.Urgency.values:
        raise InvalidInput(_("attribute[urgency] 只能是 normal 或 urgent"), field="attribute[urgency]")
    return value


def open311_request_submit(
    *,
    service_code: str,
    lat=None,
    long=None,
    address_string: str = "",
    address_id: str = "",
    attributes: dict | None = None,
    first_name: str = "",
    last_name: str = "",
    phone: str = "",
    description: str = "",
    media_url: str = "",
    media=(),
    reporter: User | None = None,
) -> Case:
    """Validate everything, then report. The reporter's contact goes to the case's private fields only; an
    e-mail address has no place to be kept and is not stored."""
    if not service_code:
        raise InvalidInput(_("缺少 service_code"), field="service_code", code="required")
    category = category_public(code=service_code)
    lon, lat = _location(lat=lat, long=long, address_id=address_id.strip(), address_string=address_string.strip())
    urgency = _urgency(attributes or {})
    if media_url:
        try:
            _url(media_url)
        except ValidationError:
            raise InvalidInput(_("media_url 不是有效的 http(s) 地址"), field="media_url") from None
        if len(media_url) > 500:
            raise InvalidInput(_("media_url 过长"), field="media_url")
    name = reporter_name_join(first_name=first_name, last_name=last_name)
    if len(name) > 50:
        raise InvalidInput(_("姓名过长"), field="first_name")
    case, _created = services.case_report(
        source=Case.Source.OPEN311,
        category_code=category.code,
        lon=lon,
        lat=lat,
        description=description.strip(),
        urgency=urgency,
        reporter=reporter,
        reporter_name=name,
        reporter_phone=phone.strip(),
        address=address_string.strip(),
        photos=media,
        data={"media_url": media_url} if media_url else None,
    )
    return case
