"""GET /api/kpis/: the evaluation figures (gridmgmt.kpi) for a period, per area, grid, department, team,
person or period; ``?format=csv|xlsx`` renders the same response as a file (gridmgmt.export)."""

from datetime import date, datetime, time, timedelta
from typing import get_args

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from gridmgmt import access, export, kpi
from gridmgmt.dbrouter import lag_tolerant
from gridmgmt.errors import InvalidInput

GROUPS = list(get_args(kpi.GroupBy))  # one list of groupings: gridmgmt.kpi
MAX_DAYS = 400  # a year and a bit: the statement scans the period's events
MIN_YEAR, MAX_YEAR = 1900, 9000  # as gridmgmt.datetimes
FORMATS = ("json", "csv", "xlsx")


class AsciiDateField(serializers.DateField):
    """ISO dates in ASCII digits only (Django's date regex takes '２０２６' too)."""

    def to_internal_value(self, value):
        if isinstance(value, str) and not value.isascii():
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


class KpiQuery(serializers.Serializer):
    start = AsciiDateField(required=False, help_text=_("起始日期 (含),默认本月 1 日"), input_formats=["iso-8601"])
    end = AsciiDateField(required=False, help_text=_("结束日期 (含),默认今天"), input_formats=["iso-8601"])
    group_by = serializers.ChoiceField(choices=GROUPS, required=False, help_text=_("分组;不填为整体"))
    area = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text=_("只统计该区域 (区/街道/社区 id) 的案件")
    )
    format = serializers.ChoiceField(
        choices=FORMATS, required=False, help_text=_("json (默认)、csv 或 xlsx:同一组数字,导出为文件")
    )

    def validate(self, attrs):
        today = timezone.localdate()
        start = attrs.get("start") or today.replace(day=1)
        end = attrs.get("end") or today
        for name, value in (("start", start), ("end", end)):
            if not MIN_YEAR <= value.year < MAX_YEAR:  # the statement adds a day to `end`: 9999-12-31 overflows
                bounds = {"field": name, "start": MIN_YEAR, "end": MAX_YEAR}
                message = _("%(field)s 超出范围 (%(start)s 至 %(end)s)") % bounds
                raise InvalidInput(message, field=name, code="out_of_range")
        if end < start:
            raise InvalidInput(_("结束日期不能早于起始日期"), field="end", code="bad_period")
        if (end - start).days >= MAX_DAYS:
            raise InvalidInput(_("统计时段最长 %(n)d 天") % {"n": MAX_DAYS}, field="end", code="period_too_long")
        return {**attrs, "start": start, "end": end}


@extend_schema_field({"anyOf": [{"type": "string"}, {"type": "integer"}]})  # an id, or a period's first day
class KeyField(serializers.Field):
    def to_representation(self, value):
        return value.isoformat() if isinstance(value, date) else value


class KpiRowSerializer(serializers.Serializer):
    key = KeyField(allow_null=True, help_text=_("分组键: 区域/网格/队伍 id 或时段首日;整体为 null"))
    name = serializers.CharField()
    received = serializers.IntegerField(help_text=_("受理数"))
    filed = serializers.IntegerField(help_text=_("立案数"))
    dispatched = serializers.IntegerField(help_text=_("派遣数"))
    sent_back = serializers.IntegerField(help_text=_("退单数"))
    handled = serializers.IntegerField(help_text=_("处置反馈数"))
    handled_on_time = serializers.IntegerField()
    check_failed = serializers.IntegerField(help_text=_("返工数"))
    closed = serializers.IntegerField(help_text=_("结案数"))
    closed_on_time = serializers.IntegerField(help_text=_("按期结案数"))
    first_dispatched = serializers.IntegerField()
    dispatched_on_time = serializers.IntegerField()
    rated = serializers.IntegerField()
    satisfied = serializers.IntegerField()
    due = serializers.IntegerField(help_text=_("时段内应结案数"))
    due_closed = serializers.IntegerField()
    closure_rate = serializers.FloatField(allow_null=True, help_text=_("结案率 = 应结案中已结案 / 应结案"))
    on_time_closure_rate = serializers.FloatField(allow_null=True, help_text=_("按期结案率 = 按期结案 / 结案"))
    rework_rate = serializers.FloatField(allow_null=True, help_text=_("返工率 = 返工 / 处置反馈"))
    send_back_rate = serializers.FloatField(allow_null=True, help_text=_("退单率 = 退单 / 派遣"))
    satisfied_rate = serializers.FloatField(allow_null=True, help_text=_("满意率 = 满意 (≥4 分) / 评价"))
    satisfaction_mean = serializers.FloatField(allow_null=True)
    avg_handling_hours = serializers.FloatField(allow_null=True, help_text=_("平均处置时长 (签收→处置反馈, 小时)"))
    dispatch_on_time_rate = serializers.FloatField(allow_null=True)
    handle_on_time_rate = serializers.FloatField(allow_null=True)


class KpiStockSerializer(serializers.Serializer):
    open = serializers.IntegerField(help_text=_("在办案件数"))
    overdue = serializers.IntegerField(help_text=_("超期案件数 (当前阶段已过时限)"))
    at = serializers.DateTimeField()


class KpiResponseSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    group_by = serializers.CharField(allow_null=True)
    results = KpiRowSerializer(many=True)
    stock = KpiStockSerializer()


class _FileRenderer(BaseRenderer):
    """The 200 answer's `results` as a file (gridmgmt.export); an error answer stays JSON."""

    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is None or response.status_code != 200 or "results" not in data:
            if response is not None:
                response["Content-Type"] = "application/json"
            return JSONRenderer().render(data)
        name = f"kpis-{data['group_by'] or 'all'}-{data['start']}-{data['end']}.{self.format}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return self.file(data)


class KpiCsvRenderer(_FileRenderer):
    media_type = "text/csv"
    format = "csv"

    def file(self, data) -> bytes:
        return export.table_csv(rows=data["results"])


class KpiXlsxRenderer(_FileRenderer):
    media_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    format = "xlsx"

    def file(self, data) -> bytes:
        caption = f"{_('综合评价')} {data['start']} – {data['end']} ({data['group_by'] or _('整体')})"
        return export.workbook_write(sheets=[(str(_("综合评价")), caption, data["results"])])


class KpiView(APIView):
    """Evaluation figures over the cases the user may see; every definition is in gridmgmt/kpi.py.
    ``?format=csv|xlsx``: the same figures as a file, rendered from this very response."""

    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, KpiCsvRenderer, KpiXlsxRenderer]

    def perform_content_negotiation(self, request, force=False):
        # DRF answers an unknown ?format= with 404; here it is a bad parameter (400, with the field).
        fmt = request.query_params.get("format")
        if fmt is not None and fmt not in (*FORMATS, "api") and not force:
            message = _("未知的导出格式: %(f)s (可用: %(all)s)") % {"f": fmt[:20], "all": ", ".join(FORMATS)}
            raise InvalidInput(message, field="format", code="bad_format")
        if force:  # the error answer of an unknown format is JSON
            return (JSONRenderer(), JSONRenderer.media_type)
        return super().perform_content_negotiation(request, force=force)

    @extend_schema(
        summary="综合评价指标 (结案率、按期结案率、返工率、退单率、满意度…)",
        parameters=[KpiQuery],
        responses={
            (200, "application/json"): KpiResponseSerializer,
            (200, KpiCsvRenderer.media_type): OpenApiResponse(OpenApiTypes.STR, description="CSV (UTF-8)"),
            (200, KpiXlsxRenderer.media_type): OpenApiResponse(OpenApiTypes.BINARY, description="Excel"),
            400: OpenApiResponse(description="无效输入"),
        },
    )
    def get(self, request):
        query = KpiQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        tz = timezone.get_current_timezone()
        start = datetime.combine(q["start"], time.min, tzinfo=tz)
        end = datetime.combine(q["end"] + timedelta(days=1), time.min, tzinfo=tz)  # the end date is included
        now = timezone.now()
        with lag_tolerant():  # figures, from the replica when there is one (gridmgmt.dbrouter)
            rows = kpi.kpi_for_user(
                user=request.user, start=start, end=end, group_by=q.get("group_by"), area_id=q.get("area")
            )
            stock = kpi.kpi_stock(cases=access.cases_visible(user=request.user), now=now)
        return Response(
            {
                "start": q["start"],
                "end": q["end"],
                "group_by": q.get("group_by"),
                "results": KpiRowSerializer(rows, many=True).data,
                # The state now, not a flow over the period: open cases and overdue ones (gridmgmt.states).
                "stock": {**stock, "at": now.isoformat()},
            }
        )
