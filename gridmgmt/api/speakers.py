"""Street loudspeakers (街头语音呼叫喇叭): `GET /api/speakers/` (GeoJSON, the caller's area, like cases),
`GET /api/speaker-calls/` (the call log) and `POST /api/speaker-calls/` (speak to the street). Who may call
is gridmgmt.rules' (`speaker_call_check`), what they may see gridmgmt.access'; the call itself is
gridmgmt.services.speakers.speaker_call."""

from django.utils.translation import gettext as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from geo.models import Speaker
from gridmgmt import access
from gridmgmt.api.exceptions import error_body
from gridmgmt.api.filters import BBoxFilter
from gridmgmt.api.pagination import FeaturePagination, PagePagination
from gridmgmt.loudspeakers import delivery_message
from gridmgmt.models import SPEAKER_REPEAT_MAX, SpeakerCall
from gridmgmt.services.speakers import TEXT_MAX, speaker_call

ERRORS = {
    400: OpenApiResponse(description="无效输入 {code, detail, field}"),
    401: OpenApiResponse(description="未登录或令牌无效"),
    403: OpenApiResponse(description="角色不允许"),
    404: OpenApiResponse(description="不存在、不在权限范围内,或附近没有可用的喇叭"),
    409: OpenApiResponse(description="案件已办结"),
}


class SpeakerSerializer(GeoFeatureModelSerializer):
    gateway_label = serializers.CharField(source="get_gateway_display", read_only=True)
    cell = serializers.CharField(source="cell.code", read_only=True, default=None, allow_null=True)
    camera = serializers.CharField(source="camera.code", read_only=True, default=None, allow_null=True)
    distance_m = serializers.SerializerMethodField()

    class Meta:
        model = Speaker
        geo_field = "location"
        fields = ("id", "location", "code", "name", "gateway", "gateway_label", "is_active", "cell", "camera")
        fields = (*fields, "distance_m")
        read_only_fields = fields

    def get_distance_m(self, obj) -> float | None:
        """Metres to the cell asked about (a case's speakers), else null."""
        d = getattr(obj, "distance_m", None)
        return round(d, 1) if d is not None else None


class SpeakerFilter(filters.FilterSet):
    cell = filters.NumberFilter(field_name="cell_id", help_text="单元网格 id")
    active = filters.BooleanFilter(field_name="is_active")

    class Meta:
        model = Speaker
        fields: list[str] = []


@extend_schema_view(
    list=extend_schema(summary="街头喇叭 (GeoJSON, 按权限范围)"),
    retrieve=extend_schema(summary="街头喇叭详情"),
)
class SpeakerViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = SpeakerSerializer
    pagination_class = FeaturePagination
    filter_backends = [filters.DjangoFilterBackend, BBoxFilter]
    filterset_class = SpeakerFilter
    bbox_filter_field = "location"
    queryset = Speaker.objects.none()
    lookup_value_regex = r"[0-9]{1,18}"

    def get_queryset(self):
        return (
            access.speakers_visible(user=self.request.user)
            .select_related("cell", "camera")
            .only(*(f.name for f in Speaker._meta.concrete_fields), "cell__code", "camera__code")
            .order_by("code")
        )


class SpeakerCallInput(serializers.Serializer):
    case = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1, help_text="案件 id")
    cell = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1, help_text="单元网格 id")
    speaker = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="喇叭 id;不填则用网格(或案件网格)及附近的全部喇叭"
    )
    preset = serializers.CharField(required=False, max_length=16, help_text="类别代码:用该类别的预设喊话")
    text = serializers.CharField(required=False, allow_blank=True, max_length=TEXT_MAX, help_text="自定义喊话内容")
    repeat = serializers.IntegerField(required=False, default=1, min_value=1, max_value=SPEAKER_REPEAT_MAX)


class SpeakerResultSerializer(serializers.Serializer):
    speaker = serializers.CharField()
    name = serializers.CharField()
    ok = serializers.BooleanField()
    error = serializers.CharField(allow_null=True, help_text="timeout, http, connect, synthesis")
    status = serializers.IntegerField(allow_null=True)
    ms = serializers.IntegerField()
    message = serializers.CharField(help_text="结果说明 (请求的语言)")


class SpeakerCallSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", read_only=True)
    case_code = serializers.CharField(source="case.code", read_only=True, default=None, allow_null=True)
    outcome_label = serializers.CharField(source="get_outcome_display", read_only=True)
    results = serializers.SerializerMethodField()
    detail = serializers.SerializerMethodField()

    class Meta:
        model = SpeakerCall
        fields = ("id", "at", "actor", "case", "case_code", "cell", "text", "repeat", "outcome", "outcome_label")
        fields = (*fields, "results", "detail")
        read_only_fields = fields

    @extend_schema_field(SpeakerResultSerializer(many=True))
    def get_results(self, obj) -> list[dict]:
        return [{**r, "message": delivery_message(r)} for r in obj.results]

    def get_detail(self, obj) -> str:
        """The outcome in one sentence, in the request's language."""
        return call_summary(obj)


def call_summary(call: SpeakerCall) -> str:
    total = len(call.results)
    ok = sum(1 for r in call.results if r["ok"])
    failed = "; ".join(f"{r['name']}: {delivery_message(r)}" for r in call.results if not r["ok"])
    if ok == total:
        return _("已送达 %(n)d 个喇叭") % {"n": total}
    if ok:
        return _("%(ok)d/%(n)d 个喇叭已送达;未送达:%(failed)s") % {"ok": ok, "n": total, "failed": failed}
    return _("喊话失败,没有喇叭收到:%(failed)s") % {"failed": failed}


class SpeakerCallFilter(filters.FilterSet):
    case = filters.NumberFilter(field_name="case_id", help_text="案件 id")
    outcome = filters.ChoiceFilter(choices=SpeakerCall.Outcome.choices)

    class Meta:
        model = SpeakerCall
        fields: list[str] = []


@extend_schema_view(
    list=extend_schema(
        summary="喇叭喊话记录 (最新在前, 按权限范围)", responses={200: SpeakerCallSerializer(many=True)}
    ),
)
class SpeakerCallViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = SpeakerCallSerializer
    pagination_class = PagePagination
    filterset_class = SpeakerCallFilter
    queryset = SpeakerCall.objects.none()

    def get_queryset(self):
        return access.speaker_calls_visible(user=self.request.user).select_related("actor", "case").order_by("-id")

    @extend_schema(
        summary="街头喇叭喊话 (预设或自定义内容, 播放 N 次)",
        request=SpeakerCallInput,
        responses={
            201: SpeakerCallSerializer,
            **ERRORS,
            502: OpenApiResponse(description="没有喇叭收到 {code, detail, field, call}: 已记录为失败的喊话"),
        },
    )
    def create(self, request):
        data = SpeakerCallInput(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        call = speaker_call(
            actor=request.user,
            text=d.get("text"),
            preset=d.get("preset"),
            repeat=d["repeat"],
            case_id=d.get("case"),
            cell_id=d.get("cell"),
            speaker_id=d.get("speaker"),
        )
        body = SpeakerCallSerializer(call, context=self.get_serializer_context()).data
        if call.outcome == SpeakerCall.Outcome.FAILED:
            # Logged, but nobody on the street heard it: the caller is told so, plainly.
            error = error_body(code="speaker_failed", detail=body["detail"], field=None, call=body)
            return Response(error, status=status.HTTP_502_BAD_GATEWAY)
        return Response(body, status=status.HTTP_201_CREATED)
