"""The admin index's notices (templates/admin/index.html)."""

from django import template
from django.utils import timezone

from gridmgmt.workcalendar import calendar_missing_years

register = template.Library()


@register.inclusion_tag("admin/_calendar_notice.html")
def calendar_notice() -> dict:
    """Years missing from the working calendar (gridmgmt.workcalendar.calendar_missing_years)."""
    return {"years": calendar_missing_years(today=timezone.localdate())}
