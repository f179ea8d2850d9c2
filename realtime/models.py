"""The real-time feed: one append-only row per message screens receive, with its `seq`.

Rows are written by their writers in the writer's transaction (`realtime.feed.feed_rows_write`): a case
event's row by `gridmgmt.events`, team positions/status and camera status by `realtime.services`. `seq` is
handed out under one transaction-level lock held until commit, so seq order is commit order: a reader that
sees seq N has already seen every smaller seq that will ever exist. That is what makes "replay everything
after N" gap-free, in every process, after any restart.
"""

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
