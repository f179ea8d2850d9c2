"""Query filters of the list endpoints. They only narrow a queryset already scoped by `gridmgmt.access`;
an unknown area, team or malformed bbox is a 400 with a message, never an empty list that hides the typo."""

import math
from datetime import UTC

from django import forms
from django.contrib.gis.geos import Polygon
from django.db.models import Case as CaseWhen
from django.db.models import F, IntegerField, Q, QuerySet, When
from django.utils.translation import gettext as _
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from rest_framework_gis.filters import InBBoxFilter

from geo.models import AdminArea, GridCell, ResponsibilityGrid
from gridmgmt import states
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
    return Q(**{f"{prefix}{field}": area.id})


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
    light = ChoiceInFilter(
        method="filter_light",
        choices=[(v, v) for v in ("green", "yellow", "red", "none")],
        help_text="当前环节的灯: green/yellow/red/none, 逗号分隔",
    )
    reported_after = DateTimeFilter(field_name="reported_at", lookup_expr="gte")
    reported_before = DateTimeFilter(field_name="reported_at", lookup_expr="lt")
    order = filters.ChoiceFilter(
        method="filter_order",
        choices=[("deadline", "deadline"), ("-deadline", "-deadline")],
        help_text="deadline: 当前环节时限最早(最超时)在前,无时限的在后; -deadline: 反之。默认: 最新上报在前",
    )

    class Meta:
        model = Case
        fields: list[str] = []

    def filter_order(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        # The server orders, so a page of the queue holds the most urgent cases of all, not of the newest page:
        # cases whose clock runs first (a parked case's old deadline is paused, not overdue), by deadline;
        # reported_at and id complete a total order (page boundaries never repeat or skip a case).
        # sorted: the same SQL in every process (a frozenset's order changes with the hash seed), so it matches
        # the expression index case_queue_order (migration 0016) and the planner walks it instead of sorting.
        running = CaseWhen(
            When(status__in=sorted(states.CLOCKED_STATUSES), then=0), default=1, output_field=IntegerField()
        )
        if value == "deadline":
            return qs.order_by(running, F("deadline_at").asc(nulls_last=True), "reported_at", "id")
        return qs.order_by(running, F("deadline_at").desc(nulls_last=True), "-reported_at", "-id")

    def filter_area(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(area_q(_by_id_or_code(AdminArea, value, field=name)))

    def filter_cell(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(cell=_by_id_or_code(GridCell, value, field=name))

    def filter_grid(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(responsibility_grid=_by_id_or_code(ResponsibilityGrid, value, field=name))

    def filter_team(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(team=_by_id_or_code(PatrolTeam, value, field=name))

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
