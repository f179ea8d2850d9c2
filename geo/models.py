"""The spatial domain: administrative areas, unit and responsibility grids, cameras, components.

Everything is stored in WGS-84 (SRID 4326); metric work happens in UTM 51N (EPSG:32651).
Geometry validity is a database constraint, so no writer (ORM, COPY, raw SQL) can skip it.
"""

from django.contrib.gis.db import models
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext_lazy as _

UTM_SRID = 32651  # UTM zone 51N: metric work for Shanghai
CELL_MAX_AREA_M2 = 10_050.0  # 100 m x 100 m + 0.5 %
# A "plain" cell for the tile SQL: ≥ 90 % of a 100 m cell with 4 corners, every side ≥ ~80 m, which stays a valid
# ring when its corners are snapped to whole tile units (geo.selectors.CELL_TILE_SQL).
TILE_PLAIN_CELL_M2 = 9_000.0


class AdminArea(models.Model):
    """District → street/town → community, each with a GB/T 2260-style code."""

    class Level(models.TextChoices):
        CITY = "city", _("市")
        DISTRICT = "district", _("区")
        STREET = "street", _("街镇")
        COMMUNITY = "community", _("社区")

    code = models.CharField(_("代码"), max_length=12, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    name_en = models.CharField(_("英文名称"), max_length=100, blank=True)
    level = models.CharField(_("层级"), max_length=10, choices=Level.choices, db_index=True)
    parent = models.ForeignKey(
        "self", verbose_name=_("上级"), null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    boundary = models.MultiPolygonField(_("边界"), srid=4326)
    area_m2 = models.FloatField(_("面积(平方米)"))
    is_synthetic = models.BooleanField(_("演示生成"), default=False, help_text=_("演示用的合成边界,非官方数据"))

    class Meta:
        verbose_name = _("行政区域")
        verbose_name_plural = _("行政区域")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(boundary__isvalid=True), name="adminarea_boundary_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class ResponsibilityGrid(models.Model):
    """责任网格: a group of unit cells owned by one patrol team."""

    code = models.CharField(_("代码"), max_length=20, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    district = models.ForeignKey(AdminArea, verbose_name=_("区"), on_delete=models.PROTECT, related_name="+")
    street = models.ForeignKey(
        AdminArea, verbose_name=_("街镇"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    community = models.ForeignKey(
        AdminArea, verbose_name=_("社区"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    team = models.ForeignKey(
        "gridmgmt.PatrolTeam",
        verbose_name=_("责任队伍"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="responsibility_grids",
    )
    geom = models.MultiPolygonField(_("范围"), srid=4326, null=True, blank=True)

    class Meta:
        verbose_name = _("责任网格")
        verbose_name_plural = _("责任网格")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(geom__isnull=True) | Q(geom__isvalid=True), name="respgrid_geom_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class GridCell(models.Model):
    """单元网格: a ~100 m × 100 m cell, clipped to its community (or district) boundary."""

    code = models.CharField(_("网格编码"), max_length=24, unique=True)
    geom = models.MultiPolygonField(_("范围"), srid=4326)
    # No spatial index: nothing searches by centre (lookups use geom), and an index would slow grid_build's COPY.
    center = models.PointField(
        _("中心点"), srid=4326, spatial_index=False, help_text=_("落在网格内的代表点,用于公开位置的模糊化")
    )
    area_m2 = models.FloatField(_("面积(平方米)"))
    # A "plain" cell's one ring for the tile SQL (geo.selectors.CELL_TILE_SQL), kept by PostgreSQL on every write:
    # 4 corners and ≥ TILE_PLAIN_CELL_M2, exterior clockwise in degrees, so that the tile's y-down affine map
    # turns it counter-clockwise — the orientation MVT wants — with no ST_ForcePolygonCCW per cell and tile.
    # NULL for a cell cut by a boundary (those go through ST_AsMVTGeom). bench/tiles.py: −1.4 ms on a z13 tile
    # (1,848 cells), −0.6 ms on an average z13–z16 tile, the same bytes.
    tile_ring = models.GeneratedField(
        expression=RawSQL(
            f"CASE WHEN ST_NPoints(geom) = 5 AND area_m2 >= {TILE_PLAIN_CELL_M2} "
            "THEN ST_ForcePolygonCW(ST_GeometryN(geom, 1)) END",
            (),
        ),
        output_field=models.PolygonField(srid=4326, spatial_index=False),
        db_persist=True,
        verbose_name=_("瓦片轮廓"),
    )
    row = models.IntegerField(_("行号"), help_text=_("UTM 51N 中自北向南的行序"))
    col = models.IntegerField(_("列号"), help_text=_("UTM 51N 中自西向东的列序"))
    district = models.ForeignKey(AdminArea, verbose_name=_("区"), on_delete=models.PROTECT, related_name="+")
    street = models.ForeignKey(
        AdminArea, verbose_name=_("街镇"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    community = models.ForeignKey(
        AdminArea, verbose_name=_("社区"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    responsibility_grid = models.ForeignKey(
        ResponsibilityGrid,
        verbose_name=_("责任网格"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="cells",
    )

    class Meta:
        verbose_name = _("单元网格")
        verbose_name_plural = _("单元网格")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(geom__isvalid=True), name="gridcell_geom_valid"),
            models.CheckConstraint(
                condition=Q(area_m2__gt=0) & Q(area_m2__lte=CELL_MAX_AREA_M2), name="gridcell_area_range"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class Camera(models.Model):
    class Status(models.TextChoices):
        ONLINE = "online", _("在线")
        OFFLINE = "offline", _("离线")

    code = models.CharField(_("编号"), max_length=32, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    location = models.PointField(_("位置"), srid=4326)
    cell = models.ForeignKey(
        GridCell, verbose_name=_("所在网格"), null=True, blank=True, on_delete=models.SET_NULL, related_name="cameras"
    )
    district = models.ForeignKey(
        AdminArea, verbose_name=_("区"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.ONLINE)
    stream_url = models.CharField(_("视频流地址"), max_length=500, blank=True)
    last_seen_at = models.DateTimeField(_("最近在线"), null=True, blank=True)

    class Meta:
        verbose_name = _("摄像头")
        verbose_name_plural = _("摄像头")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Speaker(models.Model):
    """街头语音呼叫喇叭: an IP loudspeaker on a pole, often beside a camera, through which the command centre speaks
    to the street (Zhoupu answers what it sees on screen "through street voice-call loudspeakers"). Its cell is
    located from its position by geo.selectors.cell_locate (geo.services.speaker_locate)."""

    class Gateway(models.TextChoices):
        # Most IP speakers read text aloud with their own TTS; the others play an audio file they are sent.
        TEXT_JSON = "text_json", _("文本 (JSON)")
        TEXT_FORM = "text_form", _("文本 (表单)")
        AUDIO_WAV = "audio_wav", _("音频 (WAV, 本地合成)")

    code = models.CharField(_("编号"), max_length=32, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    location = models.PointField(_("位置"), srid=4326)
    cell = models.ForeignKey(
        GridCell, verbose_name=_("所在网格"), null=True, blank=True, on_delete=models.SET_NULL, related_name="speakers"
    )
    district = models.ForeignKey(
        AdminArea, verbose_name=_("区"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    camera = models.ForeignKey(
        Camera,
        verbose_name=_("相邻摄像头"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="speakers",
        help_text=_("装在同一杆上或旁边的摄像头(可选)"),
    )
    gateway = models.CharField(_("接入方式"), max_length=16, choices=Gateway.choices, default=Gateway.TEXT_JSON)
    url = models.URLField(_("喇叭接口地址"), max_length=500, help_text=_("接收喊话的 HTTP 地址 (POST)"))
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("街头喇叭")
        verbose_name_plural = _("街头喇叭")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Component(models.Model):
    """部件: a fixed public asset. Its departments are the basis of dispatch routing."""

    class MajorClass(models.TextChoices):
        PUBLIC_FACILITIES = "01", _("公用设施")
        ROAD_TRAFFIC = "02", _("道路交通")
        CITY_APPEARANCE = "03", _("市容环境")
        LANDSCAPING = "04", _("园林绿化")
        HOUSING_LAND = "05", _("房屋土地")
        OTHER = "06", _("其他")

    code = models.CharField(_("部件编码"), max_length=24, unique=True)
    major_class = models.CharField(_("大类"), max_length=2, choices=MajorClass.choices)
    category = models.ForeignKey(
        "gridmgmt.Category", verbose_name=_("小类"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    name = models.CharField(_("名称"), max_length=100, blank=True)
    location = models.PointField(_("位置"), srid=4326)
    cell = models.ForeignKey(
        GridCell,
        verbose_name=_("所在网格"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="components",
    )
    authority = models.ForeignKey(
        "gridmgmt.Department",
        verbose_name=_("主管部门"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    owner = models.ForeignKey(
        "gridmgmt.Department",
        verbose_name=_("权属单位"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    maintainer = models.ForeignKey(
        "gridmgmt.Department",
        verbose_name=_("养护单位"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    status = models.CharField(_("状态"), max_length=20, blank=True, default="normal")

    class Meta:
        verbose_name = _("部件")
        verbose_name_plural = _("部件")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code
