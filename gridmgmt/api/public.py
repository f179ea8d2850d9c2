"""Anonymous endpoints for residents: report a problem, follow it by its code, +1 it, and — with the
`tracking_token` handed out at report time — rate it or say it is not fixed.

The token is random per case (secrets.token_urlsafe), returned once in the report's response and stored only as
its sha256 (Case.tracking_token_hash): nothing derives it from the code or the SECRET_KEY, and a database
reader cannot use it. A replay of the report by the same client (same idempotency scope) gets a fresh token,
which replaces the first. The link in the "closed" SMS carries a second token (Case.sms_token_hash), accepted
wherever the tracking token is (gridmgmt.tokens).

Anonymous reports are attributed to one inactive system account with the resident
role, so the same workflow services (which require an actor who can see the case) serve them; that account
can never log in.
"""

import hashlib

from django.conf import settings
from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, status, throttling
from rest_framework.response import Response
from rest_framework.views import APIView

from gridmgmt import access, clients, services
from gridmgmt.api import serializers as s
from gridmgmt.api.views import idempotency_key_get
from gridmgmt.errors import RoleNotAllowed, TransitionNotAllowed
from gridmgmt.models import Case, CaseEvent, User
from gridmgmt.states import OPEN_STATUSES
from gridmgmt.tokens import tracking_token_check, tracking_token_issue

PUBLIC_REPORTER = "public-reporter"


def idempotency_scope_get(request) -> str:
    """Whose a public report's idempotency key is: the account; else the id the report page keeps in the
    browser (X-Device-Id, random, stored hashed); else the client address. A key from another client is
    another key, so it neither blocks nor returns someone else's case."""
    if request.user.is_authenticated:
        return f"public:user:{request.user.pk}"
    device = request.headers.get("X-Device-Id", "").strip()
    if 16 <= len(device) <= 128 and device.isascii() and device.isprintable():
        return "public:device:" + hashlib.sha256(device.encode()).hexdigest()[:40]
    return "public:ip:" + throttling.BaseThrottle().get_ident(request)[:60]


def public_reporter_get() -> User:
    """The system account anonymous reports are filed under (inactive, no usable password)."""
    user, created = User.objects.get_or_create(
        username=PUBLIC_REPORTER,
        defaults={"role": User.Role.RESIDENT, "is_active": False, "first_name": "匿名居民"},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def case_public_get(*, code: str, token: str | None = None) -> Case:
    """A case by its code for the public (access.cases_public); with the reporter's token, their own case
    even when it is not public (a sensitive category, voided)."""
    if not code or "\x00" in code:
        raise Http404(_("案件不存在"))
    case = None
    if token:
        case = access.cases_public_related(Case.objects.filter(code=code)).first()
        if case is not None and not tracking_token_check(case=case, token=token):
            case = None
    if case is None:
        case = access.cases_public_related(access.cases_public().filter(code=code)).first()
    if case is None:
        raise Http404(_("案件不存在"))
    return case


def case_public_data(case: Case, *, absolute_url=lambda url: url) -> dict:
    """The public view (access.case_public_view) plus the stage history without notes or people."""
    view = access.case_public_view(case)
    events = access.events_public(case).values_list("type", "to_status", "at")
    return {
        "code": view.code,
        "status": view.status,
        "status_label": view.status_label,
        "category": view.category,
        "location": view.location,  # the cell's centre: no exact address for strangers
        "cell": view.cell_code,
        "description": view.description,
        "photos": [{"kind": p.kind, "url": absolute_url(p.url)} for p in view.photos],
        "merged": view.merged,
        "reported_at": view.reported_at,
        "due_at": view.due_at,
        "closed_at": view.closed_at,
        "supporters": view.supporters,
        "satisfaction": view.satisfaction,
        "events": [
            {"type": t, "type_label": CaseEvent.Type(t).label, "status": to_status, "at": at}
            for t, to_status, at in events
        ],
    }


def _public_response(
    request, case: Case, *, status_code: int = status.HTTP_200_OK, token: str | None = None
) -> Response:
    case = access.cases_public_related(Case.objects.filter(pk=case.pk)).get()
    data = case_public_data(case, absolute_url=request.build_absolute_uri)
    if token:
        data["tracking_token"] = token
        return Response(s.PublicReportResultSerializer(data).data, status=status_code)
    return Response(s.PublicCaseSerializer(data).data, status=status_code)


def _token_case(request, code: str, input_class) -> tuple[Case, User, dict]:
    """Validate the request with `input_class`; the case `code` and its reporter, acting through the token they
    were given; the validated data."""
    serializer = input_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    token = data["token"]
    case = case_public_get(code=code, token=token)
    if not tracking_token_check(case=case, token=token):
        raise RoleNotAllowed(_("tracking_token 无效"), field="token", code="bad_token")
    if case.reporter is None:
        raise RoleNotAllowed(_("该案件不支持在线评价"), code="no_reporter")
    return case, case.reporter, data


class _Public(APIView):
    permission_classes = [permissions.AllowAny]
    throttle_classes = [clients.ClientRateThrottle]  # per client address (NUM_PROXIES), in the shared cache
    throttle_scope = "public_action"


class PublicCaseDetail(_Public):
    throttle_scope = "public_read"

    @extend_schema(
        summary="公开查询案件进度 (按编号)",
        parameters=[OpenApiParameter("token", OpenApiTypes.STR, description="tracking_token (敏感类别需要)")],
        responses={200: s.PublicCaseSerializer, 404: OpenApiResponse(description="不存在")},
    )
    def get(self, request, code: str):
        return _public_response(request, case_public_get(code=code, token=request.query_params.get("token")))


class PublicReportCreate(_Public):
    throttle_scope = "public_report"

    @extend_schema(
        summary="居民上报 (匿名可用)",
        request={"multipart/form-data": s.PublicReportInput, "application/json": s.PublicReportInput},
        parameters=[
            OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, description="幂等键")
        ],
        responses={201: s.PublicReportResultSerializer, 200: s.PublicReportResultSerializer, 400: None, 409: None},
    )
    def post(self, request):
        serializer = s.PublicReportInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = request.user
        reporter = user if access.is_resident(user) else public_reporter_get()
        case, created = services.case_report(
            source=Case.Source.RESIDENT,
            category_code=data["category"],
            lon=data["lon"],
            lat=data["lat"],
            description=data["description"],
            reporter=reporter,
            reporter_name=data["reporter_name"],
            reporter_phone=data["reporter_phone"],
            address=data["address"],
            photos=data.get("photos", []),
            idempotency_key=idempotency_key_get(request, data),
            idempotency_scope=idempotency_scope_get(request),
        )
        if not created and (case.source != Case.Source.RESIDENT or case.reporter_id != reporter.id):
            raise TransitionNotAllowed(_("该幂等键已被使用"), field="idempotency_key", code="idempotency_conflict")
        # A replay comes from the same client (the key is scoped to it): it gets a fresh token, the first is void.
        token = tracking_token_issue(case=case)
        return _public_response(
            request, case, status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK, token=token
        )


class PublicCaseSupport(_Public):
    @extend_schema(summary="附议 (+1, 匿名可用)", request=s.NoteInput, responses={200: s.PublicCaseSerializer})
    def post(self, request, code: str):
        serializer = s.NoteInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        case = case_public_get(code=code, token=request.data.get("token"))
        # One +1 per client (account, else address) per case: a repeat is answered but not counted.
        once = {"scope": f"support:{case.pk}", "ident": clients.client_ident(request)}
        if not clients.once(**once, timeout=settings.SUPPORT_ONCE_SECONDS):
            if case.status not in OPEN_STATUSES:
                raise TransitionNotAllowed(_("该案件已办结,不能附议"), code="not_open")
            return _public_response(request, case)
        try:
            case = services.case_support(case_id=case.pk, actor=request.user, note=serializer.validated_data["note"])
        except Exception:
            clients.once_forget(**once)  # not counted (e.g. closed meanwhile): the client may try again
            raise
        return _public_response(request, case)


class PublicCaseRate(_Public):
    @extend_schema(summary="居民评价 (需 tracking_token)", request=s.PublicRateInput, responses=s.PublicCaseSerializer)
    def post(self, request, code: str):
        case, actor, d = _token_case(request, code, s.PublicRateInput)
        case = services.case_rate(case_id=case.pk, actor=actor, satisfaction=d["satisfaction"], note=d["note"])
        return _public_response(request, case)


class PublicCaseReopen(_Public):
    @extend_schema(
        summary="未解决,重新打开 (需 tracking_token)", request=s.PublicReopenInput, responses=s.PublicCaseSerializer
    )
    def post(self, request, code: str):
        case, actor, d = _token_case(request, code, s.PublicReopenInput)
        case = services.case_reopen(case_id=case.pk, actor=actor, reason=d["reason"])
        return _public_response(request, case)
