"""The REST API's staff and citizen endpoints. Views parse, scope through `gridmgmt.access`, call one
service, and render; every rule (roles, states, deadlines) is in `gridmgmt.services`."""

import functools
import logging
import re

from django.conf import settings
from django.contrib.gis.geos import Point
from django.db.models import Count, IntegerField, OuterRef, Prefetch, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from geo.coords import point_parse
from geo.models import GridCell
from geo.selectors import speakers_near
from gridmgmt import access, clients, queue, rules, selectors, services, states
from gridmgmt.api import serializers as s
from gridmgmt.api.filters import BBoxFilter, CaseFilter, CellFilter, EventFilter, TeamFilter
from gridmgmt.api.pagination import EventCursorPagination, FeaturePagination, OnePassPaginator, PagePagination
from gridmgmt.api.speakers import SpeakerSerializer
from gridmgmt.errors import InvalidInput, RoleNotAllowed, TransitionNotAllowed
from gridmgmt.models import Case, CaseEvent, Category, PatrolTeam, User

R = User.Role
SRC = Case.Source
log = logging.getLogger(__name__)

# Above this many cells an unbounded list would be tens of MB of GeoJSON: clients use a bbox or the tiles.
CELL_LIST_MAX = 2000
ERROR_RESPONSES = {
    400: OpenApiResponse(description="无效输入 {code, detail, field}"),
    403: OpenApiResponse(description="角色不允许"),
    404: OpenApiResponse(description="不存在或不在权限范围内"),
    409: OpenApiResponse(description="当前状态不允许此操作,或已被他人更新"),
}


def idempotency_key_get(request, data: dict) -> str | None:
    key = (request.headers.get("Idempotency-Key") or data.get("idempotency_key") or "").strip()
    if len(key) > 64:
        raise InvalidInput(_("幂等键不能超过 64 个字符"), field="idempotency_key")
    return key or None


# What the case shapes show of the related rows: codes and names. Everything else (a district's boundary is
# megabytes, a duplicate is a whole case) stays unread; building the 190-column SELECT cost more than the
# query. Reading the case's own columns only: the re-read after a report went from 21 ms to under 4 ms.
CASE_RELATED_SHOWN = (
    "category__code",
    "category__name",
    "category__name_en",
    "category__parent__code",
    "cell__code",
    "team__code",
    "team__name",
)
CASE_DETAIL_RELATED_SHOWN = (
    *CASE_RELATED_SHOWN,
    "category__closing_condition",
    "district__code",
    "street__code",
    "community__code",
    "responsibility_grid__code",
    "department__name",
    "duplicate_of__code",
)


def _case_columns() -> list[str]:
    return [f.name for f in Case._meta.concrete_fields]


def _if_match_version(request) -> int | None:
    """`If-Match: "7"` (or W/"7") → 7: the case version the client last saw."""
    raw = request.headers.get("If-Match")
    if not raw:
        return None
    m = re.fullmatch(r'\s*(?:W/)?"?(\d+)"?\s*', raw)
    if not m:
        raise InvalidInput(_('If-Match 须为案件版本号, 如 "3"'), field="If-Match")
    return int(m.group(1))


def _point(data: dict) -> Point | None:
    if "lon" in data and "lat" in data:
        return point_parse(data["lon"], data["lat"])
    return None


def _bounded_int(raw, *, default: int, low: int, high: int, field: str) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = low - 1
    if not low <= value <= high:
        raise InvalidInput(
            _("%(field)s 须为 %(low)d–%(high)d 的整数") % {"field": field, "low": low, "high": high}, field=field
        )
    return value


def _parse(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _case_id(pk) -> int:
    try:
        return int(pk)
    except (TypeError, ValueError):
        raise Http404(_("案件不存在")) from None


def _workflow_action(input_class, summary: str, *, if_match: bool = False, **action_kwargs):
    """A workflow POST on one case: the decorated `method(self, request, case_id, data)` gets the id from the URL
    and the validated `input_class` data, and returns the changed case; the response is its detail."""

    def decorate(method):
        @functools.wraps(method)
        def view(self, request, pk=None):
            data = _parse(input_class, request) if input_class else {}
            return self._respond(method(self, request, _case_id(pk), data))

        view = action(detail=True, methods=["post"], **action_kwargs)(view)
        return _action_schema(input_class, summary, if_match=if_match)(view)

    return decorate


def _service_action(name: str, service, input_class, summary: str, **action_kwargs):
    """A workflow action whose validated input goes to the service unchanged, as its keywords (note, reason)."""

    def method(self, request, case_id, d):
        return service(case_id=case_id, actor=request.user, **d)

    method.__name__ = method.__qualname__ = name  # the action's URL and route name come from it
    return _workflow_action(input_class, summary, **action_kwargs)(method)


def _queued(request, data: dict) -> dict:
    """A field action's time on the phone and its idempotency key (services.workflow: a replay writes nothing)."""
    return {"occurred_at": data.get("occurred_at"), "idempotency_key": idempotency_key_get(request, data)}


def _report_time(data: dict):
    """A report queued on a phone offline counts from when it was made there (bounded like field actions)."""
    if data.get("occurred_at") is None:
        return None
    return services.occurred_at_bound(occurred_at=data["occurred_at"], now=timezone.now(), previous_at=None)


def _handling(request, data: dict) -> dict:
    """The note, photos and position of a handling or checking report, with its queue details."""
    return {"note": data["note"], "photos": data.get("photos", []), "location": _point(data), **_queued(request, data)}


def _action_schema(request, summary: str, *, if_match: bool = False):
    parameters = None
    if if_match:
        parameters = [
            OpenApiParameter(
                "If-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, description='案件 version (乐观锁), e.g. "3"'
            )
        ]
    return extend_schema(
        request={"application/json": request, "multipart/form-data": request} if request else None,
        responses={200: s.CaseDetailSerializer, **ERROR_RESPONSES},
        summary=summary,
        parameters=parameters,
    )


@extend_schema_view(
    list=extend_schema(summary="案件列表 (GeoJSON)", responses=s.CaseSerializer(many=True)),
    retrieve=extend_schema(summary="案件详情 (GeoJSON Feature)", responses={200: s.CaseDetailSerializer, 404: None}),
)
class CaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Cases visible to the caller, with the workflow as one POST action per transition."""

    serializer_class = s.CaseSerializer
    pagination_class = FeaturePagination
    filter_backends = [DjangoFilterBackend, BBoxFilter]
    filterset_class = CaseFilter
    bbox_filter_field = "point"
    queryset = Case.objects.none()  # the real one is always scoped per user
    throttle_scope: str | None = None  # an action's own (reporter_phone)

    def get_queryset(self):
        qs = (
            access.cases_visible(user=self.request.user)
            .select_related("category__parent", "cell", "team")
            .order_by("-reported_at", "-id")  # a total order: page boundaries never repeat or skip a case
        )
        if self.action == "retrieve":
            return (
                qs.select_related(
                    "district", "street", "community", "responsibility_grid", "department", "duplicate_of"
                )
                .only(*_case_columns(), *CASE_DETAIL_RELATED_SHOWN)
                .prefetch_related("photos")
            )
        return qs.only(*_case_columns(), *CASE_RELATED_SHOWN)

    def get_serializer_class(self):
        return s.CaseDetailSerializer if self.action == "retrieve" else s.CaseSerializer

    def paginate_queryset(self, queryset):
        # A search reads every match before ordering them: its page and total in one statement.
        if self.request.query_params.get("search", "").strip():
            self.paginator.django_paginator_class = OnePassPaginator
        return super().paginate_queryset(queryset)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    def retrieve(self, request, *args, **kwargs):
        with selectors.joins_as_written():
            response = super().retrieve(request, *args, **kwargs)
        response["ETag"] = f'"{response.data["properties"]["version"]}"'
        return response

    def _respond(self, case: Case, *, status_code: int = status.HTTP_200_OK, written: bool = False) -> Response:
        # The service has already authorised the actor on this case; re-read it unscoped because the
        # action may have moved it out of the actor's own scope (e.g. a team sending it back). `written`: the
        # case is the one just written, with what its detail shows attached (services.case_report).
        fresh = case if written else selectors.case_detail_get(case_id=case.pk)
        data = s.CaseDetailSerializer(fresh, context=self.get_serializer_context()).data
        return Response(data, status=status_code, headers={"ETag": f'"{fresh.version}"'})

    @extend_schema(
        summary="上报案件",
        request={"multipart/form-data": s.CaseReportInput, "application/json": s.CaseReportInput},
        parameters=[
            OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, description="幂等键")
        ],
        responses={201: s.CaseDetailSerializer, 200: s.CaseDetailSerializer, **ERROR_RESPONSES},
    )
    def create(self, request):
        data = _parse(s.CaseReportInput, request)
        user = request.user
        source = rules.report_source_resolve(user=user, source=data.get("source"))
        key = idempotency_key_get(request, data)
        own = access.is_resident(user)
        case, created = services.case_report(
            source=source,
            category_code=data["category"],
            lon=data["lon"],
            lat=data["lat"],
            description=data["description"],
            urgency=data.get("urgency"),
            reporter=user,
            reporter_name=data["reporter_name"] or (user.get_full_name() if own else ""),
            reporter_phone=data["reporter_phone"] or (user.phone if own else ""),
            address=data["address"],
            photos=data.get("photos", []),
            idempotency_key=key,
            idempotency_scope=f"api:user:{user.pk}",  # the key is this account's (services.intake)
            external_id=data["external_id"],
            at=_report_time(data),
            component_code=data["component"],
        )
        if not created and not access.cases_visible(user=user).filter(pk=case.pk).exists():
            # Someone else's key: say it is taken without showing their case.
            raise TransitionNotAllowed(_("该幂等键已被使用"), field="idempotency_key", code="idempotency_conflict")
        if created:
            return self._respond(case, status_code=status.HTTP_201_CREATED, written=True)
        return self._respond(case)

    # --- the desk's queue tabs ---

    @extend_schema(
        summary="案件数量 (按状态; 与列表相同的筛选与搜索)",
        description="派遣台的队列标签: status 给出各标签的状态合集 (如全部在办), by_status 为各状态的数量。",
        responses={200: s.CaseCountsSerializer, 400: OpenApiResponse(description="无效输入")},
        filters=True,  # the list's filters (CaseFilter) in the schema
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def counts(self, request):
        # Every queue tab's count at once: the list's filters (status: the statuses of all the tabs), by status.
        params = request.query_params.copy()
        for name in ("ordering", "order", "page", "page_size"):
            params.pop(name, None)
        scoped = access.cases_visible(user=request.user)
        narrowed = CaseFilter(data=params, queryset=scoped, request=request)
        if not narrowed.is_valid():
            raise translate_validation(narrowed.errors)
        within = BBoxFilter().filter_queryset(request, narrowed.qs, self)  # in_bbox, as the list
        figures = queue.case_counts_by_status(qs=within)
        return Response(s.CaseCountsSerializer(figures).data)

    # --- dispatch help ---

    @extend_schema(
        summary="派遣候选队伍 (按责任网格、距离、工作量、技能排序)",
        parameters=[OpenApiParameter("limit", OpenApiTypes.INT, description="1–50, 默认 10")],
        responses={200: s.CandidatesSerializer, 403: OpenApiResponse(description="仅工作人员"), 404: None},
        filters=False,
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def candidates(self, request, pk=None):
        if not access.is_staff_user(request.user):
            raise RoleNotAllowed(_("只有工作人员可以查看派遣候选"))
        case = access.case_access(user=request.user, case_id=_case_id(pk))
        limit = _bounded_int(request.query_params.get("limit"), default=10, low=1, high=50, field="limit")
        ranked = selectors.dispatch_candidates(case=case, limit=limit)
        data = {"case": case.code, "results": ranked}
        return Response(s.CandidatesSerializer(data).data)

    # --- return visits (回访): the reporter's number, to call ---

    @extend_schema(
        summary="报告人完整电话 (回访拨打; 仅派遣员、值班长; 记入日志, 限频)",
        request=None,
        responses={
            200: s.ReporterPhoneSerializer,
            403: OpenApiResponse(description="无权查看"),
            404: OpenApiResponse(description="案件不存在或没有联系电话"),
            429: OpenApiResponse(description="请求过于频繁"),
        },
        filters=False,
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="reporter-phone",
        pagination_class=None,
        filter_backends=[],
        throttle_classes=[clients.ClientRateThrottle],
        throttle_scope="reporter_phone",
    )
    def reporter_phone(self, request, pk=None):
        # POST: a deliberate act per case (never prefetched or cached), logged by case id — never the number.
        if not access.reporter_phone_may_call(request.user):
            raise RoleNotAllowed(_("只有派遣员和值班长可以查看完整电话"))
        case_id = _case_id(pk)
        phone = access.reporter_phone_access(user=request.user, case_id=case_id)
        log.info("reporter phone shown", extra={"case_id": case_id})
        return Response(s.ReporterPhoneSerializer({"phone": phone}).data)

    # --- street loudspeakers ---

    @extend_schema(
        summary="案件网格及附近的街头喇叭 (按距离; 喊话会送到这些喇叭)",
        responses={200: OpenApiResponse(description="GeoJSON FeatureCollection, 每个喇叭含 distance_m"), 404: None},
        filters=False,
    )
    @action(detail=True, methods=["get"], url_path="speakers", pagination_class=None, filter_backends=[])
    def speakers(self, request, pk=None):
        case = access.case_access(user=request.user, case_id=_case_id(pk))
        near = speakers_near(
            speakers=access.speakers_visible(user=request.user).select_related("cell", "camera"),
            cell_id=case.cell_id,
            radius_m=settings.SPEAKER_NEAR_M,
            limit=settings.SPEAKER_CALL_MAX,
        )
        return Response(SpeakerSerializer(near, many=True).data)

    # --- timeline ---

    @extend_schema(summary="案件时间线", responses=s.CaseEventSerializer(many=True), filters=False)
    @action(
        detail=True,
        methods=["get"],
        serializer_class=s.CaseEventSerializer,
        pagination_class=EventCursorPagination,
        filter_backends=[],
    )
    def events(self, request, pk=None):
        case = access.case_access(user=request.user, case_id=_case_id(pk))
        qs = CaseEvent.objects.filter(case=case).select_related("case", "actor").prefetch_related("photos")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(s.CaseEventSerializer(page, many=True, context={"request": request}).data)

    # --- workflow: one action per service function ---

    @_workflow_action(s.FileInput, "立案")
    def file(self, request, case_id, d):
        return services.case_file(case_id=case_id, actor=request.user, note=d["note"], urgency=d.get("urgency"))

    void = _service_action("void", services.case_void, s.ReasonInput, "作废")

    @_workflow_action(s.DispatchInput, "派遣", if_match=True, url_path="dispatch", url_name="dispatch")
    def dispatch_to_team(self, request, case_id, d):  # not `dispatch`: that name is APIView's request entry point
        expected = d.get("expected_version")
        if expected is None:
            expected = _if_match_version(request)
        return services.case_dispatch(
            case_id=case_id, actor=request.user, team_id=d["team"], note=d["note"], expected_version=expected
        )

    @_workflow_action(s.ArbitrateInput, "审定")
    def arbitrate(self, request, case_id, d):
        return services.case_arbitrate(case_id=case_id, actor=request.user, team_id=d["team"], note=d["note"])

    @_workflow_action(s.LocatedNoteInput, "签收")
    def accept(self, request, case_id, d):
        return services.case_accept(case_id=case_id, actor=request.user, location=_point(d), **_queued(request, d))

    @_workflow_action(s.SendBackInput, "退单", url_path="send-back")
    def send_back(self, request, case_id, d):
        return services.case_send_back(case_id=case_id, actor=request.user, reason=d["reason"], **_queued(request, d))

    @_workflow_action(s.HandleInput, "处置反馈 (须上传处置后照片)")
    def handle(self, request, case_id, d):
        return services.case_handle(case_id=case_id, actor=request.user, **_handling(request, d))

    @_workflow_action(s.HandleInput, "自处理", url_path="self-handle")
    def self_handle(self, request, case_id, d):
        return services.case_self_handle(case_id=case_id, actor=request.user, **_handling(request, d))

    @_workflow_action(s.CheckInput, "核查 (passed=false 返工)")
    def check(self, request, case_id, d):
        return services.case_check(case_id=case_id, actor=request.user, passed=d["passed"], **_handling(request, d))

    @_workflow_action(s.CloseInput, "结案 (12345 工单须填写 hotline_reply)")
    def close(self, request, case_id, d):
        return services.case_close(
            case_id=case_id, actor=request.user, note=d["note"], hotline_reply=d["hotline_reply"]
        )

    @_workflow_action(s.RateInput, "评价 (1–5; 派遣员电话回访: via=phone)")
    def rate(self, request, case_id, d):
        return services.case_rate(
            case_id=case_id, actor=request.user, satisfaction=d["satisfaction"], note=d["note"], via=d["via"]
        )

    reopen = _service_action("reopen", services.case_reopen, s.ReasonInput, "重新打开 (未解决)")

    archive = _service_action("archive", services.case_archive, None, "归档")

    publish = _service_action(
        "publish", services.case_publish, s.NoteInput, "公开 (热线/巡查/摄像头上报的描述与照片对公众可见)"
    )

    urge = _service_action("urge", services.case_urge, s.NoteInput, "督办 (值班长;须填写督办意见 note)")

    urge_answer = _service_action(
        "urge_answer",
        services.case_urge_answer,
        s.NoteInput,
        "回复督办 (被督办的队伍或派遣员; 须填写 note)",
        url_path="urge-answer",
    )

    @_workflow_action(s.ReassignInput, "改派到另一队伍 (须填写原因)", if_match=True)
    def reassign(self, request, case_id, d):
        expected = d.get("expected_version")
        if expected is None:
            expected = _if_match_version(request)
        return services.case_reassign(
            case_id=case_id, actor=request.user, team_id=d["team"], reason=d["reason"], expected_version=expected
        )

    component_link = _service_action(
        "component_link",
        services.case_component_link,
        s.ComponentLinkInput,
        "关联部件 (其养护单位为处置部门, 用于派遣排序)",
        url_path="component-link",
    )

    recall = _service_action("recall", services.case_recall, s.ReasonInput, "撤回到已立案 (须填写原因)")

    reclassify = _service_action(
        "reclassify", services.case_reclassify, s.ReclassifyInput, "改类 (时限按新类别重算; 须填写原因)"
    )

    @extend_schema(
        summary="批量立案/作废/派遣 (逐案结果: 每案一个事务和一个事件, 不能办理的案件单独报告 403/404/409)",
        request=s.BulkInput,
        responses={
            200: OpenApiResponse(description="{results: [{id, ok, code, status} | {id, ok, http_status, error}]}")
        },
    )
    @action(detail=False, methods=["post"], url_path="bulk", pagination_class=None, filter_backends=[])
    def bulk(self, request):
        d = _parse(s.BulkInput, request)
        results = services.cases_bulk_act(
            actor=request.user,
            action=d["action"],
            case_ids=d["cases"],
            note=d["note"],
            reason=d["reason"],
            team_id=d["team"],
        )
        done = sum(1 for r in results if r["ok"])
        return Response({"ok": done, "failed": len(results) - done, "results": results})

    @_workflow_action(s.ExtensionRequestInput, "申请延时", url_path="extension-request")
    def extension_request(self, request, case_id, d):
        return services.case_extension_request(
            case_id=case_id, actor=request.user, hours=d["hours"], reason=d["reason"], **_queued(request, d)
        )

    @_workflow_action(s.ExtensionDecideInput, "审批延时", url_path="extension-decide")
    def extension_decide(self, request, case_id, d):
        return services.case_extension_decide(case_id=case_id, actor=request.user, approve=d["approve"], note=d["note"])

    park = _service_action("park", services.case_park, s.ReasonInput, "挂账")

    resume = _service_action("resume", services.case_resume, s.NoteInput, "恢复")

    @_workflow_action(s.MergeInput, "合并到另一案件")
    def merge(self, request, case_id, d):
        into = d["into"].strip()
        target = access.cases_visible(user=request.user).filter(code=into).values_list("pk", flat=True).first()
        if target is None:
            if not (into.isascii() and into.isdigit()) or len(into) > 18:  # '²'.isdigit(); a bigint id
                raise InvalidInput(_("目标案件不存在或已办结"), field="into")
            target = int(into)
        return services.case_merge(case_id=case_id, actor=request.user, into_id=target, note=d["note"])

    @_workflow_action(s.NoteInput, "附议 (+1)")
    def support(self, request, case_id, d):
        case = access.case_access(user=request.user, case_id=case_id)
        return services.case_support(case_id=case.pk, actor=request.user, note=d["note"])


@extend_schema(summary="事件流 (按权限范围; after_id 续传)")
class EventList(generics.ListAPIView):
    serializer_class = s.CaseEventSerializer
    pagination_class = EventCursorPagination
    filterset_class = EventFilter

    def get_queryset(self):
        visible = access.cases_visible(user=self.request.user)
        return (
            CaseEvent.objects.filter(case__in=visible.values("pk"))
            .select_related("case", "actor")
            .prefetch_related("photos")
        )


def _open_cases_subquery():
    open_counts = (
        Case.objects.filter(team=OuterRef("pk"), status__in=states.OPEN_STATUSES)
        .order_by()
        .values("team")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(open_counts, output_field=IntegerField()), 0)


@extend_schema_view(
    list=extend_schema(summary="巡查队伍 (GeoJSON, 最近位置与未办结工作量)"),
    retrieve=extend_schema(summary="巡查队伍详情"),
)
class TeamViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = s.TeamSerializer
    pagination_class = FeaturePagination
    filterset_class = TeamFilter
    queryset = PatrolTeam.objects.none()

    def get_queryset(self):
        return (
            access.teams_visible(user=self.request.user)
            .select_related("district", "street", "department")
            .prefetch_related("skills")
            .annotate(open_cases=_open_cases_subquery())
            .order_by("code")
        )


@extend_schema_view(
    list=extend_schema(
        summary="单元网格 (GeoJSON; 须按 in_bbox 查询)",
        description=(
            f"无 in_bbox 且超过 {CELL_LIST_MAX} 个网格时返回 400;"
            "整区浏览请用矢量瓦片 /tiles/cells/{z}/{x}/{y}.pbf"
        ),
    ),
)
class CellViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = s.CellSerializer
    pagination_class = FeaturePagination
    filter_backends = [DjangoFilterBackend, BBoxFilter]
    filterset_class = CellFilter
    bbox_filter_field = "geom"
    bbox_filter_include_overlapping = True
    queryset = GridCell.objects.none()

    def get_queryset(self):
        return access.cells_visible(user=self.request.user).select_related(
            "district", "street", "community", "responsibility_grid"
        )

    def list(self, request, *args, **kwargs):
        if not request.query_params.get(BBoxFilter.bbox_param):
            if self.filter_queryset(self.get_queryset()).count() > CELL_LIST_MAX:
                tiles = reverse("geo:cell-tile", kwargs={"z": 0, "x": 0, "y": 0}).replace("/0/0/0.", "/{z}/{x}/{y}.")
                raise InvalidInput(
                    _("网格太多,请用 in_bbox=最小经度,最小纬度,最大经度,最大纬度 限定范围,或使用矢量瓦片 %(tiles)s")
                    % {"tiles": tiles},
                    field=BBoxFilter.bbox_param,
                    code="bbox_required",
                )
        return super().list(request, *args, **kwargs)


@extend_schema(summary="案件类别树 (大类 → 小类, 含时限)")
class CategoryList(generics.ListAPIView):
    serializer_class = s.CategoryTreeSerializer
    pagination_class = PagePagination
    permission_classes = [permissions.AllowAny]

    def get_queryset(self):
        children = Category.objects.filter(is_active=True).order_by("code")
        return (
            Category.objects.filter(parent__isnull=True, is_active=True)
            .prefetch_related(Prefetch("children", queryset=children, to_attr="active_children"))
            .order_by("code")
        )


class MeView(APIView):
    @extend_schema(summary="当前用户 (角色、辖区、队伍)", responses=s.MeSerializer)
    def get(self, request):
        user = User.objects.select_related("area", "team", "department").get(pk=request.user.pk)
        return Response(s.MeSerializer(user).data)


class DuplicatesView(APIView):
    """ "Has this already been reported?": open cases of the same category nearby, nearest first.

    Staff get the cases they may see (GeoJSON, with distance and an optional radius up to 5 km); everyone
    else — residents and anonymous reporters — gets only what the public tracking page shows, so they can
    +1 an existing case instead of filing a duplicate (access.case_public_view: sensitive categories left out,
    near and distance measured from cell centres, distance in 10 m steps)."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = [clients.AnonRateThrottle]  # anonymous callers, per address
    throttle_scope = "duplicates"

    @extend_schema(
        summary="疑似重复案件 (同类、附近、时间窗内)",
        parameters=[s.DuplicatesQuery],
        responses={200: s.DuplicateCaseSerializer(many=True), 400: OpenApiResponse(description="无效输入")},
        description="工作人员: GeoJSON FeatureCollection (DuplicateCase); 其他人: {results: [PublicDuplicate]}",
    )
    def get(self, request):
        query = s.DuplicatesQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        staff = access.is_staff_user(request.user)
        if staff:  # scoped before the limit: an area-bound dispatcher gets `limit` cases of their own area
            scope = access.cases_visible(user=request.user).select_related("category__parent", "cell", "team")
        else:  # the public view: measured from cell centres, never from the points
            scope = access.cases_public_related(access.cases_public())
        found = selectors.case_duplicates_find(
            category_code=q["category"],
            lon=q["lon"],
            lat=q["lat"],
            exclude_id=q.get("exclude"),
            limit=q["limit"],
            radius_m=q.get("radius") if staff else None,
            scope=scope,
            by_cell=not staff,
        )
        if staff:
            for case in found:
                case.distance_m = round(float(case.distance_m), 1)
            context = {"request": request, "now": timezone.now()}
            return Response(s.DuplicateCaseSerializer(found, many=True, context=context).data)
        items = []
        for case in found:
            view = access.case_public_view(case)
            items.append(
                {
                    "code": view.code,
                    "status": view.status,
                    "status_label": view.status_label,
                    "category": view.category,
                    "location": view.location,
                    "distance_m": access.distance_public_m(case.distance_m),
                    "supporters": view.supporters,
                    "reported_at": view.reported_at,
                }
            )
        return Response({"results": s.PublicDuplicateSerializer(items, many=True).data})
