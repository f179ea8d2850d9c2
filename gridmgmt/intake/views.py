"""Thin edges of the intake channels: parse, authenticate, call the service, shape the answer."""

from django.contrib.auth.models import AnonymousUser
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, status
from rest_framework import serializers as s
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gridmgmt.api.parsers import FormParser, JSONParser
from gridmgmt.errors import DomainError
from gridmgmt.intake import selectors, services
from gridmgmt.models import CameraSystem, Case
from gridmgmt.phones import phone_mask

ERROR = inline_serializer(
    "IntakeError", {"code": s.CharField(), "detail": s.CharField(), "field": s.CharField(allow_null=True)}
)
CAMERA_ALARM = inline_serializer(
    "CameraAlarm",
    {
        "camera": s.CharField(help_text="摄像头编号 (geo.Camera.code)"),
        "alarm_id": s.CharField(max_length=56, help_text="告警在本系统内的唯一编号;重试时不变"),
        "category": s.CharField(required=False, help_text="事件类别代码,如 E0404;或改用 label"),
        "label": s.CharField(required=False, help_text="算法标签,按本系统的 label_map 映射为类别"),
        "time": s.DateTimeField(required=False, help_text="告警时间 ISO 8601;缺省为收到时间"),
        "confidence": s.FloatField(required=False, min_value=0, max_value=1),
        "description": s.CharField(required=False),
        "snapshot": s.ImageField(required=False, help_text="抓拍图片 (multipart)"),
        "snapshot_base64": s.CharField(required=False, help_text="抓拍图片 base64 或 data: URL (JSON)"),
    },
)
CAMERA_RESULT = inline_serializer(
    "CameraAlarmResult", {"case": s.CharField(), "created": s.BooleanField(), "status": s.CharField()}
)
HOTLINE_ORDER = inline_serializer(
    "HotlineOrder",
    {
        "order_no": s.CharField(max_length=56, help_text="12345 工单号(唯一)"),
        "lon": s.FloatField(),
        "lat": s.FloatField(),
        "datum": s.ChoiceField(choices=["wgs84", "gcj02", "bd09"], required=False, default="wgs84"),
        "address": s.CharField(required=False, help_text="来电方已地理编码的地址"),
        "category": s.CharField(help_text="类别代码"),
        "text": s.CharField(help_text="工单内容"),
        "urgency": s.ChoiceField(choices=["normal", "urgent"], required=False),
        "caller_phone": s.CharField(required=False, help_text="来电号码:保存,但任何输出只显示掩码"),
        "caller_name": s.CharField(required=False),
    },
)
HOTLINE_STATUS = inline_serializer(
    "HotlineOrderStatus",
    {
        "order_no": s.CharField(),
        "case": s.CharField(),
        "status": s.CharField(),
        "status_label": s.CharField(),
        "closed": s.BooleanField(),
        "reply": s.CharField(allow_null=True),
        "replied_at": s.DateTimeField(allow_null=True),
        "caller_phone": s.CharField(allow_null=True, help_text="掩码,如 138****5678"),
        "created": s.BooleanField(required=False, help_text="仅 POST:是否新建了案件"),
    },
)


def _error(*, code: str, detail, field: str | None = None, status_code: int) -> Response:
    # The same shape as the rest of the API: {"code", "detail", "field"}.
    return Response({"code": code, "detail": str(detail), "field": field}, status=status_code)


class IntakeView(APIView):
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def handle_exception(self, exc):
        if isinstance(exc, DomainError):
            return _error(code=exc.code, detail=exc.message, field=exc.field, status_code=exc.status)
        if isinstance(exc, Http404):
            return _error(code="not_found", detail=exc.args[0] if exc.args else _("不存在"), status_code=404)
        response = super().handle_exception(exc)  # keeps the status and WWW-Authenticate of DRF's errors
        if isinstance(exc, exceptions.APIException):
            detail = exc.detail if isinstance(exc.detail, str) else _("请求无效")
            code = getattr(exc.detail, "code", None) or exc.default_code
            response.data = {"code": code, "detail": str(detail), "field": None}
        return response

    def body(self, request: Request) -> dict:
        if not isinstance(request.data, dict):
            raise DomainError(_("请求体须为 JSON 对象或表单"), code="invalid")
        return request.data


# --- camera alarms ---------------------------------------------------------------------------------------


class CameraSystemAuthentication(BaseAuthentication):
    """`Authorization: Token <CameraSystem.token>`: the video platform itself, not a user."""

    keyword = "Token"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("令牌格式无效"))
        try:
            token = parts[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed(_("令牌格式无效")) from None
        system = services.camera_system_authenticate(token=token)
        if system is None:
            raise exceptions.AuthenticationFailed(_("未知或已停用的视频系统令牌"))
        return AnonymousUser(), system

    def authenticate_header(self, request):
        return self.keyword


class CameraSystemAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = CameraSystemAuthentication
    name = "cameraSystemToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Token <视频系统令牌>"}


class IsCameraSystem(BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.auth, CameraSystem)


class CameraAlarmView(IntakeView):
    """POST one alarm: 201 with a new case, 200 when it joins an open case or repeats an alarm id."""

    authentication_classes = [CameraSystemAuthentication]
    permission_classes = [IsCameraSystem]

    @extend_schema(
        request={"multipart/form-data": CAMERA_ALARM, "application/json": CAMERA_ALARM},
        responses={201: CAMERA_RESULT, 200: CAMERA_RESULT, 400: ERROR, 401: ERROR, 404: ERROR},
    )
    def post(self, request: Request) -> Response:
        data = self.body(request)
        snapshots = list(request.FILES.getlist("snapshot"))
        encoded = data.get("snapshot_base64")
        if encoded:
            if not isinstance(encoded, str):
                return _error(
                    code="invalid", detail=_("抓拍图片须为 base64 字符串"), field="snapshot_base64", status_code=400
                )
            snapshots.append(services.snapshot_decode(encoded))
        result = services.camera_alarm_ingest(
            system=request.auth,
            camera_code=data.get("camera"),
            alarm_id=data.get("alarm_id"),
            category=data.get("category") or "",
            label=data.get("label") or "",
            at=data.get("time"),
            confidence=data.get("confidence"),
            description=data.get("description") or "",
            snapshots=snapshots,
        )
        body = {"case": result.case.code, "created": result.created, "status": result.case.status}
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


# --- camera heartbeats -----------------------------------------------------------------------------------

CAMERA_HEARTBEAT = inline_serializer(
    "CameraHeartbeat",
    {
        "online": s.ListField(child=s.CharField(), required=False, help_text="在线的摄像头编号"),
        "offline": s.ListField(child=s.CharField(), required=False, help_text="离线的摄像头编号(可选)"),
        "cameras": s.ListField(
            child=inline_serializer(
                "CameraHeartbeatItem",
                {"camera": s.CharField(), "status": s.ChoiceField(choices=["online", "offline"])},
            ),
            required=False,
            help_text="逐个摄像头的状态(可代替 online/offline)",
        ),
    },
)
CAMERA_HEARTBEAT_RESULT = inline_serializer(
    "CameraHeartbeatResult",
    {
        "seen": s.IntegerField(help_text="本系统辖区内被报告的摄像头数"),
        "changed": s.ListField(
            child=inline_serializer(
                "CameraStatusChange",
                {"camera": s.CharField(), "from_status": s.CharField(), "status": s.CharField()},
            )
        ),
        "unknown": s.ListField(child=s.CharField(), help_text="不是本系统摄像头的编号(未登记或不在辖区内)"),
    },
)


class CameraHeartbeatView(IntakeView):
    """POST which of the system's cameras are online: unnamed cameras are left to the timeout
    (CAMERA_OFFLINE_AFTER, `manage.py cameras_timeout`)."""

    authentication_classes = [CameraSystemAuthentication]
    permission_classes = [IsCameraSystem]
    parser_classes = [JSONParser]

    @extend_schema(
        request={"application/json": CAMERA_HEARTBEAT},
        responses={200: CAMERA_HEARTBEAT_RESULT, 400: ERROR, 401: ERROR, 404: ERROR},
    )
    def post(self, request: Request) -> Response:
        data = self.body(request)
        statuses = services.heartbeat_parse(
            online=data.get("online"), offline=data.get("offline"), cameras=data.get("cameras")
        )
        result = services.camera_heartbeat_receive(system=request.auth, statuses=statuses)
        return Response({"seen": result.seen, "changed": result.changed, "unknown": result.unknown})


# --- 12345 hotline ---------------------------------------------------------------------------------------


def hotline_body(case: Case) -> dict:
    """What the 12345 system sees: state and reply; the caller's phone only masked."""
    return {
        "order_no": case.external_id,
        "case": case.code,
        "status": case.status,
        "status_label": Case.Status(case.status).label,
        "closed": case.closed_at is not None,
        "reply": case.hotline_reply or None,
        "replied_at": timezone.localtime(case.replied_at).isoformat() if case.replied_at else None,
        "caller_phone": phone_mask(case.reporter_phone) if case.reporter_phone else None,
    }


class HotlineOrderView(IntakeView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=HOTLINE_ORDER,
        responses={201: HOTLINE_STATUS, 200: HOTLINE_STATUS, 400: ERROR, 403: ERROR, 409: ERROR},
    )
    def post(self, request: Request) -> Response:
        data = self.body(request)
        case, created = services.hotline_order_receive(
            operator=request.user,
            order_no=data.get("order_no"),
            lon=data.get("lon"),
            lat=data.get("lat"),
            datum=data.get("datum") or "wgs84",
            address=data.get("address") or "",
            caller_phone=data.get("caller_phone") or "",
            caller_name=data.get("caller_name") or "",
            category_code=data.get("category"),
            text=data.get("text"),
            urgency=data.get("urgency") or None,
        )
        return Response(
            {**hotline_body(case), "created": created},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class HotlineOrderDetailView(IntakeView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: HOTLINE_STATUS, 404: ERROR})
    def get(self, request: Request, order_no: str) -> Response:
        return Response(hotline_body(selectors.hotline_order_get(user=request.user, order_no=order_no)))
