"""Date-times from the outside (query strings, form fields, WebSocket frames): one parser, so every edge
refuses the same bad input with a 400 instead of crashing on it.

Refused: anything that is not an ISO 8601 / W3C date-time string, impossible dates (month 13), digits that
are not ASCII, NUL bytes, and instants outside `EARLIEST`..`LATEST` — far enough from both ends of Python's
and PostgreSQL's range that the arithmetic the callers do (a 90-day window, the next day) cannot overflow.
"""

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from gridmgmt.errors import InvalidInput

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
MAX_LENGTH = 64


def datetime_parse(value, *, field: str, naive: str = "local") -> datetime | None:
    """An aware datetime from `value`, None for None/"". `naive="local"` takes a time without an offset as the
    current time zone's; `naive="refuse"` refuses it (devices that must say which instant they mean)."""
    if value is None or value == "":
        return None
    message = _("%(field)s 须为 W3C 日期时间,例如 2026-11-24T10:00:00+08:00") % {"field": field}
    if not isinstance(value, str) or len(value) > MAX_LENGTH or not value.isascii():
        raise InvalidInput(message, field=field, code="bad_datetime")
    try:
        parsed = parse_datetime(value.strip())
    except (ValueError, OverflowError):  # well formed but impossible: month 13, offset out of range
        parsed = None
    if parsed is None:
        raise InvalidInput(message, field=field, code="bad_datetime")
    if timezone.is_naive(parsed):
        if naive == "refuse":
            message = _("%(field)s 须带时区,例如 2026-11-24T10:00:00+08:00") % {"field": field}
            raise InvalidInput(message, field=field, code="bad_datetime")
        try:
            parsed = timezone.make_aware(parsed)
        except (ValueError, OverflowError):
            raise InvalidInput(message, field=field, code="bad_datetime") from None
    try:
        in_range = EARLIEST <= parsed <= LATEST
    except OverflowError:  # e.g. 0001-01-01 with a positive offset
        in_range = False
    if not in_range:
        message = _("%(field)s 超出范围 (%(start)s 至 %(end)s)") % {"field": field, "start": "1900", "end": "9000"}
        raise InvalidInput(message, field=field, code="out_of_range")
    return parsed
