"""The desk's own lists: the 督办 ledger, the 回访 (return-visit) list and the component (部件) layer.

Views parse, scope (gridmgmt.access through gridmgmt.desk_selectors) and render; the actions these screens
take are the workflow's (POST /api/cases/{id}/urge-answer/, /rate/ with via=phone)."""

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from geo.models import Component
from gridmgmt import access, desk_selectors
from gridmgmt.api.filters import BBoxFilter
from gridmgmt.api.pagination import FeaturePagination, PagePagination
from gridmgmt.api.serializers import CaseSerializer
from gridmgmt.errors import InvalidInput, RoleNotAllowed
from gridmgmt.models import CaseEvent
from gridmgmt.phones import phone_mask


def _staff_only(request) -> None:
    if not access.is_staff_user(request.user):
        raise RoleNotAllowed(_("只有工作人员可以查看"))


class UrgeLedgerSerializer(serializers.ModelSerializer):
    case_id = serializers.IntegerField(source="case.id")
    case_code = serializers.CharField(source="case.code")
    case_status = serializers.CharField(source="case.status")
    urged_by = serializers.CharField(source="actor.username", default=None, allow_null=True)
    party = serializers.CharField(source="data.party", default=None, allow_null=True, help_text="team | dispatchers")
    team = serializers.CharField(source="data.team", default=None, allow_null=True)
    answered = serializers.SerializerMethodField()
    answer_at = serializers.DateTimeField(allow_null=True)
    answer_note = serializers.CharField(allow_null=True)
    answer_by = serializers.CharField(allow_null=True)

    class Meta:
        model = CaseEvent
        fields = (
            "id", "at", "note", "case_id", "case_code", "case_status", "urged_by", "party", "team",
            "answered", "answer_at", "answer_note", "answer_by",
        )  # fmt: skip

    def get_answered(self, obj) -> bool:
        return obj.answer_at is not None


@extend_schema(
    summary="督办台账 (督办与回复; answered=true|false 筛选)",
    parameters=[OpenApiParameter("answered", bool, description="true: 已回复; false: 待回复")],
)
class UrgeLedger(generics.ListAPIView):
    serializer_class = UrgeLedgerSerializer
    pagination_class = PagePagination
    filter_backends = []

    def get_queryset(self):
        _staff_only(self.request)
        raw = self.request.query_params.get("answered")
        if raw not in (None, "", "true", "false"):
            raise InvalidInput(_("answered 只能是 true 或 false"), field="answered")
        answered = None if raw in (None, "") else raw == "true"
        return desk_selectors.urges_ledger(user=self.request.user, answered=answered)


class ReturnVisitSerializer(CaseSerializer):
    reporter_name = serializers.CharField()
    reporter_phone = serializers.SerializerMethodField(help_text="已脱敏, 与案件详情相同")

    class Meta(CaseSerializer.Meta):
        fields = (*CaseSerializer.Meta.fields, "reporter_name", "reporter_phone")
        read_only_fields = fields

    def get_reporter_phone(self, obj) -> str:
        return phone_mask(obj.reporter_phone)


@extend_schema(summary="待回访案件 (已结案、未评价、有联系电话; 结案最早的在前)")
class ReturnVisitList(generics.ListAPIView):
    serializer_class = ReturnVisitSerializer
    pagination_class = FeaturePagination
    filter_backends = []

    def get_queryset(self):
        _staff_only(self.request)
        return desk_selectors.return_visits_pending(user=self.request.user)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}


class ComponentSerializer(GeoFeatureModelSerializer):
    major_class_label = serializers.CharField(source="get_major_class_display", read_only=True)
    category = serializers.CharField(source="category.code", default=None, allow_null=True)
    maintainer = serializers.CharField(source="maintainer.name", default=None, allow_null=True)

    class Meta:
        model = Component
        geo_field = "location"
        fields = ("id", "code", "name", "major_class", "major_class_label", "category", "maintainer", "status")


class ComponentList(APIView):
    """部件 in a box (the desk draws them from zoom 16): GeoJSON, at most COMPONENTS_MAX; a case names one by code
    (POST /api/cases/ `component`) and its maintainer routes the case."""

    serializer_class = ComponentSerializer

    @extend_schema(
        summary="部件 (GeoJSON; 须按 in_bbox 查询)",
        responses={
            200: ComponentSerializer(many=True),
            400: OpenApiResponse(description="无效输入 {code, detail, field}"),
            403: OpenApiResponse(description="仅工作人员"),
        },
        parameters=[OpenApiParameter("in_bbox", str, required=True, description="最小经度,最小纬度,最大经度,最大纬度")],
    )
    def get(self, request):
        _staff_only(request)
        bbox = BBoxFilter().get_filter_bbox(request)
        if bbox is None:
            raise InvalidInput(_("请用 in_bbox 限定范围"), field="in_bbox", code="bbox_required")
        found = list(desk_selectors.components_in_bbox(user=request.user, bbox=bbox))
        if len(found) > desk_selectors.COMPONENTS_MAX:
            raise InvalidInput(_("范围内部件太多,请放大地图"), field="in_bbox", code="too_many")
        return Response(ComponentSerializer(found, many=True).data)
