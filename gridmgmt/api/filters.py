"""Query filters of the list endpoints. They only narrow a queryset already scoped by `gridmgmt.access`;
an unknown area, team or malformed bbox is a 400 with a message, never an empty list that hides the typo."""

import math
from datetime import UTC

from django import forms
from django.contrib.gis.geos import Polygon
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from rest_framework_gis.filters import InBBoxFilter

from geo.models import AdminArea, GridCell, ResponsibilityGrid
from gridmgmt import access, queue, states
from gridmgmt.datetimes import EARLIEST, LATEST
from gridmgmt.errors import InvalidInput
from gridmgmt.models import Case, CaseEvent, PatrolTeam


class ChoiceInFilter(filters.BaseInFilter, filters.ChoiceFilter):
    """`?status=filed,dispatched`: a comma-separated list of allowed values."""


class CharInFilter(filters.BaseInFilter, filters.CharFilter):
    pass


class IdFilter(filters.NumberFilter):
    """A row id: a whole number in bigint range (a float or 1e30 is a 400, not a database error)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class BoundedIsoDateTimeField(IsoDateTimeField):
    """ISO 8601 in ASCII, within gridmgmt.datetimes' range, as UTC (PostgreSQL refuses offsets past ±15:59)."""

    def to_python(self, value):
        if isinstance(value, str) and not value.isascii():
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            in_range = EARLIEST <= parsed <= LATEST
        except (OverflowError, TypeError):
            in_range = False
        if not in_range:
            raise forms.ValidationError(_("超出范围 (1900 至 9000)"), code="out_of_range")
        return parsed.astimezone(UTC)


class DateTimeFilter(filters.IsoDateTimeFilter):
    field_class = BoundedIsoDateTimeField


def _by_id_or_code(model, value: str, *, field: str):
    """Look a row up by its code, or by its numeric id when no code matches."""
    value = (value or "").strip()
    row = model.objects.filter(code=value).first()
    if row is None and value.isascii() and value.isdigit() and len(value) <= 18:  # '²'.isdigit(); a bigint id
        row = model.objects.filter(pk=int(value)).first()
    if row is None:
        raise InvalidInput(_("未找到「%(value)s」") % {"value": value}, field=field, code="not_found")
    return row


def area_q(area: AdminArea, *, prefix: str = "") -> Q:
    """Rows inside an administrative area of any level, by the area ids stored on them."""
    field = {
        AdminArea.Level.DISTRICT: "district_id",
        AdminArea.Level.STREET: "street_id",
        AdminArea.Level.COMMUNITY: "community_id",
    }.get(area.level)
    if field is None:  # a city: its districts
        return Q(**{f"{prefix}district__parent_id": area.id})
    return Q(**{f"{prefix}{field}": access.area_id_value(area.id)})  # bigint: the search's indexes


class BBoxFilter(InBBoxFilter):
    """`in_bbox=minlon,minlat,maxlon,maxlat` in WGS-84; a malformed box is a 400 with the field named."""

    def get_filter_bbox(self, request):
        raw = request.query_params.get(self.bbox_param)
        if not raw:
            return None
        try:
            values = [float(n) for n in raw.split(",")]
        except ValueError:
            values = []
        if len(values) != 4 or not all(math.isfinite(v) for v in values):
            raise InvalidInput(
                _("in_bbox 须为 最小经度,最小纬度,最大经度,最大纬度 四个数字"),
                field=self.bbox_param,
                code="bbox_invalid",
            )
        minx, miny, maxx, maxy = values
        if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
            raise InvalidInput(
                _("in_bbox 范围无效:须 最小经度 < 最大经度, 最小纬度 < 最大纬度, 且在 WGS-84 范围内"),
                field=self.bbox_param,
                code="bbox_invalid",
            )
        return Polygon.from_bbox((minx, miny, maxx, maxy))


class CaseFilter(filters.FilterSet):
    code = filters.CharFilter(field_name="code", help_text="案件编号 (exact)")
    area = filters.CharFilter(method="filter_area", help_text="区/街镇/社区 的代码或 id")
    cell = filters.CharFilter(method="filter_cell", help_text="单元网格 代码或 id")
    grid = filters.CharFilter(method="filter_grid", help_text="责任网格 代码或 id")
    status = ChoiceInFilter(field_name="status", choices=Case.Status.choices, help_text="逗号分隔的多个状态")
    source = ChoiceInFilter(field_name="source", choices=Case.Source.choices, help_text="逗号分隔的多个来源")
    urgency = filters.ChoiceFilter(field_name="urgency", choices=Case.Urgency.choices)
    category = CharInFilter(method="filter_category", help_text="类别代码(小类或大类),逗号分隔")
    team = filters.CharFilter(method="filter_team", help_text="处置队伍 代码或 id")
    mine = filters.BooleanFilter(method="filter_mine", help_text="true: 只列出本人上报的案件")
    light = ChoiceInFilter(
        method="filter_light",
        choices=[(v, v) for v in ("green", "yellow", "red", "none")],
        help_text="当前环节的灯: green/yellow/red/none, 逗号分隔",
    )
    reported_after = DateTimeFilter(field_name="reported_at", lookup_expr="gte")
    reported_before = DateTimeFilter(field_name="reported_at", lookup_expr="lt")
    level = filters.MultipleChoiceFilter(
        field_name="level", choices=Case.Level.choices, help_text="处置层级 (1 网格 … 4 区), 可重复: level=3&level=4"
    )
    search = filters.CharFilter(
        method="filter_search",
        help_text="编号前缀, 或描述/地址中的片段 (不区分大小写); 工作人员还可按上报人完整电话查找",
    )
    ordering = filters.ChoiceFilter(
        method="filter_ordering",
        choices=[(f"{sign}{key}", f"{sign}{key}") for key in queue.ORDERINGS for sign in ("", "-")],
        help_text=(
            "deadline: 计时中的案件在前, 时限最早(最超时)在前; light: 红灯→黄灯→绿灯→未计时, 同灯按时限; "
            "age: 最早上报在前; level: 处置层级最高在前, 同层级按时限。前缀 - 反向。默认: 最新上报在前"
        ),
    )
    order = filters.ChoiceFilter(
        method="filter_ordering",
        choices=[("deadline", "deadline"), ("-deadline", "-deadline")],
        help_text="旧参数, 同 ordering=deadline / -deadline",
    )

    class Meta:
        model = Case
        fields: list[str] = []

    def filter_ordering(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        # The server orders, so a page of the queue holds the first cases of the whole queue, not of the
        # newest page (gridmgmt.queue.cases_order).
        return queue.cases_order(qs=qs, ordering=value)

    def filter_search(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        # The reporter's phone is matched for staff only: nobody else may learn which case a number reported.
        staff = self.request is not None and access.is_staff_user(self.request.user)
        return queue.cases_search(qs=qs, text=value, with_phone=staff)

    def filter_area(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(area_q(_by_id_or_code(AdminArea, value, field=name)))

    def filter_cell(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(cell=_by_id_or_code(GridCell, value, field=name))

    def filter_grid(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(responsibility_grid=_by_id_or_code(ResponsibilityGrid, value, field=name))

    def filter_team(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(team=_by_id_or_code(PatrolTeam, value, field=name))

    def filter_mine(self, qs: QuerySet, name: str, value: bool | None) -> QuerySet:
        if not value:
            return qs
        user = getattr(self.request, "user", None)
        return qs.filter(reporter_id=user.id) if user is not None and user.is_authenticated else qs.none()

    def filter_light(self, qs: QuerySet, name: str, value: list[str]) -> QuerySet:
        return states.cases_with_light(qs).filter(light__in=value)

    def filter_category(self, qs: QuerySet, name: str, value: list[str]) -> QuerySet:
        return qs.filter(Q(category__code__in=value) | Q(category__parent__code__in=value))


class TeamFilter(filters.FilterSet):
    area = filters.CharFilter(method="filter_area", help_text="区/街镇 的代码或 id")
    status = ChoiceInFilter(field_name="status", choices=PatrolTeam.Status.choices)

    class Meta:
        model = PatrolTeam
        fields: list[str] = []

    def filter_area(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        area = _by_id_or_code(AdminArea, value, field=name)
        if area.level == AdminArea.Level.COMMUNITY:
            return qs.filter(responsibility_grids__community_id=area.id).distinct()
        return qs.filter(area_q(area))


class CellFilter(filters.FilterSet):
    area = filters.CharFilter(method="filter_area", help_text="区/街镇/社区 的代码或 id")
    grid = filters.CharFilter(method="filter_grid", help_text="责任网格 代码或 id")

    class Meta:
        model = GridCell
        fields = ["code"]

    def filter_area(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(area_q(_by_id_or_code(AdminArea, value, field=name)))

    def filter_grid(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(responsibility_grid=_by_id_or_code(ResponsibilityGrid, value, field=name))


class EventFilter(filters.FilterSet):
    after_id = IdFilter(field_name="id", lookup_expr="gt", help_text="只返回 id 大于此值的事件(续传)")
    case = IdFilter(field_name="case_id")
    type = ChoiceInFilter(field_name="type", choices=CaseEvent.Type.choices)
    at_after = DateTimeFilter(field_name="at", lookup_expr="gte")
    at_before = DateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = CaseEvent
        fields: list[str] = []
