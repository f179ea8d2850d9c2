from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework.authtoken.models import TokenProxy

from geo.admin_mixins import (
    LargeTableAdminMixin,
    OfflineGISModelAdmin,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    RelatedOnlyLightFilter,
)
from geo.models import AdminArea
from gridmgmt import access
from gridmgmt.errors import InvalidInput
from gridmgmt.models import (
    CameraSystem,
    Case,
    CaseEvent,
    CasePhoto,
    Category,
    Delivery,
    DeliveryAttempt,
    Department,
    Notification,
    NotifyPreference,
    Open311Client,
    PatrolTeam,
    Robot,
    SpeakerCall,
    User,
    WorkCalendarDay,
)
from gridmgmt.services import calendar as calendar_service

_AREA_FKS = ("district", "street", "community")

# API tokens are secrets: never listed in the admin (a lost one is replaced through /api/token/).
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)


class AreaScopedAdminMixin:
    """Users and teams for an administrator bound to an area (gridmgmt.access.is_role_admin): they see and
    edit only their area's rows (`scoped_queryset`; anything else is "not found"), may add, never delete, and
    pick areas and teams only from their own scope. Superusers keep Django's own rules."""

    def scoped_queryset(self, request):
        raise NotImplementedError

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(pk__in=self.scoped_queryset(request).values("pk"))

    def has_module_permission(self, request):
        return access.is_role_admin(request.user) or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return access.is_role_admin(request.user) or super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return access.is_role_admin(request.user) or super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return access.is_role_admin(request.user) or super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False if access.is_role_admin(request.user) else super().has_delete_permission(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            if db_field.related_model is AdminArea:
                kwargs["queryset"] = access.areas_visible(user=request.user)
            elif db_field.related_model is PatrolTeam:
                kwargs["queryset"] = access.teams_visible(user=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request, obj=None, change=False, **kwargs):
        """Area and team choices from the administrator's scope, plus the row's current value (a team member
        may carry the district as area; a team's district sits above a street's administrator): a value they
        could not pick is kept, never silently blanked."""
        form = super().get_form(request, obj, change=change, **kwargs)
        if request.user.is_superuser:
            return form
        keep = {}
        if obj is not None:
            keep = {name: getattr(obj, f"{name}_id", None) for name in form.base_fields}
        if "district" in form.base_fields and request.user.area_id:  # a new team: the administrator's district
            keep.setdefault("district", None)
            keep["district"] = keep["district"] or access.district_of(area_id=request.user.area_id)
        for name, field in form.base_fields.items():
            model = getattr(getattr(field, "queryset", None), "model", None)
            if model in (AdminArea, PatrolTeam) and keep.get(name):
                wider = Q(pk__in=field.queryset.values("pk")) | Q(pk=keep[name])
                field.queryset = model.objects.filter(wider)
                if model is AdminArea:
                    field.queryset = field.queryset.defer("boundary")
        return form

    def get_autocomplete_fields(self, request):
        # Autocomplete answers come from the other models' admins, unscoped: plain scoped selects instead.
        return super().get_autocomplete_fields(request) if request.user.is_superuser else ()


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "name_en", "area")
    search_fields = ("code", "name", "name_en")
    autocomplete_fields = ("area",)
    list_select_related = ("area",)

    def get_queryset(self, request):
        return super().get_queryset(request).defer("area__boundary")


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = (
        "code",
        "name",
        "kind",
        "parent",
        "limit_normal",
        "limit_unit",
        "limit_urgent",
        "urgent_limit_unit",
        "default_department",
        "is_sensitive",
        "auto_dispatch",
        "is_active",
    )
    list_filter = ("kind", "is_active", "is_sensitive", "auto_dispatch", "limit_unit")
    search_fields = ("code", "name", "name_en", "plain_name")
    autocomplete_fields = ("parent", "default_department")
    list_select_related = ("parent", "default_department")
    fieldsets = (
        (None, {"fields": ("code", "kind", "parent", "name", "name_en", "plain_name", "is_active", "is_sensitive")}),
        (
            _("时限"),
            {
                "fields": (
                    ("limit_normal", "limit_unit"),
                    ("limit_urgent", "urgent_limit_unit"),
                    ("dispatch_minutes_normal", "dispatch_minutes_urgent"),
                    "default_urgency",
                )
            },
        ),
        (_("立案与结案"), {"fields": ("filing_condition", "closing_condition", "default_department", "auto_dispatch")}),
        (_("疑似重复"), {"fields": ("duplicate_radius_m", "duplicate_window_hours")}),
        (_("街头喇叭"), {"fields": ("speaker_preset",)}),
    )


class TeamMemberInline(admin.TabularInline):
    """The team's members on the team's page (edit a member on their own page: the link)."""

    model = User
    fk_name = "team"
    fields = ("username", "last_name", "first_name", "role", "phone", "is_active")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name = _("队员")
    verbose_name_plural = _("队员")

    def has_add_permission(self, request, obj=None):
        return False  # a member is added on the user page (team field), with a password

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return access.is_role_admin(request.user) or super().has_view_permission(request, obj)


@admin.register(PatrolTeam)
class PatrolTeamAdmin(AreaScopedAdminMixin, OfflineGISModelAdmin):
    list_display = ("code", "name", "district", "street", "department", "status", "member_count", "last_position_at")
    inlines = (TeamMemberInline,)
    list_filter = ("status", ("district", RelatedOnlyLightFilter))
    search_fields = ("code", "name")
    autocomplete_fields = ("district", "street", "department")
    filter_horizontal = ("skills",)
    list_select_related = ("district", "street", "department")

    def scoped_queryset(self, request):
        return access.teams_visible(user=request.user)

    def get_queryset(self, request):
        qs = super().get_queryset(request).defer("district__boundary", "street__boundary")
        return qs.annotate(members_n=Count("members"))

    @admin.display(description=_("队员数"), ordering="members_n")
    def member_count(self, obj) -> int:
        return obj.members_n


@admin.register(User)
class UserAdmin(AreaScopedAdminMixin, DjangoUserAdmin):
    list_display = ("username", "last_name", "first_name", "role", "area", "team", "department", "is_active")
    list_filter = ("role", ("team", RelatedOnlyLightFilter), ("area", RelatedOnlyLightFilter), "is_staff", "is_active")
    search_fields = ("username", "first_name", "last_name", "email", "phone")
    autocomplete_fields = ("area", "team", "department")
    list_select_related = ("area", "team", "department")
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        (_("网格化管理"), {"fields": ("role", "area", "team", "department", "phone")}),
    )
    add_fieldsets = (
        *DjangoUserAdmin.add_fieldsets,
        (_("网格化管理"), {"fields": ("role", "area", "team", "department", "phone")}),
    )

    def scoped_queryset(self, request):
        return access.users_visible(user=request.user)

    def get_queryset(self, request):
        return super().get_queryset(request).defer("area__boundary")

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        # A scoped administrator grants no superuser status, groups or model permissions: roles and areas
        # decide what an account may do (gridmgmt.access).
        hidden = {"is_superuser", "groups", "user_permissions"}
        return [(name, {**opts, "fields": [f for f in opts["fields"] if f not in hidden]}) for name, opts in fieldsets]


class CasePhotoInline(ReadOnlyInline):
    """Evidence is append-only (a trigger refuses UPDATE/DELETE): photos are added with the event that
    brings them, through the services, never here."""

    model = CasePhoto
    fields = ("kind", "image", "width", "height", "created_at")
    readonly_fields = fields
    show_change_link = False


class CaseEventInline(ReadOnlyInline):
    model = CaseEvent
    fields = ("at", "type", "from_status", "to_status", "actor", "actor_role", "note")
    readonly_fields = fields
    ordering = ("id",)


@admin.register(Case)
class CaseAdmin(ReadOnlyAdminMixin, LargeTableAdminMixin, OfflineGISModelAdmin):
    """View only. Every field of a case is either workflow state (status, level, team, department, category,
    urgency, point and its areas, the stage clocks and deadlines, supporters, satisfaction, the merge link…)
    that moves only through the services, which also write the event row, or what the reporter said, which
    the history keeps as reported. A case is created by intake (code serial, REPORTED event), never here."""

    list_display = (
        "code",
        "category",
        "status",
        "urgency",
        "level",
        "source",
        "district",
        "street",
        "team",
        "reported_at",
        "deadline_at",
    )
    list_filter = ("status", "urgency", "level", "source", ("district", RelatedOnlyLightFilter))
    search_fields = ("=code", "=external_id", "address")
    date_hierarchy = "reported_at"
    raw_id_fields = ("cell", "duplicate_of", "reporter", "camera")
    autocomplete_fields = (*_AREA_FKS, "responsibility_grid", "category", "team", "department")
    list_select_related = ("category", "district", "street", "team")
    changelist_defer = ("district__boundary", "street__boundary")
    inlines = (CasePhotoInline, CaseEventInline)

    def get_readonly_fields(self, request, obj=None):
        # All of them, also for a user holding a change permission (the mixin refuses the change anyway).
        return [f.name for f in self.model._meta.concrete_fields]


class CaseLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A view-only log of rows that hang off cases (events, notifications), found by case code."""

    search_fields = ("=case__code",)


@admin.register(CaseEvent)
class CaseEventAdmin(LargeTableAdminMixin, CaseLogAdmin):
    """Append-only (a trigger refuses UPDATE/DELETE): view only."""

    list_display = ("id", "case", "type", "from_status", "to_status", "actor", "actor_role", "at")
    list_filter = ("type", "actor_role")
    list_select_related = ("case", "actor")
    raw_id_fields = ("case", "actor", "photos")
    changelist_defer = ("case__point", "case__description")


class CalendarImportForm(forms.Form):
    year = forms.IntegerField(label=_("年份"), min_value=2000, max_value=2100)
    file = forms.FileField(
        label=_("文件 (CSV 或 ICS)"),
        required=False,
        help_text=_(
            "CSV: 日期,是否工作日(1/0),说明;ICS: 全天事件,标题含「班」为调休上班。不选文件则从 chinesecalendar 导入。"
        ),
    )


@admin.register(WorkCalendarDay)
class WorkCalendarDayAdmin(admin.ModelAdmin):
    """Holidays and make-up working days: editable data, deadlines read them at computation time. "导入工作日历"
    replaces one year from a CSV/ICS file or from the chinesecalendar package (gridmgmt.services.calendar)."""

    list_display = ("date", "is_workday", "name")
    list_filter = ("is_workday",)
    date_hierarchy = "date"
    search_fields = ("name",)
    change_list_template = "admin/gridmgmt/workcalendarday/change_list.html"

    def get_urls(self):
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="gridmgmt_workcalendarday_import"), *super().get_urls()]

    def import_view(self, request):
        if not (self.has_add_permission(request) and self.has_delete_permission(request)):
            raise PermissionDenied
        form = CalendarImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            year, upload = form.cleaned_data["year"], form.cleaned_data["file"]
            try:
                if upload is None:
                    days = calendar_service.calendar_from_package(year=year)
                else:
                    data = upload.read(calendar_service.MAX_BYTES + 1)
                    is_ics = upload.name.lower().endswith(".ics") or data.lstrip()[:15] == b"BEGIN:VCALENDAR"
                    parse = calendar_service.calendar_parse_ics if is_ics else calendar_service.calendar_parse_csv
                    days = parse(data=data)
                n = calendar_service.calendar_import(year=year, days=days)
            except InvalidInput as e:
                form.add_error("file" if e.field == "file" else "year", str(e.message))
            else:
                done = _("已导入 %(y)d 年工作日历:%(n)d 天") % {"y": year, "n": n}
                self.message_user(request, done, messages.SUCCESS)
                return redirect(reverse("admin:gridmgmt_workcalendarday_changelist") + f"?date__year={year}")
        context = {
            **self.admin_site.each_context(request),
            "title": _("导入工作日历"),
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/gridmgmt/workcalendarday/import.html", context)


@admin.register(CameraSystem)
class CameraSystemAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "district", "is_active", "dedup_minutes")
    list_filter = ("is_active",)
    search_fields = ("code", "name")
    autocomplete_fields = ("district",)


@admin.register(Notification)
class NotificationAdmin(CaseLogAdmin):
    """The inboxes (gridmgmt.notify writes them; people mark them read through /api/notifications/)."""

    list_display = ("id", "user", "kind", "case", "title", "created_at", "read_at")
    list_filter = ("kind",)
    list_select_related = ("user", "case")
    raw_id_fields = ("user", "case", "event")
    search_fields = (*CaseLogAdmin.search_fields, "user__username")


@admin.register(SpeakerCall)
class SpeakerCallAdmin(CaseLogAdmin):
    """The loudspeaker call log (gridmgmt.services.speakers writes it): who, when, which speakers, what, outcome."""

    list_display = ("id", "at", "actor", "case", "text", "repeat", "outcome")
    list_filter = ("outcome",)
    list_select_related = ("actor", "case")
    raw_id_fields = ("actor", "case", "cell", "preset", "speakers")
    search_fields = (*CaseLogAdmin.search_fields, "text", "actor__username")
    changelist_defer = ("case__point", "case__description")


@admin.register(Open311Client)
class Open311ClientAdmin(admin.ModelAdmin):
    """Open311 api_keys: created here, shown once in the confirmation message, stored hashed; untick
    "启用" to revoke. A lost key is replaced by creating a new client and deactivating the old one."""

    list_display = ("name", "key_prefix", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "key_prefix", "contact")
    fields = ("name", "contact", "is_active", "key_prefix", "created_at")
    readonly_fields = ("key_prefix", "created_at")

    def save_model(self, request, obj, form, change):
        key = obj.key_issue() if not change else None
        super().save_model(request, obj, form, change)
        if key:
            messages.warning(
                request,
                _("%(name)s 的 api_key(仅显示这一次,请立即转交并妥善保存): %(key)s") % {"name": obj.name, "key": key},
            )


# --- delivery outside the browser (gridmgmt.outbox) ------------------------------------------------------------


class DeliveryAttemptInline(ReadOnlyInline):
    model = DeliveryAttempt
    fields = ("at", "ok", "detail", "error", "duration_ms")
    show_change_link = False


@admin.register(Delivery)
class DeliveryAdmin(LargeTableAdminMixin, CaseLogAdmin):
    """The delivery log: every message sent (or waiting, or given up) by e-mail, SMS or group robot, with each
    attempt's answer, error and duration. View only; "retry now" puts failed messages back in the queue."""

    list_display = ("id", "case", "kind", "channel", "target", "status", "attempts", "next_at", "sent_at", "last_error")
    list_filter = ("status", "channel", "kind")
    list_select_related = ("case",)
    raw_id_fields = ("case", "event", "notification", "user", "robot")
    search_fields = (*CaseLogAdmin.search_fields, "=target")
    inlines = [DeliveryAttemptInline]
    actions = ["retry_now"]

    @admin.action(description=_("立即重试"), permissions=["view"])
    def retry_now(self, request, queryset):
        if not request.user.is_superuser:
            self.message_user(request, _("只有超级管理员可以重试"), messages.ERROR)
            return
        n = queryset.exclude(status=Delivery.Status.SENT).update(
            status=Delivery.Status.PENDING, next_at=timezone.now(), attempts=0
        )
        self.message_user(request, _("%(n)d 条消息已重新排队") % {"n": n}, messages.SUCCESS)


@admin.register(Robot)
class RobotAdmin(admin.ModelAdmin):
    """Group robots (企业微信/钉钉/飞书) of a team or an area: the webhook URL the vendor gave, and the secret
    when 「加签」 is on. An area's robot hears of escalations to that area's level."""

    list_display = ("name", "vendor", "area", "team", "kinds", "is_active")
    list_filter = ("vendor", "is_active")
    search_fields = ("name",)
    autocomplete_fields = ("area", "team")
    list_select_related = ("area", "team")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("area__boundary")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "webhook_url":
            kwargs["assume_scheme"] = "https"  # a webhook typed without a scheme is the vendor's HTTPS one
        return super().formfield_for_dbfield(db_field, request, **kwargs)


@admin.register(NotifyPreference)
class NotifyPreferenceAdmin(admin.ModelAdmin):
    """Per user or per team: which notification kinds go to which channel, and quiet hours."""

    list_display = ("__str__", "user", "team", "channels", "quiet_from", "quiet_to")
    autocomplete_fields = ("user", "team")
    list_select_related = ("user", "team")
