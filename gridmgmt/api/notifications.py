"""The inbox: `GET /api/notifications/` (the caller's own, newest first, `?unread=1`), `POST
/api/notifications/{id}/read/` and `POST /api/notifications/read-all/`. Every answer carries the caller's unread
count, the figure a face's badge shows. Who is told of what is gridmgmt.notify's; another person's notification
looks like none (404)."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from gridmgmt import notify
from gridmgmt.api.pagination import PagePagination
from gridmgmt.models import Notification

ERRORS = {
    401: OpenApiResponse(description="未登录或令牌无效"),
    404: OpenApiResponse(description="通知不存在 (或属于他人)"),
}


class NotificationSerializer(serializers.ModelSerializer):
    # null for a notification about no case (cameras gone offline: kind "cameras_offline").
    case_id = serializers.IntegerField(read_only=True, allow_null=True)
    case_code = serializers.CharField(source="case.code", read_only=True, allow_null=True)
    event_id = serializers.IntegerField(read_only=True, allow_null=True)
    read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "kind", "case_id", "case_code", "event_id", "title", "text", "created_at", "read_at", "read"]
        read_only_fields = fields

    def get_read(self, obj: Notification) -> bool:
        return obj.read_at is not None


class NotificationReadSerializer(serializers.Serializer):
    notification = NotificationSerializer()
    unread = serializers.IntegerField(help_text="the caller's unread notifications after this change")


class NotificationsReadAllSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="notifications this call marked read")
    unread = serializers.IntegerField()


class InboxPagination(PagePagination):
    """A page of the inbox plus the caller's unread count (all of it, whatever the filter and the page)."""

    page_size = 20
    max_page_size = 200

    def paginate_queryset(self, queryset, request, view=None):
        self.unread = notify.unread_count(user=request.user)
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data["unread"] = self.unread
        return response

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["unread"] = {"type": "integer", "example": 3}
        paginated["required"] = [*paginated.get("required", []), "unread"]
        return paginated


@extend_schema_view(
    list=extend_schema(
        summary="我的通知 (最新在前, 含未读数)",
        parameters=[
            OpenApiParameter("unread", bool, description="1/true: 只看未读"),
        ],
        responses={200: NotificationSerializer(many=True), 400: OpenApiResponse(description="无效输入"), **ERRORS},
    ),
)
class NotificationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = NotificationSerializer
    pagination_class = InboxPagination
    queryset = Notification.objects.none()
    lookup_value_regex = r"[0-9]{1,18}"  # anything else is no notification (404), never a database error

    def get_queryset(self):
        qs = notify.notifications_of(user=self.request.user).order_by("-id")
        unread = self.request.query_params.get("unread", "")
        if unread.lower() in ("1", "true", "yes"):
            qs = qs.filter(read_at__isnull=True)
        elif unread.lower() not in ("", "0", "false", "no"):
            raise serializers.ValidationError({"unread": "1 or 0"})
        return qs

    @extend_schema(summary="标记一条通知已读", request=None, responses={200: NotificationReadSerializer, **ERRORS})
    @action(detail=True, methods=["post"], url_path="read")
    def read(self, request, pk=None):
        notification = notify.notification_read(user=request.user, notification_id=int(pk))
        body = {
            "notification": NotificationSerializer(notification).data,
            "unread": notify.unread_count(user=request.user),
        }
        return Response(body)

    @extend_schema(summary="全部标记已读", request=None, responses={200: NotificationsReadAllSerializer, **ERRORS})
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        marked = notify.notifications_read_all(user=request.user)
        return Response({"marked": marked, "unread": notify.unread_count(user=request.user)})
