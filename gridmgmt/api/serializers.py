"""Shapes of the API. Output serializers only read what the views' querysets already joined; input
serializers only parse — the rules (who may, from which state, with which fields) live in services."""

import copy

from django.contrib.gis.db.models import PointField
from django.contrib.gis.geos import Point
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.fields import empty
from rest_framework_gis.fields import GeoJsonDict, GeometryField
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from geo.models import GridCell
from geo.navigation import navigation_links
from gridmgmt import access
from gridmgmt.models import Case, CaseEvent, CasePhoto, Category, PatrolTeam, User
from gridmgmt.names import name_localized as localized_name
from gridmgmt.phones import phone_mask
from gridmgmt.photos import MAX_PHOTOS
from gridmgmt.rules import case_actions_allowed, speaker_call_allowed
from gridmgmt.states import case_light

# --- helpers --------------------------------------------------------------------------------------------


def _absolute(request, url: str) -> str:
    return request.build_absolute_uri(url) if request is not None else url


@extend_schema_field(
    {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["Point"]},
            "coordinates": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        },
    }
)
class PointGeoJSONField(GeometryField):
    """A GeoJSON Point outside a model serializer (where the schema cannot be inferred)."""


class PointField2D(GeometryField):
    """A 2-D point straight to GeoJSON. The generic path goes through OGR (building a spatial reference from
    EPSG for every feature) to print the same two numbers; anything else still takes it."""

    def to_representation(self, value):
        if type(value) is Point and not value.hasz and self.transform is None and self.precision is None:
            return GeoJsonDict((("type", "Point"), ("coordinates", [value.x, value.y])))
        return super().to_representation(value)


class StrictBooleanField(serializers.BooleanField):
    """A boolean that is required in form posts too (DRF treats a missing checkbox as False)."""

    default_empty_html = empty


class FieldsBuiltOnce:
    """For model serializers: build the fields from the model once per class, then copy them.

    DRF introspects the model for every serializer instance (every nested one too): for the case detail
    that was 40 % of the worker's CPU per report. The fields depend on the class only (Meta and declared
    fields), so copies of the first, never bound, build are the same thing. A plain field's state is set by
    bind() on the copy, so a shallow copy will do (DRF's deep copy re-runs every constructor); a nested
    serializer is deep-copied, as it holds fields (or a list's child) of its own."""

    def get_fields(self):
        cls = type(self)
        built = cls.__dict__.get("_fields_built")
        if built is None:
            built = super().get_fields()
            cls._fields_built = built
        return {
            name: copy.deepcopy(field) if isinstance(field, serializers.BaseSerializer) else copy.copy(field)
            for name, field in built.items()
        }


SUMMARY_CHARS = 60


def text_summary(text: str, limit: int = SUMMARY_CHARS) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis when longer."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


class NavigationLinkSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="geo | amap | baidu")
    label = serializers.CharField()
    href = serializers.CharField(help_text="geo: URI (WGS-84) or a map app's link (GCJ-02)")


# --- small nested shapes ------------------------------------------------------------------------------


class CategoryBriefSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    label = serializers.SerializerMethodField()
    major = serializers.CharField(source="parent.code", default=None, allow_null=True)

    class Meta:
        model = Category
        fields = ("code", "name", "name_en", "label", "major")

    def get_label(self, obj) -> str:
        return localized_name(obj)


class TeamBriefSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    class Meta:
        model = PatrolTeam
        fields = ("id", "code", "name")


class PhotoSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = CasePhoto
        fields = ("id", "kind", "kind_label", "url", "width", "height", "created_at")

    def get_url(self, obj) -> str:
        return _absolute(self.context.get("request"), obj.image.url)


class ReporterSerializer(serializers.Serializer):
    name = serializers.CharField()
    phone = serializers.CharField(help_text="已脱敏 (masked), e.g. 138****1234")


class ReporterPhoneSerializer(serializers.Serializer):
    phone = serializers.CharField(help_text="完整号码 (unmasked), 供回访拨打")


# --- cases ------------------------------------------------------------------------------------------


class ActionInputSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.ChoiceField(
        choices=["text", "team", "photos", "hours", "satisfaction", "case", "urgency", "category", "component"]
    )
    label = serializers.CharField()
    required = serializers.BooleanField()


class ActionSerializer(serializers.Serializer):
    """One action the caller may take: POST `fields` + the inputs' values to /api/cases/{id}/{path}/."""

    name = serializers.CharField()
    label = serializers.CharField()
    path = serializers.CharField()
    fields = serializers.DictField()
    inputs = ActionInputSerializer(many=True)
    danger = serializers.BooleanField()
    done = serializers.CharField(help_text="操作成功后向用户显示的确认 (e.g. 已提交处理,等待核查)")
    then = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text="结果确定的现场操作 (签收、退单、处置反馈、自处理) 执行后可做的操作; 离线手机据此显示下一步",
    )


class CaseSerializer(FieldsBuiltOnce, GeoFeatureModelSerializer):
    """A case as a GeoJSON feature (list shape)."""

    status_label = serializers.CharField(source="get_status_display", read_only=True)
    source_label = serializers.CharField(source="get_source_display", read_only=True)
    urgency_label = serializers.CharField(source="get_urgency_display", read_only=True)
    level_label = serializers.CharField(source="get_level_display", read_only=True)
    category = CategoryBriefSerializer(read_only=True)
    cell = serializers.CharField(source="cell.code", read_only=True)
    team = TeamBriefSerializer(read_only=True, allow_null=True)
    light = serializers.SerializerMethodField()
    summary = serializers.SerializerMethodField()
    actions = serializers.SerializerMethodField()
    serializer_field_mapping = {**GeoFeatureModelSerializer.serializer_field_mapping, PointField: PointField2D}

    class Meta:
        model = Case
        geo_field = "point"
        fields = (
            "id",
            "point",
            "code",
            "status",
            "status_label",
            "category",
            "urgency",
            "urgency_label",
            "source",
            "source_label",
            "level",
            "level_label",
            "cell",
            "address",
            "summary",
            "team",
            "deadline_at",
            "due_at",
            "light",
            "reported_at",
            "closed_at",
            "supporters",
            "version",
            "actions",
        )
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=["green", "yellow", "red", "none"]))
    def get_light(self, obj) -> str:
        now = self.context.get("now") or timezone.now()
        return case_light(case=obj, now=now)

    def get_summary(self, obj) -> str:
        """The description's start, for a list line (the whole text is in the detail)."""
        return text_summary(obj.description)

    @extend_schema_field(ActionSerializer(many=True))
    def get_actions(self, obj) -> list[dict]:
        """What the caller may do to this case now (gridmgmt.rules): the faces render their buttons from it."""
        request = self.context.get("request")
        if request is None:
            return []
        return case_actions_allowed(case=obj, user=request.user)


class CaseDetailSerializer(CaseSerializer):
    """A case with its photos and the stage clocks; the reporter's contact only for staff, masked."""

    district = serializers.CharField(source="district.code", read_only=True)
    street = serializers.CharField(source="street.code", read_only=True, default=None, allow_null=True)
    community = serializers.CharField(source="community.code", read_only=True, default=None, allow_null=True)
    responsibility_grid = serializers.CharField(
        source="responsibility_grid.code", read_only=True, default=None, allow_null=True
    )
    department = serializers.CharField(source="department.name", read_only=True, default=None, allow_null=True)
    duplicate_of = serializers.CharField(source="duplicate_of.code", read_only=True, default=None, allow_null=True)
    photos = PhotoSerializer(many=True, read_only=True)
    reporter = serializers.SerializerMethodField()
    closing_condition = serializers.SerializerMethodField()
    navigation = serializers.SerializerMethodField()
    speaker_call = serializers.SerializerMethodField()

    class Meta(CaseSerializer.Meta):
        fields = (
            *CaseSerializer.Meta.fields,
            "description",
            "district",
            "street",
            "community",
            "responsibility_grid",
            "department",
            "duplicate_of",
            "external_id",
            "satisfaction",
            "send_back_count",
            "rework_count",
            "extension_pending",
            "hotline_reply",
            "replied_at",
            "accepted_at",
            "dispatch_deadline_at",
            "stage_started_at",
            "warn_at",
            "parked_at",
            "updated_at",
            "photos",
            "reporter",
            "closing_condition",
            "navigation",
            "speaker_call",
        )
        read_only_fields = fields

    def get_closing_condition(self, obj) -> str:
        """The category's handling standard (结案条件): what "done" means for this case."""
        return obj.category.closing_condition or ""

    @extend_schema_field(NavigationLinkSerializer(many=True))
    def get_navigation(self, obj) -> list[dict]:
        """Links that open a phone's map app on the case (geo.navigation)."""
        label = " ".join(part for part in (obj.code, obj.address) if part)
        return navigation_links(lon=obj.point.x, lat=obj.point.y, label=label)

    def get_speaker_call(self, obj) -> bool:
        """Whether the caller may speak about this case through the street loudspeakers now (gridmgmt.rules)."""
        request = self.context.get("request")
        return request is not None and speaker_call_allowed(user=request.user, case=obj)

    @extend_schema_field(ReporterSerializer(allow_null=True))
    def get_reporter(self, obj) -> dict | None:
        request = self.context.get("request")
        if request is None or not access.is_staff_user(request.user):
            return None
        if not (obj.reporter_name or obj.reporter_phone):
            return None
        return {"name": obj.reporter_name, "phone": phone_mask(obj.reporter_phone)}


# --- events ---------------------------------------------------------------------------------------------


class CaseEventSerializer(serializers.ModelSerializer):
    """One timeline row. Residents see what happened and when, not staff notes, actors or internal data;
    field staff (patrol) working the case see everything."""

    case_code = serializers.CharField(source="case.code", read_only=True)
    type_label = serializers.CharField(source="get_type_display", read_only=True)
    actor = serializers.CharField(source="actor.username", read_only=True, default=None, allow_null=True)
    location = GeometryField(read_only=True, allow_null=True)
    photos = PhotoSerializer(many=True, read_only=True)

    class Meta:
        model = CaseEvent
        fields = (
            "id",
            "case",
            "case_code",
            "type",
            "type_label",
            "actor",
            "actor_role",
            "from_status",
            "to_status",
            "at",
            "location",
            "note",
            "data",
            "photos",
        )
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or access.is_resident(user):
            data["actor"] = None
            data["data"] = {}
            data["location"] = None
            if instance.actor_role != User.Role.RESIDENT:
                data["note"] = ""
        return data


# --- teams, cells, categories, me ------------------------------------------------------------------------


class TeamSerializer(GeoFeatureModelSerializer):
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    district = serializers.CharField(source="district.code", read_only=True)
    street = serializers.CharField(source="street.code", read_only=True, default=None, allow_null=True)
    department = serializers.CharField(source="department.name", read_only=True, default=None, allow_null=True)
    skills = serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)
    open_cases = serializers.IntegerField(read_only=True, help_text="未办结案件数 (workload)")

    class Meta:
        model = PatrolTeam
        geo_field = "last_position"
        fields = (
            "id",
            "last_position",
            "code",
            "name",
            "status",
            "status_label",
            "district",
            "street",
            "department",
            "skills",
            "last_position_at",
            "open_cases",
        )
        read_only_fields = fields


class CellSerializer(GeoFeatureModelSerializer):
    district = serializers.CharField(source="district.code", read_only=True)
    street = serializers.CharField(source="street.code", read_only=True, default=None, allow_null=True)
    community = serializers.CharField(source="community.code", read_only=True, default=None, allow_null=True)
    responsibility_grid = serializers.CharField(
        source="responsibility_grid.code", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = GridCell
        geo_field = "geom"
        fields = (
            "id",
            "geom",
            "code",
            "row",
            "col",
            "area_m2",
            "district",
            "street",
            "community",
            "responsibility_grid",
        )
        read_only_fields = fields


class CategoryLeafSerializer(serializers.ModelSerializer):
    label = serializers.SerializerMethodField()

    class Meta:
        model = Category
        fields = (
            "id",
            "code",
            "kind",
            "name",
            "name_en",
            "plain_name",
            "label",
            "limit_unit",
            "limit_normal",
            "limit_urgent",
            "urgent_limit_unit",
            "dispatch_minutes_normal",
            "dispatch_minutes_urgent",
            "default_urgency",
            "duplicate_radius_m",
            "is_sensitive",
            "filing_condition",
            "closing_condition",
        )
        read_only_fields = fields

    def get_label(self, obj) -> str:
        return localized_name(obj)


class CategoryTreeSerializer(CategoryLeafSerializer):
    """A major class (大类) with its active subclasses (小类)."""

    children = CategoryLeafSerializer(many=True, read_only=True, source="active_children")

    class Meta(CategoryLeafSerializer.Meta):
        fields = (*CategoryLeafSerializer.Meta.fields, "children")
        read_only_fields = fields


class DepartmentBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()


class AreaBriefSerializer(DepartmentBriefSerializer):
    level = serializers.CharField()


class MeSerializer(serializers.ModelSerializer):
    role_label = serializers.CharField(source="get_role_display", read_only=True)
    area = AreaBriefSerializer(read_only=True, allow_null=True)
    team = TeamBriefSerializer(read_only=True, allow_null=True)
    department = DepartmentBriefSerializer(read_only=True, allow_null=True)
    is_staff_role = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = (
            "id",
            "username",
            "first_name",
            "last_name",
            "role",
            "role_label",
            "is_staff_role",
            "area",
            "team",
            "department",
        )
        read_only_fields = fields

    def get_is_staff_role(self, obj) -> bool:
        return access.is_staff_user(obj)


# --- inputs ------------------------------------------------------------------------------------------------


class _LocationInput(serializers.Serializer):
    """An optional position of the actor (WGS-84); both or neither."""

    lon = serializers.FloatField(required=False, min_value=-180, max_value=180)
    lat = serializers.FloatField(required=False, min_value=-90, max_value=90)

    def validate(self, attrs):
        if ("lon" in attrs) != ("lat" in attrs):
            raise serializers.ValidationError(
                {"lon": [ErrorDetail(_("经度和纬度须同时填写"), code="location_partial")]}
            )
        return attrs


def _photos_field():
    return serializers.ListField(
        child=serializers.FileField(),
        required=False,
        max_length=MAX_PHOTOS,
        help_text=f"照片 (multipart, 最多 {MAX_PHOTOS} 张)",
    )


class CaseReportInput(serializers.Serializer):
    category = serializers.CharField(max_length=16, help_text="类别(小类)代码, e.g. E0404")
    lon = serializers.FloatField()
    lat = serializers.FloatField()
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    address = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    urgency = serializers.ChoiceField(choices=Case.Urgency.choices, required=False)
    source = serializers.ChoiceField(
        choices=[c for c in Case.Source.choices if c[0] != Case.Source.OPEN311],
        required=False,
        help_text="默认按角色: 居民→resident, 巡查队员→patrol, 监督员→inspector",
    )
    reporter_name = serializers.CharField(required=False, allow_blank=True, default="", max_length=50)
    reporter_phone = serializers.CharField(required=False, allow_blank=True, default="", max_length=20)
    external_id = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)
    idempotency_key = serializers.CharField(required=False, allow_blank=True, max_length=64)
    occurred_at = serializers.DateTimeField(
        required=False, help_text="发现时间 (离线排队的上报: 手机上的时间; 不晚于服务器时间, 不早于 72 小时前)"
    )
    component = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=24, help_text="部件编码: 其养护单位为处置部门"
    )
    photos = _photos_field()


class PublicReportInput(serializers.Serializer):
    category = serializers.CharField(max_length=16)
    lon = serializers.FloatField()
    lat = serializers.FloatField()
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    address = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    reporter_name = serializers.CharField(required=False, allow_blank=True, default="", max_length=50)
    reporter_phone = serializers.CharField(required=False, allow_blank=True, default="", max_length=20)
    idempotency_key = serializers.CharField(required=False, allow_blank=True, max_length=64)
    photos = _photos_field()


class NoteInput(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)


class ReasonInput(serializers.Serializer):
    # Required by the services, which answer with the action's own message ("作废必须填写原因" …).
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)


class FileInput(NoteInput):
    urgency = serializers.ChoiceField(choices=Case.Urgency.choices, required=False)


class DispatchInput(NoteInput):
    team = serializers.IntegerField(help_text="处置队伍 id")
    expected_version = serializers.IntegerField(
        required=False, min_value=0, help_text="乐观锁: 案件的 version(也可用 If-Match 头)"
    )


class ArbitrateInput(NoteInput):
    team = serializers.IntegerField(help_text="处置队伍 id")


class _QueuedInput(serializers.Serializer):
    """A field action a phone may queue offline: when it was done there, and the request's own key."""

    occurred_at = serializers.DateTimeField(
        required=False,
        help_text="完成时间 (离线排队的操作: 手机上的时间; 不晚于服务器时间, 不早于 72 小时前或案件上一事件)",
    )
    idempotency_key = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="幂等键 (也可用 Idempotency-Key 头)"
    )


class LocatedNoteInput(NoteInput, _LocationInput, _QueuedInput):
    pass


class SendBackInput(ReasonInput, _QueuedInput):
    pass


class HandleInput(LocatedNoteInput):
    photos = _photos_field()


class CheckInput(HandleInput):
    passed = StrictBooleanField(help_text="核查是否通过;不通过则返工,须填写 note")


class CloseInput(NoteInput):
    hotline_reply = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class RateInput(NoteInput):
    satisfaction = serializers.IntegerField(min_value=1, max_value=5)
    via = serializers.ChoiceField(
        choices=["", "phone"], required=False, default="", help_text="phone: 派遣员电话回访 (回访) 记录的评价"
    )


class ReassignInput(ReasonInput):
    team = serializers.IntegerField(help_text="新的处置队伍 id")
    expected_version = serializers.IntegerField(required=False, allow_null=True, default=None)


class ComponentLinkInput(NoteInput):
    component = serializers.CharField(max_length=24, help_text="部件编码")


class ReclassifyInput(ReasonInput):
    category = serializers.CharField(max_length=16, help_text="新类别(小类)代码")


BULK_ACTIONS = ("file", "void", "dispatch")


class BulkInput(serializers.Serializer):
    action = serializers.ChoiceField(choices=BULK_ACTIONS)
    cases = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=100, help_text="案件 id (最多 100 个)"
    )
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)
    team = serializers.IntegerField(required=False, allow_null=True, default=None, help_text="dispatch: 队伍 id")


class ExtensionRequestInput(ReasonInput, _QueuedInput):
    hours = serializers.FloatField(help_text="申请延长的工作小时数")


class ExtensionDecideInput(NoteInput):
    approve = StrictBooleanField()


class MergeInput(NoteInput):
    into = serializers.CharField(max_length=32, help_text="合并到的案件 id 或编号")


class PublicRateInput(RateInput):
    token = serializers.CharField(max_length=128, help_text="上报时返回的 tracking_token")


class PublicReopenInput(ReasonInput):
    token = serializers.CharField(max_length=128, help_text="上报时返回的 tracking_token")


# --- public (anonymous) shapes ---------------------------------------------------------------------------


class PublicEventSerializer(serializers.Serializer):
    type = serializers.CharField()
    type_label = serializers.CharField()
    status = serializers.CharField()
    at = serializers.DateTimeField()


class PublicPhotoSerializer(serializers.Serializer):
    kind = serializers.CharField()
    url = serializers.CharField()


class PublicCaseSerializer(serializers.Serializer):
    """What anyone with the case code may see: never the reporter, staff notes or the exact position."""

    code = serializers.CharField()
    status = serializers.CharField()
    status_label = serializers.CharField()
    category = serializers.CharField(help_text="通俗说法")
    location = PointGeoJSONField(help_text="所在单元网格的中心点(已模糊化)")
    cell = serializers.CharField(help_text="单元网格编码")
    description = serializers.CharField(allow_null=True, help_text="仅居民/Open311 公众上报的描述公开")
    photos = PublicPhotoSerializer(many=True)
    merged = serializers.BooleanField(help_text="重复上报,已合并到另一案件")
    reported_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    supporters = serializers.IntegerField()
    satisfaction = serializers.IntegerField(allow_null=True)
    events = PublicEventSerializer(many=True)


class PublicReportResultSerializer(PublicCaseSerializer):
    tracking_token = serializers.CharField(help_text="评价、重新打开时需要;请妥善保存")


class DuplicatesQuery(serializers.Serializer):
    category = serializers.CharField(max_length=16)
    lon = serializers.FloatField(min_value=-180, max_value=180)
    lat = serializers.FloatField(min_value=-90, max_value=90)
    exclude = serializers.IntegerField(required=False, help_text="排除的案件 id (自身)")
    radius = serializers.FloatField(
        required=False, min_value=1, max_value=5000, help_text="搜索半径(米, 仅工作人员; 默认按类别)"
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=20, default=5)


class DuplicateCaseSerializer(CaseSerializer):
    distance_m = serializers.FloatField(read_only=True)

    class Meta(CaseSerializer.Meta):
        fields = (*CaseSerializer.Meta.fields, "distance_m")
        read_only_fields = fields


class PublicDuplicateSerializer(serializers.Serializer):
    code = serializers.CharField()
    status = serializers.CharField()
    status_label = serializers.CharField()
    category = serializers.CharField()
    location = PointGeoJSONField(help_text="所在单元网格的中心点(已模糊化)")
    distance_m = serializers.FloatField()
    supporters = serializers.IntegerField()
    reported_at = serializers.DateTimeField()


class CandidateSerializer(serializers.Serializer):
    team = TeamBriefSerializer()
    score = serializers.FloatField()
    distance_m = serializers.FloatField(allow_null=True)
    owns_grid = serializers.BooleanField()
    workload = serializers.IntegerField()
    skill = serializers.BooleanField()
    busy = serializers.SerializerMethodField(help_text="队伍处置中 (排序扣分)")
    reasons = serializers.ListField(child=serializers.CharField())

    def get_busy(self, candidate) -> bool:
        return candidate.team.status == PatrolTeam.Status.BUSY


class CandidatesSerializer(serializers.Serializer):
    case = serializers.CharField(help_text="案件编号")
    results = CandidateSerializer(many=True)


class CaseCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="符合筛选条件的案件总数 (所有状态)")
    by_status = serializers.DictField(child=serializers.IntegerField(), help_text="状态 → 数量 (每个状态都有, 无则 0)")
