"""/stats/: the evaluation figures (gridmgmt.kpi) as tables and trend charts, a heat map of cases by cell, and
the monthly evaluation report (月度考评) as a printable page and an .xlsx.

The page's tables and charts read /api/kpis/ (the same response its CSV/Excel export renders); the monthly
report renders kpi.kpi_month_report through the API's row serializer, so every figure has one definition.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.gzip import gzip_page

from geo import folium_offline
from geo.coords import wgs84_to_gcj02
from geo.models import AdminArea
from gridmgmt import access, export, kpi
from gridmgmt.api.kpis import GROUPS, KpiQuery, KpiRowSerializer, KpiXlsxRenderer
from gridmgmt.faces.views import _map_context, _page_config, staff_face
from gridmgmt.names import name_localized

STATS_ROLES = access.FACE_ROLES["stats"]
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")

# The groupings offered on the page, each with its label (the API's list is the one list of valid values).
GROUP_LABELS = {
    "street": gettext_lazy("街道/镇"),
    "community": gettext_lazy("社区"),
    "department": gettext_lazy("部门"),
    "team": gettext_lazy("队伍"),
    "person": gettext_lazy("人员"),
    "grid": gettext_lazy("责任网格"),
    "district": gettext_lazy("区"),
}
# The period's totals shown as tiles above the charts (keys of KpiRowSerializer).
TILES = ("received", "filed", "closed", "due", "closure_rate", "on_time_closure_rate", "rework_rate", "satisfied_rate")
STATS_LABELS = {
    "total": gettext_lazy("合计"),
    "none": gettext_lazy("(未归属)"),
    "cases": gettext_lazy("件"),
    "trend": gettext_lazy("%(period)s趋势"),
    "compare": gettext_lazy("按%(group)s对比"),
    "table": gettext_lazy("考评指标 · 按%(group)s"),
    "empty": gettext_lazy("该时段无数据"),
    "heat_note": gettext_lazy("上报 %(n)s 件"),
}
PERIOD_LABELS = {"day": gettext_lazy("按日"), "week": gettext_lazy("按周"), "month": gettext_lazy("按月")}


@staff_face(STATS_ROLES)
def stats_page(request: HttpRequest) -> HttpResponse:
    """/stats/: pick a period and a grouping; the table, the trend and the heat map follow."""
    context = _map_context(request, user=request.user)
    today = timezone.localdate()
    context["config"] = _page_config(
        request,
        api=reverse("api:kpis"),
        heat=reverse("faces:stats-heat"),
        start=(today - timedelta(days=29)).isoformat(),
        end=today.isoformat(),
        groups=[[g, str(GROUP_LABELS[g])] for g in GROUP_LABELS if g in GROUPS],
        periods=[[p, str(label)] for p, label in PERIOD_LABELS.items()],
        columns=[{"key": c.key, "label": str(c.label), "kind": c.kind} for c in export.KPI_COLUMNS],
        labels={k: str(v) for k, v in STATS_LABELS.items()},
        tiles=list(TILES),
    )
    context["last_month"] = _last_month().strftime("%Y-%m")
    # The area filter's choices: the streets/towns the user may see (their communities are a grouping).
    streets = access.areas_visible(user=request.user).filter(level=AdminArea.Level.STREET).order_by("code")
    context["areas"] = [(a.pk, name_localized(a)) for a in streets.only("pk", "name", "name_en", "code")]
    return render(request, "faces/stats.html", context)


@gzip_page  # ~6k cells for a month of the demo: ~170 KB of JSON
@staff_face(STATS_ROLES)
def stats_heat(request: HttpRequest) -> JsonResponse:
    """Cases reported per cell in the period (?start=&end=, as /api/kpis/): [[lat, lon, n], …]."""
    query = KpiQuery(data={k: request.GET[k] for k in ("start", "end", "area") if k in request.GET})
    if not query.is_valid():
        field, errors = next(iter(query.errors.items()))
        return JsonResponse({"code": "invalid", "field": field, "detail": str(errors[0])}, status=400)
    start, end = _day_bounds(query.validated_data["start"], query.validated_data["end"])
    cases = kpi.cases_in_area(cases=access.cases_visible(user=request.user), area_id=query.validated_data.get("area"))
    points = kpi.kpi_heat(cases=cases, start=start, end=end)
    if points and folium_offline.display_datum() == "gcj02":  # data stays WGS-84: shifted for display only
        lon, lat = wgs84_to_gcj02([p[1] for p in points], [p[0] for p in points])
        points = [(round(float(y), 6), round(float(x), 6), p[2]) for x, y, p in zip(lon, lat, points, strict=True)]
    return JsonResponse({"points": points})


def _day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    tz = timezone.get_current_timezone()
    return datetime.combine(first, time.min, tzinfo=tz), datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz)


def _last_month() -> date:
    return (timezone.localdate().replace(day=1) - timedelta(days=1)).replace(day=1)


def _month_parse(text: str | None) -> date:
    if not text:
        return _last_month()
    m = _MONTH.match(text)
    if not m or not 1 <= int(m.group(2)) <= 12 or not 2000 <= int(m.group(1)) <= 2100:
        raise ValueError(text)
    return date(int(m.group(1)), int(m.group(2)), 1)


def _shown(value, kind: str) -> str:
    """A figure as printed: rates as percentages with one decimal, means with two, none as a dash."""
    if value is None:
        return "–"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "float":
        return f"{value:.2f}"
    return str(value)


@staff_face(STATS_ROLES)
def monthly_report(request: HttpRequest) -> HttpResponse:
    """/stats/monthly/?month=YYYY-MM (default last month): 月度考评 per street and department, printable;
    ``&format=xlsx`` gives the same tables as an Excel file."""
    try:
        month = _month_parse(request.GET.get("month"))
    except ValueError:
        message = _("月份格式应为 YYYY-MM (2000–2100 年),例如 %(m)s") % {"m": _last_month().strftime("%Y-%m")}
        return render(request, "faces/forbidden.html", {"message": message}, status=400)
    fmt = request.GET.get("format", "html")
    if fmt not in ("html", "xlsx"):
        message = _("未知的导出格式: %(f)s (可用: %(all)s)") % {"f": fmt[:20], "all": "html, xlsx"}
        return render(request, "faces/forbidden.html", {"message": message}, status=400)
    report = kpi.kpi_month_report(user=request.user, month=month)
    tables = [
        (str(_("街道/镇")), KpiRowSerializer(report["street"], many=True).data),
        (str(_("部门")), KpiRowSerializer(report["department"], many=True).data),
    ]
    label = month.strftime("%Y-%m")
    title = _("%(month)s 月度考评") % {"month": label}
    if fmt == "xlsx":
        body = export.workbook_write(sheets=[(name, f"{title} · {name}", rows) for name, rows in tables])
        response = HttpResponse(body, content_type=KpiXlsxRenderer.media_type)
        response["Content-Disposition"] = f'attachment; filename="monthly-{label}.xlsx"'
        return response
    columns = export.KPI_COLUMNS[1:]  # the id is for machines
    context = {
        "title": title,
        "month": label,
        "columns": columns,
        "tables": [(name, [[_shown(r.get(c.key), c.kind) for c in columns] for r in rows]) for name, rows in tables],
        "generated": timezone.localtime(),
        "scope": request.user.area.name if request.user.area_id else _("全部"),
    }
    return render(request, "faces/monthly.html", context)
