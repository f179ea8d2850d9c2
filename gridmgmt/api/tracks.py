"""Who was where: GET /api/tracks/ (a replay), /api/attendance/ (考勤) and /api/kpis/coverage/ (巡查覆盖率).

The edges parse and authorize (gridmgmt.access: track_teams_visible — command-centre staff, the teams of their
area); the reads are realtime.tracks (tracks, attendance) and gridmgmt.kpi (coverage), each one statement.
"""

from datetime import datetime, time, timedelta

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from gridmgmt import access, kpi
from gridmgmt.api.kpis import MAX_YEAR, MIN_YEAR, AsciiDateField
from gridmgmt.datetimes import datetime_parse
from gridmgmt.errors import InvalidInput
from realtime import tracks

TRACK_DAYS_MAX = 7  # a replay covers at most a week (a day of one device at 1 fix / 5 s is 17,280 vertices)
COVERAGE_DAYS_MAX = 31  # the position history is kept 30 days (POSITION_RETENTION_DAYS)
ID_MAX = 2**63 - 1


class WhoQuery(serializers.Serializer):
    team = serializers.IntegerField(required=False, min_value=1, max_value=ID_MAX, help_text=_("队伍 id"))
    member = serializers.IntegerField(required=False, min_value=1, max_value=ID_MAX, help_text=_("队员(用户)id"))

    def who(self, user) -> tuple[list[int], list[int]]:
        """(team ids, member ids) the request names, each checked against the access gate (404 when out of scope)."""
        q = self.validated_data
        if not q.get("team") and not q.get("member"):
            raise InvalidInput(_("请指定队伍 (team) 或队员 (member)"), field="team", code="required")
        teams = [access.track_team_access(user=user, team_id=q["team"]).pk] if q.get("team") else []
        members = [access.track_member_access(user=user, member_id=q["member"]).pk] if q.get("member") else []
        return teams, members


class TrackQuery(WhoQuery):
    start = serializers.CharField(required=False, help_text=_("起始时刻 (ISO 8601),默认今天 0 点"))
    end = serializers.CharField(required=False, help_text=_("结束时刻 (ISO 8601, 不含),默认现在"))

    def period(self) -> tuple[datetime, datetime]:
        now = timezone.now()
        start = datetime_parse(self.validated_data.get("start"), field="start")
        end = datetime_parse(self.validated_data.get("end"), field="end")
        start = start or timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
        end = end or now
        if end <= start:
            raise InvalidInput(_("结束时刻须晚于起始时刻"), field="end", code="bad_period")
        if end - start > timedelta(days=TRACK_DAYS_MAX):
            raise InvalidInput(_("轨迹时段最长 %(n)d 天") % {"n": TRACK_DAYS_MAX}, field="end", code="period_too_long")
        return start, end


class DaysQuery(serializers.Serializer):
    start = AsciiDateField(required=False, help_text=_("起始日期 (含),默认今天"), input_formats=["iso-8601"])
    end = AsciiDateField(required=False, help_text=_("结束日期 (含),默认今天"), input_formats=["iso-8601"])

    def days(self, max_days: int):
        today = timezone.localdate()
        first = self.validated_data.get("start") or today
        last = self.validated_data.get("end") or today
        for name, value in (("start", first), ("end", last)):
            if not MIN_YEAR <= value.year < MAX_YEAR:
                raise InvalidInput(_("%(field)s 超出范围") % {"field": name}, field=name, code="out_of_range")
        if last < first:
            raise InvalidInput(_("结束日期不能早于起始日期"), field="end", code="bad_period")
        if (last - first).days >= max_days:
            raise InvalidInput(_("统计时段最长 %(n)d 天") % {"n": max_days}, field="end", code="period_too_long")
        return first, last


class AttendanceQuery(WhoQuery, DaysQuery):
    pass


class CoverageQuery(DaysQuery):
    team = serializers.IntegerField(
        required=False, min_value=1, max_value=ID_MAX, help_text=_("队伍 id;不填为全部可见队伍")
    )


class TrackView(APIView):
    """A member's or a team's tracks over a period (at most a week), one GeoJSON Feature per device: a
    MultiLineString broken at silences longer than 10 minutes, with `times` (Unix seconds) per vertex."""

    @extend_schema(
        summary="轨迹回放 (队伍或队员, 每台设备一条)", parameters=[TrackQuery], responses={200: OpenApiTypes.OBJECT}
    )
    def get(self, request):
        query = TrackQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        teams, members = query.who(request.user)
        start, end = query.period()
        text = tracks.tracks_geojson(team_ids=teams, user_ids=members, start=start, end=end)
        return HttpResponse(text, content_type="application/json")


class AttendanceSerializer(serializers.Serializer):
    day = serializers.DateField()
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()
    team_id = serializers.IntegerField(allow_null=True)
    on_at = serializers.DateTimeField(help_text=_("上岗:当天第一个定位"))
    on_lon = serializers.FloatField()
    on_lat = serializers.FloatField()
    off_at = serializers.DateTimeField(help_text=_("离岗:当天最后一个定位"))
    off_lon = serializers.FloatField()
    off_lat = serializers.FloatField()
    fixes = serializers.IntegerField()
    minutes = serializers.IntegerField(help_text=_("有定位的在岗分钟数 (间隔 ≤ 10 分钟)"))


class AttendanceView(APIView):
    """考勤 derived from the position history: per member and day, on duty at the first fix, off at the last."""

    @extend_schema(
        summary="考勤 (由定位推算上岗/离岗)",
        parameters=[AttendanceQuery],
        responses={200: AttendanceSerializer(many=True)},
    )
    def get(self, request):
        query = AttendanceQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        teams, members = query.who(request.user)
        first, last = query.days(COVERAGE_DAYS_MAX)
        tz = timezone.get_default_timezone()
        start = datetime.combine(first, time.min, tzinfo=tz)
        end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz)
        rows = tracks.attendance_read(team_ids=teams, user_ids=members, start=start, end=end, tz=settings.TIME_ZONE)
        return Response(AttendanceSerializer(rows, many=True).data)


class CoverageRowSerializer(serializers.Serializer):
    day = serializers.DateField()
    team_id = serializers.IntegerField()
    name = serializers.CharField()
    cells = serializers.IntegerField(help_text=_("责任网格内的单元网格数"))
    cells_covered = serializers.IntegerField(help_text=_("当天轨迹经过的单元网格数"))
    coverage = serializers.FloatField(allow_null=True, help_text=_("巡查覆盖率 = 经过 / 全部"))


class CoverageResponseSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    results = CoverageRowSerializer(many=True)
    total = serializers.FloatField(allow_null=True, help_text=_("全部队伍合计的覆盖率"))


class CoverageView(APIView):
    """巡查覆盖率 per team per day (gridmgmt.kpi.coverage_compute) over the teams the user may see."""

    @extend_schema(
        summary="巡查覆盖率 (每队每天)", parameters=[CoverageQuery], responses={200: CoverageResponseSerializer}
    )
    def get(self, request):
        query = CoverageQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        first, last = query.days(COVERAGE_DAYS_MAX)
        if query.validated_data.get("team"):
            teams = [access.track_team_access(user=request.user, team_id=query.validated_data["team"]).pk]
        else:
            teams = list(access.track_teams_visible(user=request.user).values_list("pk", flat=True))
        rows = kpi.coverage_compute(team_ids=teams, first=first, last=last)
        data = {"start": first, "end": last, "results": rows, "total": kpi.coverage_total(rows)}
        return Response(CoverageResponseSerializer(data).data)
