"""GeoReport v2 output in its two formats. XML follows the spec's element names (a plural element holds
singular items: `<services><service>`, `<service_requests><request>`…); JSON is the same tree by the Spark
convention (lists become arrays, the outer element disappears). Both are UTF-8."""

import json
import xml.etree.ElementTree as ET
from datetime import datetime

from django.http import HttpResponse
from django.utils import timezone

FORMATS = ("json", "xml")
CONTENT_TYPES = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
# The element name of one item in each list the spec defines (plus the notes extension and discovery).
ITEM = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "notes": "note",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def w3(value: datetime | None) -> str | None:
    """W3C date-time with the local offset, e.g. 2026-11-24T10:00:00+08:00 (the spec requires an offset)."""
    if value is None:
        return None
    return timezone.localtime(value).isoformat(timespec="seconds")


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _fill(element: ET.Element, value) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _fill(ET.SubElement(element, key), child)
    elif isinstance(value, list | tuple):
        item = ITEM[element.tag]
        for child in value:
            _fill(ET.SubElement(element, item), child)
    else:
        element.text = _text(value)


def to_xml(root: str, data) -> bytes:
    element = ET.Element(root)
    _fill(element, data)
    return XML_DECLARATION + ET.tostring(element, encoding="utf-8", xml_declaration=False)


def render(fmt: str, root: str, data, *, status: int = 200) -> HttpResponse:
    """`data` is the JSON shape; `root` names the outer XML element (e.g. `services`)."""
    if fmt == "xml":
        body = to_xml(root, data)
    else:
        body = json.dumps(data, ensure_ascii=False).encode()
    return HttpResponse(body, status=status, content_type=CONTENT_TYPES.get(fmt, CONTENT_TYPES["xml"]))


def error(fmt: str, status: int, description) -> HttpResponse:
    """The spec's error list: `[{"code": 400, "description": "..."}]` / `<errors><error>…</error></errors>`."""
    return render(fmt, "errors", [{"code": status, "description": str(description)}], status=status)
