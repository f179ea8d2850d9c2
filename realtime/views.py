"""HTTP edge of the real-time side: devices post their team's position (the WebSocket `position` op does
the same); staff set a team's status."""

from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from gridmgmt.datetimes import datetime_parse
from gridmgmt.errors import DomainError
from realtime.services import team_position_report, team_status_set


def _error(exc: DomainError) -> Response:
    return Response({"code": exc.code, "detail": str(exc.message), "field": exc.field}, status=exc.status)


class PositionIn(serializers.Serializer):
    lon = serializers.FloatField()
    lat = serializers.FloatField()
    at = serializers.CharField(required=False)


class TeamPositionView(APIView):
    """POST {lon, lat, at?}: 202 {"stored": true|false} — false when another position of the team was
    stored less than 5 s ago (send the newest fix again after that)."""

    permission_classes = [IsAuthenticated]
    serializer_class = PositionIn

    def post(self, request):
        data = PositionIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            # An ISO 8601 instant with its offset (a device must say which instant it means); anything else,
            # garbage included, is a 400 — never silently "now".
            at = datetime_parse(data.validated_data.get("at"), field="at", naive="refuse")
            stored = team_position_report(
                actor=request.user, lon=data.validated_data["lon"], lat=data.validated_data["lat"], at=at
            )
        except DomainError as exc:
            return _error(exc)
        return Response({"stored": stored}, status=status.HTTP_202_ACCEPTED)


class StatusIn(serializers.Serializer):
    status = serializers.CharField()


class TeamStatusView(APIView):
    """POST {status}: set a team's status (on_duty/busy/off_duty)."""

    permission_classes = [IsAuthenticated]
    serializer_class = StatusIn

    def post(self, request, team_id: int):
        data = StatusIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            team = team_status_set(actor=request.user, team_id=team_id, status=data.validated_data["status"])
        except DomainError as exc:
            return _error(exc)
        return Response({"team_id": team.id, "status": team.status})
