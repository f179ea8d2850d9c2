"""The real-time feed: one append-only row per message screens receive, with its `seq`.

Rows are written by their writers in the writer's transaction (`realtime.feed.feed_rows_write`): a case
event's row by `gridmgmt.events`, team positions/status and camera status by `realtime.services`. `seq` is
handed out under one transaction-level lock held until commit, so seq order is commit order: a reader that
sees seq N has already seen every smaller seq that will ever exist. That is what makes "replay everything
after N" gap-free, in every process, after any restart.
"""

from django.contrib.gis.db import models as gis_models
from django.db import models
from django.utils.translation import gettext_lazy as _


class FeedEvent(models.Model):
    class Type(models.TextChoices):
        CASE_CREATED = "case.created", _("新案件")
        CASE_UPDATED = "case.updated", _("案件更新")
        CASE_ESCALATED = "case.escalated", _("案件升级")
        TEAM_POSITION = "team.position", _("队伍位置")
        TEAM_STATUS = "team.status", _("队伍状态")
        CAMERA_STATUS = "camera.status", _("摄像头状态")
        NOTIFICATION_CREATED = "notification.created", _("新通知")

    seq = models.BigIntegerField(_("序号"), primary_key=True)
    type = models.CharField(_("类型"), max_length=24, choices=Type.choices)
    at = models.DateTimeField(_("时间"))
    # Scope keys: a subscription reads the rows whose key equals its area/team (index scans on (key, seq)).
    district_id = models.BigIntegerField(null=True)
    street_id = models.BigIntegerField(null=True)
    community_id = models.BigIntegerField(null=True)
    team_id = models.BigIntegerField(null=True)
    # A row for one person (their inbox, scope user:<id>): no area or team key, and never in `all`.
    user_id = models.BigIntegerField(null=True)
    case_event_id = models.BigIntegerField(null=True, db_index=True)
    data = models.JSONField(_("内容"), default=dict)

    class Meta:
        verbose_name = _("实时消息")
        verbose_name_plural = _("实时消息")
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["district_id", "seq"], name="feed_district_seq"),
            models.Index(fields=["street_id", "seq"], name="feed_street_seq"),
            models.Index(fields=["community_id", "seq"], name="feed_community_seq"),
            models.Index(fields=["team_id", "seq"], name="feed_team_seq"),
            models.Index(fields=["user_id", "seq"], name="feed_user_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.seq} {self.type}"


class Device(models.Model):
    """Something that reports where a person is: their phone (registered by its first position over the
    WebSocket or `POST /realtime/position/`) or a tracker speaking the OsmAnd protocol (`/track/osmand`),
    registered by an administrator — or the demo — with the identifier the tracker sends as `id`."""

    class Kind(models.TextChoices):
        PHONE = "phone", _("手机")
        TRACKER = "tracker", _("定位终端")

    user = models.ForeignKey(
        "gridmgmt.User", verbose_name=_("使用人"), on_delete=models.CASCADE, related_name="devices"
    )
    kind = models.CharField(_("类型"), max_length=10, choices=Kind.choices, default=Kind.TRACKER)
    # A tracker's OsmAnd `id` (Traccar Client: "Device identifier"); a phone's is `phone:<user id>`.
    identifier = models.CharField(_("设备标识"), max_length=64, unique=True)
    active = models.BooleanField(_("启用"), default=True)
    last_seen_at = models.DateTimeField(_("最近上报"), null=True, blank=True)
    created_at = models.DateTimeField(_("登记时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("定位设备")
        verbose_name_plural = _("定位设备")
        ordering = ["identifier"]

    def __str__(self) -> str:
        return self.identifier


class Position(models.Model):
    """One fix of one device: the position history, a PostgreSQL table partitioned by day on `at`
    (`realtime/positions.py`; created by migration 0005 with RunSQL, so the model is unmanaged). One row per
    (device, fix time): a fix sent twice — a retry, a resend after the team's 5 s interval — is stored once."""

    pk = models.CompositePrimaryKey("device_id", "at")
    device = models.ForeignKey(Device, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    at = models.DateTimeField(_("定位时间"))
    received_at = models.DateTimeField(_("接收时间"))
    user_id = models.BigIntegerField()
    team_id = models.BigIntegerField(null=True)
    point = gis_models.PointField(_("位置"), srid=4326)
    speed = models.FloatField(_("速度 (m/s)"), null=True)
    course = models.FloatField(_("方向 (°)"), null=True)
    altitude = models.FloatField(_("海拔 (m)"), null=True)
    accuracy = models.FloatField(_("精度 (m)"), null=True)
    battery = models.FloatField(_("电量 (%)"), null=True)

    class Meta:
        managed = False
        db_table = "realtime_position"
        verbose_name = _("位置记录")
        verbose_name_plural = _("位置记录")

    def __str__(self) -> str:
        return f"{self.device_id} {self.at:%Y-%m-%d %H:%M:%S}"
