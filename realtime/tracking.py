"""`/track/osmand`: the OsmAnd tracking protocol, as Traccar's server speaks it — what Traccar Client, OsmAnd's
online tracking and many hardware trackers send (README, "Tracking devices").

Accepted, like Traccar's `OsmAndProtocolDecoder`:

- GET with a query string, or POST with the same fields as a form body: `id` (or `deviceid`), `lat`, `lon`
  (or `location=lat,lon`), `timestamp` (Unix seconds, milliseconds — a number ≥ 2^31 − 1 is milliseconds —,
  or ISO 8601 / `YYYY-MM-DD HH:MM:SS`; without an offset it is the server's TIME_ZONE; absent: now),
  `speed` (knots, Traccar's unit for this protocol), `bearing` or `heading` (degrees), `altitude` (m),
  `accuracy` (m), `batt` (%). Other fields are ignored.
- POST with a JSON body, Traccar Client 9's (the transistorsoft background-geolocation format):
  `{"device_id": …, "location": {"timestamp": ISO 8601, "coords": {"latitude", "longitude", "speed" (m/s),
  "heading", "altitude", "accuracy"}, "battery": {"level": 0…1}}}`; a negative speed, heading, accuracy or
  battery level means "unknown".

Answers: 200 with an empty body when accepted (stored, or a repeat of a stored fix, or older than the
history keeps); 400 (body: the reason's code) for an unknown or inactive device, a missing `id`/`lat`/`lon`,
a coordinate out of range or not a number, an unparseable timestamp or one more than
POSITION_FUTURE_SECONDS (300 s) ahead, a body that is not the JSON above; 429 with Retry-After over the
limits (per device identifier, `track_device`, and per client address, `track_address`); 405 for other
methods. No CSRF (devices have no session), no login: the device identifier registered to an active patrol
member's tracker is the credential.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from gridmgmt.clients import client_ip, limits_hit
from gridmgmt.datetimes import datetime_parse
from gridmgmt.errors import DomainError, InvalidInput
from realtime.positions import Fix
from realtime.services import tracker_positions_report

log = logging.getLogger(__name__)

KNOT_MPS = 1852 / 3600  # m/s in a knot
_INT_MAX = 2**31 - 1  # Traccar: a timestamp below this is seconds, else milliseconds


def _bad(field: str, code: str = "invalid") -> InvalidInput:
    return InvalidInput(_("%(field)s 无效") % {"field": field}, field=field, code=code)


def _number(value, field: str, *, required: bool = False) -> float | None:
    if value is None or value == "":
        if required:
            raise _bad(field, "missing")
        return None
    if isinstance(value, bool):
        raise _bad(field)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _bad(field) from None
    if not math.isfinite(number):
        raise _bad(field)
    return number


def _known(value: float | None) -> float | None:
    """Traccar Client's "unknown" is a negative number."""
    return value if value is not None and value >= 0 else None


def timestamp_parse(value) -> datetime:
    """Seconds, milliseconds, or ISO 8601 (also with a space); absent → now."""
    if value is None or value == "":
        return timezone.now()
    text = str(value).strip()
    if text.isascii() and text.isdigit() and len(text) <= 16:
        number = int(text)
        try:
            return datetime.fromtimestamp(number if number < _INT_MAX else number / 1000, tz=UTC)
        except (ValueError, OverflowError, OSError):  # past year 9999
            raise _bad("timestamp", "bad_datetime") from None
    return datetime_parse(text, field="timestamp", naive="local")


def _form_fix(params) -> tuple[str, Fix]:
    identifier = params.get("id") or params.get("deviceid")
    if not identifier:
        raise _bad("id", "missing")
    lat, lon = params.get("lat"), params.get("lon")
    if (lat is None or lon is None) and params.get("location"):
        lat, _sep, lon = params["location"].partition(",")
    speed = _number(params.get("speed"), "speed")
    fix = Fix(
        lat=_number(lat, "lat", required=True),
        lon=_number(lon, "lon", required=True),
        at=timestamp_parse(params.get("timestamp")),
        speed=speed * KNOT_MPS if speed is not None else None,
        course=_number(params.get("bearing", params.get("heading")), "bearing"),
        altitude=_number(params.get("altitude"), "altitude"),
        accuracy=_number(params.get("accuracy"), "accuracy"),
        battery=_number(params.get("batt"), "batt"),
    )
    return identifier, fix


def _json_fix(body: bytes) -> tuple[str, Fix]:
    try:
        root = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _bad("body") from None
    if not isinstance(root, dict):
        raise _bad("body")
    identifier = root.get("device_id")
    if not isinstance(identifier, str | int) or isinstance(identifier, bool) or identifier == "":
        raise _bad("device_id", "missing")
    location = root.get("location")
    if isinstance(location, list) and len(location) == 1:  # the plugin batches as a list
        location = location[0]
    if not isinstance(location, dict) or not isinstance(location.get("coords"), dict):
        raise _bad("location", "missing")
    coords = location["coords"]
    if not isinstance(location.get("timestamp"), str):
        raise _bad("timestamp", "missing")
    battery = location.get("battery")
    level = _known(_number(battery.get("level"), "battery")) if isinstance(battery, dict) else None
    fix = Fix(
        lat=_number(coords.get("latitude"), "latitude", required=True),
        lon=_number(coords.get("longitude"), "longitude", required=True),
        at=timestamp_parse(location["timestamp"]),
        speed=_known(_number(coords.get("speed"), "speed")),
        course=_known(_number(coords.get("heading"), "heading")),
        altitude=_number(coords.get("altitude"), "altitude"),
        accuracy=_known(_number(coords.get("accuracy"), "accuracy")),
        battery=level * 100 if level is not None else None,
    )
    return str(identifier), fix


def osmand_parse(*, method: str, content_type: str, query, body: bytes, form) -> tuple[str, Fix]:
    """The device identifier (stripped, at most 64 characters) and the fix of one request: a JSON body (a POST
    without a query string, `application/json` or a body starting with `{`), else the query string, else the
    form body (`form()`, read only then). Raises InvalidInput (400)."""
    if method == "POST" and not query and (content_type == "application/json" or body.lstrip()[:1] == b"{"):
        identifier, fix = _json_fix(body)
    else:
        identifier, fix = _form_fix(query if query else form())
    return identifier.strip()[:64], fix


@dataclass(frozen=True)
class OsmandRequest:
    """A parsed request: where from, and its identifier and fix — or the error parsing it raised."""

    address: str
    identifier: str = ""
    fix: Fix | None = None
    error: DomainError | None = None


@dataclass(frozen=True)
class Answer:
    status: int
    text: str = ""
    retry_after: int | None = None


def osmand_answers(requests: Sequence[OsmandRequest]) -> list[Answer]:
    """The answers to parsed requests, in order, their accepted fixes stored together
    (`tracker_positions_report`) before this returns. The limits are counted per request as they came: per
    address first (even a request that does not parse counts), then per device identifier."""
    answers: list[Answer | None] = []
    reports: list[tuple[str, Fix]] = []
    # Two round trips to the shared cache for the whole batch: the addresses, then the devices of the requests
    # that passed and parsed.
    by_address = limits_hit(checks=[("track_address", r.address) for r in requests])
    asked = [i for i, r in enumerate(requests) if not by_address[i] and r.error is None]
    by_device = dict(
        zip(asked, limits_hit(checks=[("track_device", requests[i].identifier) for i in asked]), strict=True)
    )
    for i, request in enumerate(requests):
        wait = by_address[i] or by_device.get(i)
        if wait:
            answers.append(Answer(429, "throttled", retry_after=wait))
        elif request.error is not None:
            answers.append(_refused(request.error))
        else:
            answers.append(None)
            reports.append((request.identifier, request.fix))
    outcomes = iter(tracker_positions_report(reports=reports) if reports else [])
    return [answer or _refused(next(outcomes)) for answer in answers]


def _refused(error: DomainError | None) -> Answer:
    if error is None:
        return Answer(200)
    log.info("tracker position refused: %s (%s)", error.code, error.field)
    return Answer(400, error.code)


def _plain(status: int, text: str = "") -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def osmand(request: HttpRequest) -> HttpResponse:
    """The Django view; under ASGI realtime/track_asgi.py answers these requests first, batching their writes,
    with the same functions."""
    try:
        identifier, fix = osmand_parse(
            method=request.method,
            content_type=request.content_type or "",
            query=request.GET,
            body=request.body if request.method == "POST" and not request.GET else b"",
            form=lambda: request.POST,
        )
        parsed = OsmandRequest(address=client_ip(request), identifier=identifier, fix=fix)
    except DomainError as exc:
        parsed = OsmandRequest(address=client_ip(request), error=exc)
    (answer,) = osmand_answers([parsed])
    response = _plain(answer.status, answer.text)
    if answer.retry_after is not None:
        response["Retry-After"] = str(answer.retry_after)
    return response
