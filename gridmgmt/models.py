"""The case domain: departments, teams, users and roles, the category taxonomy, cases and their history.

The workflow (which transitions are allowed, deadlines, escalation) lives in services, not here:
these classes only describe what is stored. `CaseEvent` is append-only (a database trigger refuses
UPDATE and DELETE); the timeline, KPIs and real-time messages are all derived from it.
"""

import hashlib
import secrets

from django.contrib.auth.models import AbstractUser
from django.contrib.gis.db import models
from django.contrib.postgres.indexes import GinIndex
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Department(models.Model):
    """A responsible unit: street office, city-management bureau, utility company…"""

    code = models.CharField(_("代码"), max_length=32, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    name_en = models.CharField(_("英文名称"), max_length=100, blank=True)
    area = models.ForeignKey(
        "geo.AdminArea", verbose_name=_("辖区"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("部门")
        verbose_name_plural = _("部门")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Category(models.Model):
    """One class of the standard taxonomy (部件/事件 大类 → 小类), with its rules as editable data."""

    class Kind(models.TextChoices):
        EVENT = "event", _("事件")
        COMPONENT = "component", _("部件")

    class LimitUnit(models.TextChoices):
        WORKING_HOURS = "working_hours", _("工作时")
        WORKING_DAYS = "working_days", _("工作日")
        HOURS = "hours", _("自然小时")

    code = models.CharField(_("代码"), max_length=16, unique=True)
    kind = models.CharField(_("类型"), max_length=10, choices=Kind.choices)
    parent = models.ForeignKey(
        "self", verbose_name=_("大类"), null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    name = models.CharField(_("名称"), max_length=100)
    name_en = models.CharField(_("英文名称"), max_length=100, blank=True)
    plain_name = models.CharField(_("通俗说法"), max_length=100, blank=True, help_text=_("居民上报页显示的说法"))
    limit_unit = models.CharField(
        _("处置时限单位"), max_length=16, choices=LimitUnit.choices, default=LimitUnit.WORKING_DAYS
    )
    limit_normal = models.PositiveIntegerField(_("处置时限(一般)"), default=1)
    limit_urgent = models.PositiveIntegerField(_("处置时限(紧急)"), default=4)
    urgent_limit_unit = models.CharField(
        _("紧急时限单位"), max_length=16, choices=LimitUnit.choices, default=LimitUnit.WORKING_HOURS
    )
    dispatch_minutes_normal = models.PositiveIntegerField(_("立案派遣时限(一般, 分钟)"), default=30)
    dispatch_minutes_urgent = models.PositiveIntegerField(_("立案派遣时限(紧急, 分钟)"), default=10)
    filing_condition = models.TextField(_("立案条件"), blank=True)
    closing_condition = models.TextField(_("结案条件"), blank=True)
    default_department = models.ForeignKey(
        Department, verbose_name=_("默认处置部门"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    default_urgency = models.CharField(_("默认紧急程度"), max_length=10, default="normal")
    duplicate_radius_m = models.PositiveIntegerField(_("疑似重复半径(米)"), default=250)
    duplicate_window_hours = models.PositiveIntegerField(_("疑似重复时间窗(小时)"), default=72)
    is_sensitive = models.BooleanField(_("敏感类别"), default=False, help_text=_("不在公开地图显示"))
    auto_dispatch = models.BooleanField(
        _("立案后自动派遣"), default=False, db_default=False, help_text=_("立案后直接派给排名第一的队伍")
    )
    speaker_preset = models.CharField(
        _("喇叭喊话预设"),
        max_length=200,
        blank=True,
        default="",
        db_default="",
        help_text=_("街头喇叭对该类问题的标准喊话,例如违章停车:请立即驶离,违停将被处罚"),
    )
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("案件类别")
        verbose_name_plural = _("案件类别")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class PatrolTeam(models.Model):
    class Status(models.TextChoices):
        ON_DUTY = "on_duty", _("在岗")
        BUSY = "busy", _("处置中")
        OFF_DUTY = "off_duty", _("离岗")

    code = models.CharField(_("代码"), max_length=32, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    district = models.ForeignKey("geo.AdminArea", verbose_name=_("区"), on_delete=models.PROTECT, related_name="+")
    street = models.ForeignKey(
        "geo.AdminArea", verbose_name=_("街镇"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    department = models.ForeignKey(
        Department, verbose_name=_("所属部门"), null=True, blank=True, on_delete=models.PROTECT, related_name="teams"
    )
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.ON_DUTY)
    skills = models.ManyToManyField(Category, verbose_name=_("擅长类别"), blank=True, related_name="+")
    # geography: KNN (`<->`) and distances in metres, using the GiST index.
    last_position = models.PointField(_("最近位置"), geography=True, null=True, blank=True)
    last_position_at = models.DateTimeField(_("定位时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("巡查队伍")
        verbose_name_plural = _("巡查队伍")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A person with one role, scoped to an area (and, for patrol staff, a team)."""

    class Role(models.TextChoices):
        RESIDENT = "resident", _("居民")
        PATROL = "patrol", _("巡查队员")
        DISPATCHER = "dispatcher", _("派遣员")
        INSPECTOR = "inspector", _("监督员")
        SHIFT_LEADER = "shift_leader", _("指挥中心值班长")
        WALL = "wall", _("大屏(只读)")
        ADMIN = "admin", _("管理员")

    role = models.CharField(_("角色"), max_length=16, choices=Role.choices, default=Role.RESIDENT)
    area = models.ForeignKey(
        "geo.AdminArea",
        verbose_name=_("管辖区域"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("可见范围;为空表示不限"),
    )
    team = models.ForeignKey(
        PatrolTeam, verbose_name=_("所属队伍"), null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )
    department = models.ForeignKey(
        Department, verbose_name=_("部门"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    phone = models.CharField(_("电话"), max_length=20, blank=True)

    class Meta:
        verbose_name = _("用户")
        verbose_name_plural = _("用户")


class Case(models.Model):
    class Source(models.TextChoices):
        PATROL = "patrol", _("巡查上报")
        INSPECTOR = "inspector", _("监督员上报")
        CAMERA = "camera", _("视频巡查")
        RESIDENT = "resident", _("居民上报")
        HOTLINE = "hotline", _("12345热线")
        ASSIGNED = "assigned", _("上级交办")
        OPEN311 = "open311", _("Open311")

    class Urgency(models.TextChoices):
        NORMAL = "normal", _("一般")
        URGENT = "urgent", _("紧急")

    class Status(models.TextChoices):
        REPORTED = "reported", _("已上报")
        FILED = "filed", _("已立案")
        VOIDED = "voided", _("已作废")
        DISPATCHED = "dispatched", _("已派遣")
        SENT_BACK = "sent_back", _("已退单")
        HANDLING = "handling", _("处置中")
        HANDLED = "handled", _("待核查")
        CHECKED = "checked", _("待结案")
        PARKED = "parked", _("挂账")
        CLOSED = "closed", _("已结案")
        ARCHIVED = "archived", _("已归档")

    class Level(models.IntegerChoices):
        GRID = 0, _("网格")
        COMMUNITY = 1, _("社区")
        STREET = 2, _("街镇")
        DISTRICT = 3, _("区")

    code = models.CharField(_("案件编号"), max_length=32, unique=True)
    point = models.PointField(_("位置"), srid=4326)
    address = models.CharField(_("地址"), max_length=200, blank=True)
    # Stored on the case so dashboards and scope filters never need a spatial join.
    cell = models.ForeignKey("geo.GridCell", verbose_name=_("单元网格"), on_delete=models.PROTECT, related_name="+")
    community = models.ForeignKey(
        "geo.AdminArea", verbose_name=_("社区"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    street = models.ForeignKey(
        "geo.AdminArea", verbose_name=_("街镇"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    district = models.ForeignKey("geo.AdminArea", verbose_name=_("区"), on_delete=models.PROTECT, related_name="+")
    responsibility_grid = models.ForeignKey(
        "geo.ResponsibilityGrid",
        verbose_name=_("责任网格"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    category = models.ForeignKey(Category, verbose_name=_("类别"), on_delete=models.PROTECT, related_name="cases")
    source = models.CharField(_("来源"), max_length=12, choices=Source.choices)
    urgency = models.CharField(_("紧急程度"), max_length=10, choices=Urgency.choices, default=Urgency.NORMAL)
    status = models.CharField(_("状态"), max_length=12, choices=Status.choices, default=Status.REPORTED)
    level = models.PositiveSmallIntegerField(_("处置层级"), choices=Level.choices, default=Level.GRID)
    description = models.TextField(_("描述"), blank=True)
    reporter = models.ForeignKey(
        User, verbose_name=_("上报人"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Never public: only staff with access to the case may read it.
    reporter_name = models.CharField(_("联系人"), max_length=50, blank=True)
    reporter_phone = models.CharField(_("联系电话"), max_length=20, blank=True)
    team = models.ForeignKey(
        PatrolTeam, verbose_name=_("处置队伍"), null=True, blank=True, on_delete=models.PROTECT, related_name="cases"
    )
    department = models.ForeignKey(
        Department, verbose_name=_("处置部门"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    camera = models.ForeignKey(
        "geo.Camera", verbose_name=_("摄像头"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # 部件: the public asset the case is about; its maintainer (养护单位) routes the case (services.moves).
    component = models.ForeignKey(
        "geo.Component", verbose_name=_("部件"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    duplicate_of = models.ForeignKey(
        "self", verbose_name=_("重复于"), null=True, blank=True, on_delete=models.PROTECT, related_name="duplicates"
    )
    external_id = models.CharField(_("外部编号"), max_length=64, blank=True, help_text=_("12345 工单号等"))
    # Unique per scope: the channel and the client identity ("api:user:7", "public:device:…", "hotline"), so one
    # client's key can neither block nor read another's (services.intake.idempotency_scope).
    idempotency_key = models.CharField(_("幂等键"), max_length=64, null=True, blank=True)
    idempotency_scope = models.CharField(_("幂等键范围"), max_length=80, blank=True, default="", db_default="")
    # sha256 of the resident's tracking token (random, handed out once at report time); "" = no token.
    tracking_token_hash = models.CharField(
        _("跟踪令牌摘要"), max_length=64, blank=True, default="", db_default="", editable=False
    )
    # sha256 of a second token, issued for the link in the "closed" SMS (gridmgmt.outbox); "" = none yet. The
    # reporter's own token (above) stays valid: either one lets them follow, rate or reopen the case.
    sms_token_hash = models.CharField(
        _("短信令牌摘要"), max_length=64, blank=True, default="", db_default="", editable=False
    )
    supporters = models.PositiveIntegerField(_("附议人数"), default=0)
    satisfaction = models.PositiveSmallIntegerField(_("满意度"), null=True, blank=True)
    reported_at = models.DateTimeField(_("上报时间"), db_index=True)
    # The current stage's clock (filing/dispatch, then handling); `deadline_at` is when it runs out.
    stage_started_at = models.DateTimeField(_("本环节开始"), null=True, blank=True)
    # The resident-facing clock: set at filing, never reset (only an approved extension moves it).
    due_at = models.DateTimeField(_("承诺办结时间"), null=True, blank=True)
    # When 75 % of the current stage's working time is used: the light turns yellow (computed on the calendar).
    warn_at = models.DateTimeField(_("黄灯时间"), null=True, blank=True)
    accepted_at = models.DateTimeField(_("签收时间"), null=True, blank=True)
    parked_at = models.DateTimeField(_("挂账时间"), null=True, blank=True)
    send_back_count = models.PositiveSmallIntegerField(_("退单次数"), default=0, db_default=0)
    rework_count = models.PositiveSmallIntegerField(_("返工次数"), default=0, db_default=0)
    extension_pending = models.BooleanField(_("延时待批"), default=False, db_default=False)
    # 督办 not yet answered (回复) by the party urged: raised by each urge, lowered by each answer (services.moves).
    urges_open = models.PositiveSmallIntegerField(_("待回复督办"), default=0, db_default=0)
    hotline_reply = models.TextField(_("热线回复"), blank=True, default="", db_default="")
    replied_at = models.DateTimeField(_("回复时间"), null=True, blank=True)
    dispatch_deadline_at = models.DateTimeField(_("派遣时限"), null=True, blank=True)
    deadline_at = models.DateTimeField(_("处置时限"), null=True, blank=True, db_index=True)
    closed_at = models.DateTimeField(_("结案时间"), null=True, blank=True)
    # Set when a staff member publishes a staff-channel report's description and photos (gridmgmt.access).
    published_at = models.DateTimeField(_("公开时间"), null=True, blank=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)
    # Bumped by every transition: a compare-and-set on it makes concurrent actions collide cleanly.
    version = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("案件")
        verbose_name_plural = _("案件")
        ordering = ["-reported_at"]
        indexes = [
            models.Index(fields=["status", "district"], name="case_status_district"),
            models.Index(fields=["street", "status"], name="case_street_status"),
            models.Index(fields=["team", "status"], name="case_team_status"),
            # The desk's search (gridmgmt.queue.cases_search): ILIKE on description and address through
            # pg_trgm, led by the street and community ids (btree_gin) so that a street's or community's search
            # reads only its own matches from the index (the scope compared as bigint: access.area_id_value); a
            # code prefix as LOWER(code) LIKE LOWER('text%') through case_code_lower (an expression index made by
            # migration 0021 in SQL); the reporter's phone by equality. Every arm indexed: one BitmapOr.
            GinIndex(
                fields=["street", "community", "description"],
                name="case_description_scoped_trgm",
                opclasses=["int8_ops", "int8_ops", "gin_trgm_ops"],
            ),
            GinIndex(
                fields=["street", "community", "address"],
                name="case_address_scoped_trgm",
                opclasses=["int8_ops", "int8_ops", "gin_trgm_ops"],
            ),
            models.Index(fields=["reporter_phone"], name="case_reporter_phone", condition=~Q(reporter_phone="")),
            # A street's or community's cases counted by an index-only scan: the list's page count under a
            # district-scoped user (both ids in the WHERE). bench/scale.py, 5 M cases, a street of 109,621:
            # 1.1 s cold / ~250 ms warm (bitmap heap scan) → 7 ms.
            models.Index(fields=["street", "district"], name="case_street_district"),
            models.Index(fields=["community", "district"], name="case_community_district"),
            # The promises falling due in a period (gridmgmt.kpi: `due`, 结案率), merged duplicates left out.
            models.Index(
                Coalesce("due_at", "deadline_at"), name="case_promise", condition=Q(duplicate_of__isnull=True)
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(satisfaction__isnull=True) | Q(satisfaction__gte=1, satisfaction__lte=5),
                name="case_satisfaction_range",
            ),
            models.UniqueConstraint(fields=["idempotency_scope", "idempotency_key"], name="case_idempotency_scope_key"),
        ]

    def __str__(self) -> str:
        return self.code


class CasePhoto(models.Model):
    class Kind(models.TextChoices):
        BEFORE = "before", _("处置前")
        AFTER = "after", _("处置后")
        CHECK = "check", _("核查")

    case = models.ForeignKey(Case, verbose_name=_("案件"), on_delete=models.CASCADE, related_name="photos")
    kind = models.CharField(_("类型"), max_length=10, choices=Kind.choices, default=Kind.BEFORE)
    image = models.ImageField(_("照片"), upload_to="cases/%Y/%m/")
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(_("上传时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("案件照片")
        verbose_name_plural = _("案件照片")
        ordering = ["id"]


class CaseEvent(models.Model):
    """One row per state change (append-only). Its id is the global, monotonic event sequence."""

    class Type(models.TextChoices):
        REPORTED = "reported", _("上报")
        SUPPORTED = "supported", _("附议")
        FILED = "filed", _("立案")
        VOIDED = "voided", _("作废")
        DISPATCHED = "dispatched", _("派遣")
        ACCEPTED = "accepted", _("签收")
        SENT_BACK = "sent_back", _("退单")
        ARBITRATED = "arbitrated", _("审定")
        HANDLED = "handled", _("处置反馈")
        SELF_HANDLED = "self_handled", _("自处理")
        CHECK_PASSED = "check_passed", _("核查通过")
        CHECK_FAILED = "check_failed", _("核查不通过(返工)")
        EXTENSION_REQUESTED = "extension_requested", _("申请延时")
        EXTENSION_APPROVED = "extension_approved", _("延时批准")
        EXTENSION_REJECTED = "extension_rejected", _("延时驳回")
        PARKED = "parked", _("挂账")
        RESUMED = "resumed", _("恢复")
        ESCALATED = "escalated", _("升级")
        MERGED = "merged", _("合并")
        CLOSED = "closed", _("结案")
        RATED = "rated", _("评价")
        REOPENED = "reopened", _("重新打开")
        ARCHIVED = "archived", _("归档")
        PUBLISHED = "published", _("公开")
        SPEAKER_CALLED = "speaker_called", _("喇叭喊话")
        URGED = "urged", _("督办")
        URGE_ANSWERED = "urge_answered", _("督办回复")
        REASSIGNED = "reassigned", _("改派")
        RECALLED = "recalled", _("撤回")
        RECLASSIFIED = "reclassified", _("改类")
        COMPONENT_LINKED = "component_linked", _("关联部件")

    case = models.ForeignKey(Case, verbose_name=_("案件"), on_delete=models.PROTECT, related_name="events")
    type = models.CharField(_("类型"), max_length=24, choices=Type.choices)
    actor = models.ForeignKey(
        User, verbose_name=_("操作人"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_role = models.CharField(_("操作角色"), max_length=16, blank=True)
    from_status = models.CharField(_("原状态"), max_length=12, blank=True)
    to_status = models.CharField(_("新状态"), max_length=12, blank=True)
    at = models.DateTimeField(_("时间"), db_index=True)
    location = models.PointField(_("操作位置"), srid=4326, null=True, blank=True)
    note = models.TextField(_("说明"), blank=True)
    data = models.JSONField(_("附加数据"), default=dict, blank=True)
    # Copied from the case so scoped feeds (district/street/community/team) are index scans.
    district_id_copy = models.BigIntegerField(db_index=True)
    street_id_copy = models.BigIntegerField(null=True, db_index=True)
    community_id_copy = models.BigIntegerField(null=True, db_index=True)
    team_id_copy = models.BigIntegerField(null=True, db_index=True)
    # The department that owned the case when the event happened (gridmgmt.kpi's department grouping).
    department_id_copy = models.BigIntegerField(null=True)
    photos = models.ManyToManyField(CasePhoto, verbose_name=_("照片"), blank=True, related_name="events")
    # An action queued on a phone offline: `at` is when it was done (the phone's time, bounded by
    # gridmgmt.services.workflow.occurred_at_bound), `recorded_at` when the server wrote it; NULL = the same.
    recorded_at = models.DateTimeField(_("记录时间"), null=True, blank=True)
    # The client's idempotency key of the request that wrote it: a replay returns the case, writes nothing.
    idempotency_key = models.CharField(_("幂等键"), max_length=64, null=True, blank=True)

    class Meta:
        verbose_name = _("案件事件")
        verbose_name_plural = _("案件事件")
        ordering = ["id"]
        indexes = [
            models.Index(fields=["case", "id"], name="caseevent_case_id"),
            # A case's closure before a period's end (gridmgmt.kpi: `due_closed`), probed once per promise due.
            models.Index(fields=["case", "at"], name="caseevent_closed", condition=Q(type="closed")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["case", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="caseevent_case_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.case_id} {self.type}"


class WorkCalendarDay(models.Model):
    """An exception to the Monday–Friday working week: a public holiday, or a make-up working day (调休)."""

    date = models.DateField(_("日期"), unique=True)
    is_workday = models.BooleanField(_("是否工作日"))
    name = models.CharField(_("说明"), max_length=50, blank=True)

    class Meta:
        verbose_name = _("工作日历")
        verbose_name_plural = _("工作日历")
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class CameraSystem(models.Model):
    """A video platform / AI analytics system that posts camera alarms with its own token."""

    code = models.CharField(_("代码"), max_length=32, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    token = models.CharField(_("接入令牌"), max_length=64, unique=True)
    district = models.ForeignKey("geo.AdminArea", verbose_name=_("区"), on_delete=models.PROTECT, related_name="+")
    is_active = models.BooleanField(_("启用"), default=True)
    dedup_minutes = models.PositiveIntegerField(_("告警合并时间窗(分钟)"), default=30)
    # Each vendor names its algorithms its own way: the mapping to our categories is per system, as data.
    label_map = models.JSONField(
        _("算法标签映射"),
        default=dict,
        blank=True,
        help_text=_('告警算法标签 → 事件类别代码,例如 {"illegal_parking": "E0404"}'),
    )

    class Meta:
        verbose_name = _("视频告警系统")
        verbose_name_plural = _("视频告警系统")

    def __str__(self) -> str:
        return self.name


class Notification(models.Model):
    """One line of a person's inbox: what an event means to that person (gridmgmt.notify decides who is told
    of what). Stored at most once per (user, event, kind): a rule that fires again on a retried or replayed
    event adds nothing. The escalation alerts of the four-level rule are notifications of kind "escalated"."""

    class Kind(models.TextChoices):
        DISPATCHED = "dispatched", _("新任务")
        SENT_BACK = "sent_back", _("退单")
        ESCALATED = "escalated", _("升级督办")
        EXTENSION_REQUESTED = "extension_requested", _("延时申请")
        REOPENED = "reopened", _("重新打开")
        URGED = "urged", _("督办")
        URGE_ANSWERED = "urge_answered", _("督办回复")
        RECALLED = "recalled", _("任务撤回")
        CAMERAS_OFFLINE = "cameras_offline", _("摄像头离线")

    user = models.ForeignKey(User, verbose_name=_("接收人"), on_delete=models.CASCADE, related_name="notifications")
    # Empty for a notification that is about no case (cameras gone offline: gridmgmt.notify.notifications_send).
    case = models.ForeignKey(
        Case, verbose_name=_("案件"), null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    event = models.ForeignKey(
        CaseEvent, verbose_name=_("事件"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(_("类型"), max_length=24, choices=Kind.choices)
    title = models.CharField(_("标题"), max_length=200)
    text = models.TextField(_("内容"), blank=True)
    created_at = models.DateTimeField(_("时间"), default=timezone.now)
    read_at = models.DateTimeField(_("已读时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("通知")
        verbose_name_plural = _("通知")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "event", "kind"], name="notification_once_per_user_event_kind")
        ]
        indexes = [
            # The inbox newest first, and the unread count (a small partial index).
            models.Index(fields=["user", "-id"], name="notification_user_id"),
            models.Index(fields=["user"], condition=models.Q(read_at__isnull=True), name="notification_unread"),
        ]

    def __str__(self) -> str:
        return self.title


SPEAKER_REPEAT_MAX = 5  # a message is played at most this many times per call


class SpeakerCall(models.Model):
    """The call log of the street loudspeakers: one row per message sent (who, when, to which speakers, what,
    how it went). A call that names a case also writes a `speaker_called` event on the case's timeline."""

    class Outcome(models.TextChoices):
        DELIVERED = "delivered", _("已送达")
        PARTIAL = "partial", _("部分送达")
        FAILED = "failed", _("失败")

    actor = models.ForeignKey(User, verbose_name=_("操作人"), on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(_("时间"), default=timezone.now, db_index=True)
    case = models.ForeignKey(
        Case, verbose_name=_("案件"), null=True, blank=True, on_delete=models.PROTECT, related_name="speaker_calls"
    )
    cell = models.ForeignKey(
        "geo.GridCell", verbose_name=_("网格"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The area the call was made in (from its cell): the log is scoped like cases (gridmgmt.access).
    district = models.ForeignKey(
        "geo.AdminArea", verbose_name=_("区"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    street = models.ForeignKey(
        "geo.AdminArea", verbose_name=_("街镇"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    community = models.ForeignKey(
        "geo.AdminArea", verbose_name=_("社区"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    text = models.CharField(_("喊话内容"), max_length=200)
    preset = models.ForeignKey(
        Category, verbose_name=_("预设类别"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    repeat = models.PositiveSmallIntegerField(_("播放次数"), default=1)
    speakers = models.ManyToManyField("geo.Speaker", verbose_name=_("喇叭"), related_name="calls")
    outcome = models.CharField(_("结果"), max_length=10, choices=Outcome.choices)
    # Per speaker: [{"speaker": code, "ok": bool, "detail": "...", "ms": 12}] — what each gateway answered.
    results = models.JSONField(_("各喇叭结果"), default=list, blank=True)

    class Meta:
        verbose_name = _("喇叭喊话记录")
        verbose_name_plural = _("喇叭喊话记录")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(repeat__gte=1, repeat__lte=SPEAKER_REPEAT_MAX), name="speakercall_repeat_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.text[:20]}"


class Open311Client(models.Model):
    """An application allowed to POST Open311 service requests (GeoReport v2's `api_key`).

    The key is shown once, when the client is created in the admin; only its SHA-256 is stored (a random
    256-bit key needs no slow hash). Deactivating a client revokes its key; each key has its own rate."""

    name = models.CharField(_("应用名称"), max_length=100)
    contact = models.CharField(_("联系人"), max_length=200, blank=True)
    key_prefix = models.CharField(_("密钥前缀"), max_length=12, editable=False)
    key_hash = models.CharField(_("密钥摘要"), max_length=64, unique=True, editable=False)
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("Open311 接入应用")
        verbose_name_plural = _("Open311 接入应用")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def key_digest(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    def key_issue(self) -> str:
        """A new random key for this client (stored hashed, not saved here); returns the key in clear."""
        key = secrets.token_urlsafe(32)
        self.key_prefix = key[:8]
        self.key_hash = self.key_digest(key)
        return key

    @classmethod
    def by_key(cls, key: str) -> "Open311Client | None":
        """The active client holding `key`, or None."""
        if not key or len(key) > 200 or "\x00" in key:
            return None
        return cls.objects.filter(key_hash=cls.key_digest(key), is_active=True).first()


# --- delivery outside the browser (gridmgmt.outbox, gridmgmt.senders) ------------------------------------------


class Channel(models.TextChoices):
    """Where a message goes besides the in-app inbox. E-mail and SMS need the operator's settings (README,
    "Notifications and delivery"); the robots are `Robot` rows."""

    EMAIL = "email", _("电子邮件")
    SMS = "sms", _("短信")
    WECOM = "wecom", _("企业微信群机器人")
    DINGTALK = "dingtalk", _("钉钉群机器人")
    FEISHU = "feishu", _("飞书群机器人")


class Robot(models.Model):
    """A work-chat group robot (群机器人) of a team or of an area, set up by the operator: the webhook URL the
    vendor gave when the robot was added to the group, and its signing secret where the robot has one
    (钉钉/飞书 「加签」). An area's robot hears of the escalations to that area's level (and of the other
    kinds it lists for cases in the area); a team's robot of the kinds it lists for its team's cases."""

    VENDORS = (Channel.WECOM, Channel.DINGTALK, Channel.FEISHU)

    name = models.CharField(_("名称"), max_length=100)
    vendor = models.CharField(_("类型"), max_length=10, choices=[(c.value, c.label) for c in VENDORS])
    webhook_url = models.URLField(_("Webhook 地址"), max_length=500)
    secret = models.CharField(
        _("加签密钥"), max_length=200, blank=True, help_text=_("钉钉/飞书机器人开启「加签」时填写")
    )
    area = models.ForeignKey(
        "geo.AdminArea", verbose_name=_("区域"), null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    team = models.ForeignKey(
        PatrolTeam, verbose_name=_("队伍"), null=True, blank=True, on_delete=models.CASCADE, related_name="robots"
    )
    kinds = models.JSONField(
        _("通知类型"),
        default=list,
        blank=True,
        help_text=_('发送哪些类型,如 ["escalated", "dispatched"];为空时区域机器人只发升级督办,队伍机器人只发新任务'),
    )
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("群机器人")
        verbose_name_plural = _("群机器人")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(area__isnull=True, team__isnull=False) | Q(area__isnull=False, team__isnull=True),
                name="robot_area_xor_team",
            )
        ]

    def __str__(self) -> str:
        return self.name


class NotifyPreference(models.Model):
    """Which notification kinds go to which channel, and quiet hours, for one user or one team (a user's own
    preference wins over the team's, field by field; with neither, settings.NOTIFY_DEFAULT_CHANNELS)."""

    user = models.OneToOneField(
        User, verbose_name=_("用户"), null=True, blank=True, on_delete=models.CASCADE, related_name="notify_preference"
    )
    team = models.OneToOneField(
        PatrolTeam, verbose_name=_("队伍"), null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    channels = models.JSONField(
        _("渠道"),
        default=dict,
        blank=True,
        help_text=_('通知类型 → 渠道列表,如 {"dispatched": ["sms"], "escalated": ["email", "sms"]};未列出的类型用默认'),
    )
    quiet_from = models.TimeField(_("免打扰开始"), null=True, blank=True)
    quiet_to = models.TimeField(_("免打扰结束"), null=True, blank=True)

    class Meta:
        verbose_name = _("通知偏好")
        verbose_name_plural = _("通知偏好")
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=True, team__isnull=False) | Q(user__isnull=False, team__isnull=True),
                name="notifypreference_user_xor_team",
            )
        ]

    def __str__(self) -> str:
        return str(self.user or self.team)


class Delivery(models.Model):
    """The outbox: one message to send on one channel to one target, written in the transaction of the event it
    tells of (gridmgmt.outbox), so none is lost and — unique per event, kind, channel and target — none is
    written twice by a retried or replayed event. `deliveries_send` sends it off the request path."""

    class Status(models.TextChoices):
        PENDING = "pending", _("待发送")
        SENT = "sent", _("已发送")
        FAILED = "failed", _("失败")

    # Both empty for the delivery of a notification about no case (its `notification` says what it is).
    event = models.ForeignKey(
        CaseEvent, verbose_name=_("事件"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    case = models.ForeignKey(
        Case, verbose_name=_("案件"), null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    notification = models.ForeignKey(
        Notification, verbose_name=_("通知"), null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    user = models.ForeignKey(
        User, verbose_name=_("接收人"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    robot = models.ForeignKey(
        Robot, verbose_name=_("群机器人"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(_("类型"), max_length=32)
    channel = models.CharField(_("渠道"), max_length=10, choices=Channel.choices)
    target = models.CharField(_("发送对象"), max_length=254, help_text=_("邮箱、手机号或 robot:<id>"))
    subject = models.CharField(_("标题"), max_length=200, blank=True)
    body = models.TextField(_("内容"))
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("尝试次数"), default=0)
    next_at = models.DateTimeField(_("下次发送时间"))
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    sent_at = models.DateTimeField(_("发送时间"), null=True, blank=True)
    last_error = models.TextField(_("最近错误"), blank=True)

    class Meta:
        verbose_name = _("消息投递")
        verbose_name_plural = _("消息投递")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "kind", "channel", "target"], name="delivery_once_per_target"),
            # A notification about no case (no event) goes once per channel and target.
            models.UniqueConstraint(
                fields=["notification", "channel", "target"],
                condition=Q(event__isnull=True),
                name="delivery_once_per_notification_target",
            ),
        ]
        indexes = [
            # The sender's scan: pending rows by due time (a small partial index).
            models.Index(fields=["next_at"], condition=Q(status="pending"), name="delivery_pending_due"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} → {self.target}: {self.subject or self.body[:40]}"


class DeliveryAttempt(models.Model):
    """One try at sending a delivery: when, whether it went, the error, how long the call took."""

    delivery = models.ForeignKey(Delivery, verbose_name=_("投递"), on_delete=models.CASCADE, related_name="tries")
    at = models.DateTimeField(_("时间"))
    ok = models.BooleanField(_("成功"))
    detail = models.CharField(_("结果"), max_length=200, blank=True)
    error = models.TextField(_("错误"), blank=True)
    duration_ms = models.PositiveIntegerField(_("耗时(毫秒)"))

    class Meta:
        verbose_name = _("投递记录")
        verbose_name_plural = _("投递记录")
        ordering = ["id"]


class _KpiKey(models.Model):
    """A summary's key: a local day and the district and street ids copied onto the events."""

    day = models.DateField()
    district_id = models.BigIntegerField()
    street_id = models.BigIntegerField(null=True)

    class Meta:
        abstract = True


class _KpiParts(models.Model):
    """gridmgmt.kpi's additive parts of every KPI (``kpi._PARTS``)."""

    received = models.IntegerField()
    filed = models.IntegerField()
    dispatched = models.IntegerField()
    sent_back = models.IntegerField()
    handled = models.IntegerField()
    handled_on_time = models.IntegerField()
    check_failed = models.IntegerField()
    closed = models.IntegerField()
    closed_on_time = models.IntegerField()
    first_dispatched = models.IntegerField()
    dispatched_on_time = models.IntegerField()
    rated = models.IntegerField()
    satisfied = models.IntegerField()
    satisfaction_sum = models.BigIntegerField()
    handling_seconds = models.DecimalField(max_digits=24, decimal_places=6)
    handling_n = models.IntegerField()

    class Meta:
        abstract = True


class KpiDay(_KpiKey, _KpiParts):
    """gridmgmt.kpi's summary: the event-derived KPI counts of one local day, per area (the ids copied onto the
    events) and team, for the events up to KpiWatermark.upto. Built and kept up to date by
    ``kpi.kpi_summary_refresh`` (``manage.py kpi_summarize``, the deployed timer); never edited by hand."""

    community_id = models.BigIntegerField(null=True)
    team_id = models.BigIntegerField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "district_id", "street_id", "community_id", "team_id"],
                name="kpiday_key",
                nulls_distinct=False,
            )
        ]


class KpiDayDepartment(_KpiKey, _KpiParts):
    """The same summary per day, district, street and department (copied onto the events), for the department
    grouping: KpiDay keyed by team and department would hold 3.4× its rows (gridmgmt.kpi._ROLLUPS)."""

    department_id = models.BigIntegerField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "district_id", "street_id", "department_id"],
                name="kpidaydepartment_key",
                nulls_distinct=False,
            )
        ]


class KpiVolatile(_KpiKey):
    """The summarized events whose on-time flags read the case as it is now (a first dispatch against the
    case's dispatch deadline, which a resume moves; history imported without the flag written at handling or
    closing), with what they contributed to KpiDay and KpiDayDepartment when last summarized: corrected when their
    case changes."""

    event_id = models.BigIntegerField(primary_key=True)
    case_id = models.BigIntegerField(db_index=True)
    community_id = models.BigIntegerField(null=True)
    team_id = models.BigIntegerField(null=True)
    department_id = models.BigIntegerField(null=True)
    handled_on_time = models.IntegerField()
    closed_on_time = models.IntegerField()
    first_dispatched = models.IntegerField()
    dispatched_on_time = models.IntegerField()


class KpiWatermark(models.Model):
    """One row: KpiDay, KpiDayDepartment and KpiVolatile hold every event with id <= upto (all committed when it
    was taken)."""

    upto = models.BigIntegerField()
    refreshed_at = models.DateTimeField()
