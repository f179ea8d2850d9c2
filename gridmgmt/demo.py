"""Demo data for one district (Pudong, 310115 by default): cameras, components, teams, users, 90 days of cases.

Every generator is deterministic for a given seed and `now` (case codes aside: they come from the product's
sequence), idempotent (it detects its own rows and skips) and set-based: points are drawn in PostGIS
(`ST_GeneratePoints` with a per-row seed), rows are written with `INSERT … SELECT` over arrays, with COPY or in
batches, never one `save()` per row. The case history is generated in Python (one history per case) by the
domain's own rules — see "cases" below — and its events are written by `gridmgmt.events.events_write`, so
every event gets its feed row from the same code as in production.
"""

from __future__ import annotations

import json
import math
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from io import StringIO
from itertools import accumulate
from pathlib import Path
from time import perf_counter
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.gis.geos import Point
from django.core.management import call_command, get_commands
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from geo.models import AdminArea, Camera, Component, GridCell, ResponsibilityGrid, Speaker
from geo.services import speaker_locate
from gridmgmt import access, events
from gridmgmt.errors import DomainError
from gridmgmt.escalation import cases_escalate
from gridmgmt.events import case_envelope, event_build, events_write
from gridmgmt.models import Case, CaseEvent, CasePhoto, Category, Department, PatrolTeam, User, WorkCalendarDay
from gridmgmt.rules import RULES, rule_check, statuses_actionable
from gridmgmt.services import moves
from gridmgmt.services.intake import case_code
from gridmgmt.states import OPEN_STATUSES, overdue_q
from gridmgmt.workcalendar import calendar_load

TZ = ZoneInfo("Asia/Shanghai")
DEFAULT_SEED = 20130801  # Pudong's smart-community pilot started in August 2013
DEFAULT_DISTRICT = "310115"
DEMO_PASSWORD = "demo1234"
DEMO_KEY_PREFIX = "demo:"  # idempotency_key of generated cases: how a second run recognises them
PHOTO_DIR = "demo"  # under MEDIA_ROOT
FONT_PATH = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
Out = Callable[[str], None]


class DemoError(Exception):
    """The demo cannot be generated (missing district, cells or taxonomy)."""


@dataclass(frozen=True)
class DemoScale:
    cameras: int = 2000
    speakers: int = 160  # beside that many cameras (at most one each)
    components: int = 5000
    teams: int = 60
    cases: int = 20_000
    days: int = 90


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    label: str  # Chinese role name
    gloss: str  # English gloss

    @property
    def face(self) -> str:
        """The page this user lands on after logging in (gridmgmt.access.ROLE_HOME)."""
        return f"/{access.ROLE_HOME[self.role]}/"


# One login per role; all share DEMO_PASSWORD (documented by `demo_banner`).
DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("resident", User.Role.RESIDENT, "居民", "resident"),
    DemoUser("patrol", User.Role.PATROL, "巡查队员", "patrol member"),
    DemoUser("dispatcher", User.Role.DISPATCHER, "派遣员", "dispatcher"),
    DemoUser("inspector", User.Role.INSPECTOR, "监督员", "grid inspector"),
    DemoUser("shift_leader", User.Role.SHIFT_LEADER, "值班长", "shift leader"),
    DemoUser("wall", User.Role.WALL, "大屏(只读)", "video wall, read-only"),
    DemoUser("admin", User.Role.ADMIN, "管理员", "administrator"),
)


@dataclass
class StepResult:
    name: str
    created: int = 0  # -1: not counted (a geo command reports its own numbers)
    skipped: bool = False
    detail: str = ""
    seconds: float = 0.0


@dataclass
class DemoReport:
    steps: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0


# --------------------------------------------------------------------------------------------- vocabulary
ROADS = (
    "世纪大道", "张杨路", "浦东南路", "东方路", "杨高中路", "龙阳路", "锦绣路", "金桥路", "川沙路", "华夏东路",
    "沪南公路", "周祝公路", "浦建路", "峨山路", "源深路", "崂山路", "商城路", "潍坊路", "松林路", "南泉路",
    "临沂路", "洪山路", "成山路", "杨思路", "高科西路", "张江路", "祖冲之路", "碧波路", "蔡伦路", "郭守敬路",
    "金科路", "博云路", "罗山路", "德平路", "云山路", "金杨路", "五莲路", "巨峰路", "博兴路", "新金桥路",
    "沪东路", "浦东北路", "凌河路", "高桥路", "秀沿路", "康桥路", "周浦中心路", "年家浜路", "沪南路", "航头路",
)  # fmt: skip
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁沈"
GIVEN = (
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英",
    "霞", "平", "刚", "桂英", "建华", "志强", "海燕", "国庆", "晓东", "文斌", "红梅", "卫东", "建国", "丹", "浩",
)  # fmt: skip

# Relative frequency of each minor class among cases: street order and rubbish dominate. Unlisted: 0.15.
CASE_WEIGHTS: dict[str, float] = {
    "E0404": 16, "E0405": 9, "E0101": 9, "E0401": 7, "E0402": 7, "E0201": 6, "E0406": 5, "E0103": 4,
    "E0102": 3, "E0110": 3, "E0407": 3, "E0105": 2.5, "E0403": 2, "E0203": 1.5, "E0410": 1.5, "E0104": 1,
    "E0409": 0.8, "E0108": 0.8, "E0106": 0.6, "E0112": 0.6, "E0301": 0.8, "E0304": 0.6, "E0306": 0.5,
    "E0503": 0.6, "E0504": 0.4, "E0502": 0.3, "E0601": 0.8, "E0602": 0.3,
    "C0109": 1.5, "C0206": 1.0, "C0102": 0.8, "C0103": 0.8, "C0101": 0.6, "C0301": 0.8, "C0204": 0.6,
    "C0202": 0.5, "C0401": 0.6, "C0104": 0.5, "C0201": 0.3,
}  # fmt: skip
# Assets that exist in large numbers on the ground (for the component layer).
COMPONENT_WEIGHTS: dict[str, float] = {
    "C0102": 15, "C0103": 15, "C0101": 10, "C0104": 8, "C0105": 8, "C0106": 8, "C0107": 4, "C0108": 6,
    "C0109": 15, "C0301": 12, "C0303": 5, "C0202": 5, "C0201": 2, "C0401": 8, "C0110": 2, "C0204": 3,
}  # fmt: skip
SOURCE_WEIGHTS: dict[str, float] = {
    Case.Source.PATROL: 34,
    Case.Source.INSPECTOR: 14,
    Case.Source.CAMERA: 16,
    Case.Source.RESIDENT: 14,
    Case.Source.HOTLINE: 17,
    Case.Source.ASSIGNED: 5,
}
# What a street camera can actually see.
CAMERA_CODES = frozenset({"E0101", "E0102", "E0103", "E0105", "E0110", "E0304", "E0503"})
# What a patrol member can fix on the spot (自处理) — moving people and objects, not repairs.
SELF_HANDLE_CODES = frozenset({"E0401", "E0402", "E0405", "E0406", "E0407", "E0203", "E0108", "E0201", "E0410"})
HOURLY = (1, 1, 1, 1, 1, 2, 4, 7, 10, 11, 11, 10, 7, 8, 10, 10, 10, 10, 9, 8, 6, 4, 2, 1)  # reports by hour
VOID_REASONS = ("重复上报,已合并到在办案件", "现场核实无此问题", "不属于城市管理受理范围", "信息不全无法核实")
SENT_BACK_REASONS = ("不属于本单位职责范围", "位置不在本责任网格", "需产权单位处置")
PARK_REASONS = ("涉及多部门协调,报请挂账", "需专项整治统一处置", "待产权单位确认")
CHECK_FAIL_NOTES = ("现场核查未整改到位,返工", "处置后仍有残留,返工", "照片与现场不符,返工")


# --------------------------------------------------------------------------------------------- orchestration
def load_demo(
    *, district_code: str = DEFAULT_DISTRICT, with_geography: bool = True, out: Out = print, **options
) -> DemoReport:
    """Run every step in order; each one skips itself if its rows already exist. `options` (seed, scale,
    now) go to generate_demo_data."""
    started = perf_counter()
    report = DemoReport()
    if with_geography:
        for name, args in (
            ("boundaries_import", []),
            ("areas_synthesize", ["--district", district_code]),
            ("grid_build", ["--district", district_code, "--size", "100", "--no-progress"]),
            ("respgrids_synthesize", ["--district", district_code]),
        ):
            step = _run(name=name, fn=lambda n=name, a=args: _call_geo_command(name=n, args=a), out=out)
            report.steps.append(step)
    report.steps.append(_run(name="taxonomy", fn=load_taxonomy, out=out))
    report.steps += generate_demo_data(district_code=district_code, out=out, **options)
    report.seconds = perf_counter() - started
    out(f"演示数据就绪 demo data ready: {report.seconds:.1f} s")
    return report


def generate_demo_data(
    *,
    district_code: str = DEFAULT_DISTRICT,
    seed: int = DEFAULT_SEED,
    scale: DemoScale = DemoScale(),
    now: datetime | None = None,
    out: Out = print,
) -> list[StepResult]:
    """Everything after the geography and the taxonomy exist: the part tests run on a tiny district."""
    now = (now or timezone.now()).astimezone(TZ).replace(microsecond=0)
    district = AdminArea.objects.filter(code=district_code, level=AdminArea.Level.DISTRICT).first()
    if district is None:
        raise DemoError(f"区 {district_code} 不存在 (district not found: run boundaries_import)")
    if not GridCell.objects.filter(district=district).exists():
        raise DemoError(f"区 {district_code} 没有单元网格 (no cells: run grid_build)")
    if not Category.objects.filter(parent__isnull=False).exists():
        raise DemoError("没有案件类别 (no categories: loaddata departments categories)")
    steps = [
        ("photos", lambda: ensure_photo_pool(seed=seed)),
        ("cameras", lambda: generate_cameras(district=district, count=scale.cameras, seed=seed, now=now)),
        ("components", lambda: generate_components(district=district, count=scale.components, seed=seed)),
        ("teams", lambda: generate_teams(district=district, count=scale.teams, seed=seed, now=now)),
        ("users", lambda: generate_demo_users(district=district)),
        ("trackers", lambda: demo_trackers_register(district=district)),
        ("cases", lambda: generate_cases(district=district, count=scale.cases, days=scale.days, seed=seed, now=now)),
        ("patrol login", lambda: demo_patrol_team_pick(district=district)),
        ("speakers", lambda: generate_speakers(district=district, count=scale.speakers, seed=seed)),
        ("tracks", lambda: generate_tracks(district=district, now=now)),
    ]
    return [_run(name=name, fn=fn, out=out) for name, fn in steps]


def _run(*, name: str, fn: Callable[[], StepResult], out: Out) -> StepResult:
    started = perf_counter()
    result = fn()
    result.name = name
    result.seconds = perf_counter() - started
    verb = "skipped" if result.skipped else f"{result.created} created" if result.created >= 0 else "done"
    out(f"  {name:<22} {verb:<16} {result.detail} ({result.seconds:.1f} s)")
    return result


def _call_geo_command(*, name: str, args: list[str]) -> StepResult:
    # The geography commands are idempotent themselves; we only relay what they print.
    if name not in get_commands():
        return StepResult(name, skipped=True, detail="command not installed")
    buf = StringIO()
    call_command(name, *args, stdout=buf)
    return StepResult(name, created=-1, detail=buf.getvalue().strip().replace("\n", "; "))


def load_taxonomy() -> StepResult:
    """`loaddata departments categories workcalendar` for the fixtures not fully loaded yet (keeps admin
    edits of a fixture whose rows all exist)."""
    fixture_dir = Path(__file__).resolve().parent / "fixtures"
    models = {"departments": Department, "categories": Category, "workcalendar": WorkCalendarDay}
    missing, have_total = [], {}
    for name, model in models.items():
        want = {row["pk"] for row in json.loads((fixture_dir / f"{name}.json").read_text())}
        have = set(model.objects.filter(pk__in=want).values_list("pk", flat=True))
        have_total[name] = len(have)
        if have != want:
            missing.append((name, len(want - have)))
    summary = ", ".join(f"{n} {c}" for n, c in have_total.items())
    if not missing:
        return StepResult("taxonomy", skipped=True, detail=summary)
    call_command("loaddata", *(name for name, _ in missing), verbosity=0)
    names = " ".join(name for name, _ in missing)
    return StepResult("taxonomy", created=sum(c for _, c in missing), detail=f"loaddata {names}")


# --------------------------------------------------------------------------------------------- helpers
# A seeded random point in cell `c` (seed `t.seed`). ST_GeneratePoints gives up — returns empty — on some
# seeds for sliver cells, so those get a point on the cell instead.
POINT_IN_CELL = "coalesce(ST_GeometryN(ST_GeneratePoints(c.geom, 1, t.seed), 1), ST_PointOnSurface(c.geom))"


def _row_seeds(*, seed: int, salt: int, n: int) -> list[int]:
    # ST_GeneratePoints takes an int4 seed (> 0): one distinct, reproducible seed per row.
    return [((seed * 1_000_003 + salt * 7_919 + i) % 2_000_000_000) + 1 for i in range(n)]


def _weighted(rng: random.Random, weights: dict, k: int) -> list:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[x] for x in keys], k=k)


class _Picker:
    """Weighted choice with cumulative weights computed once (20,000 draws per run)."""

    def __init__(self, weights: dict) -> None:
        self.keys = list(weights)
        self.cum = list(accumulate(weights[k] for k in self.keys))

    def __call__(self, rng: random.Random):
        return rng.choices(self.keys, cum_weights=self.cum)[0]


def _cells(*, district: AdminArea) -> list[tuple[int, int | None, int | None, int | None]]:
    """(id, street_id, community_id, responsibility_grid_id) of every cell, in id order (stable for a seed)."""
    return list(
        GridCell.objects.filter(district=district)
        .order_by("id")
        .values_list("id", "street_id", "community_id", "responsibility_grid_id")
    )


def _allocate_ids(*, table: str, n: int) -> list[int]:
    # Take ids from the table's own sequence so COPY can write them and later rows still follow on.
    if n == 0:
        return []
    with connection.cursor() as cur:
        cur.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, n])
        return [r[0] for r in cur.fetchall()]


def _copy(*, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    with connection.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _person_name(rng: random.Random) -> tuple[str, str]:
    return rng.choice(SURNAMES), rng.choice(GIVEN)


def _phone(rng: random.Random) -> str:
    return f"13{rng.randint(0, 9)}{rng.randint(0, 99_999_999):08d}"


# --------------------------------------------------------------------------------------------- photos
PHOTO_FAMILIES: dict[str, tuple[str, tuple[int, int, int]]] = {
    # family: (caption, ground colour)
    "rubbish": ("垃圾", (120, 110, 90)),
    "parking": ("停车", (90, 90, 95)),
    "stall": ("摊点", (110, 100, 95)),
    "manhole": ("井盖", (80, 80, 85)),
    "road": ("道路", (95, 95, 100)),
    "green": ("绿化", (70, 120, 60)),
    "ads": ("广告", (150, 140, 130)),
    "water": ("积水", (70, 90, 120)),
    "light": ("设施", (100, 100, 110)),
    "works": ("施工", (140, 120, 90)),
}
PHOTO_VARIANTS = (("before", 0), ("before", 1), ("after", 0))  # 10 families x 3 = a pool of 30


def _photo_family(code: str) -> str:
    """Which picture family illustrates a category (first match wins)."""
    rules = (
        ({"E0403", "E0404", "E0406", "E0407"}, "parking"),
        ({"E0112", "E0506"}, "green"),
        ({"E0502", "E0503", "E0508"}, "water"),
        ({"E0504", "C0101", "C0102", "C0103", "C0104", "C0105", "C0106", "C0107"}, "manhole"),
        ({"E0501", "E0509"}, "road"),
    )
    for codes, family in rules:
        if code in codes:
            return family
    prefixes = (("E04", "stall"), ("E01", "rubbish"), ("C03", "rubbish"), ("E02", "ads"), ("E03", "works"),
                ("C05", "works"), ("C04", "green"), ("C02", "road"))  # fmt: skip
    return next((family for prefix, family in prefixes if code.startswith(prefix)), "light")


def photo_path(*, family: str, kind: str, variant: int) -> str:
    return f"{PHOTO_DIR}/{family}_{kind}_{variant}.jpg"


def ensure_photo_pool(*, seed: int, size: tuple[int, int] = (640, 480)) -> StepResult:
    """Write the small pool of demo JPEGs under MEDIA_ROOT once; cases only reference them."""
    from PIL import Image, ImageDraw, ImageFont

    root = Path(settings.MEDIA_ROOT)
    (root / PHOTO_DIR).mkdir(parents=True, exist_ok=True)
    font_big = ImageFont.truetype(FONT_PATH, 30) if Path(FONT_PATH).exists() else ImageFont.load_default()
    font_small = ImageFont.truetype(FONT_PATH, 18) if Path(FONT_PATH).exists() else ImageFont.load_default()
    written = 0
    w, h = size
    for f_idx, (family, (caption, ground)) in enumerate(PHOTO_FAMILIES.items()):
        for kind, variant in PHOTO_VARIANTS:
            target = root / photo_path(family=family, kind=kind, variant=variant)
            if target.exists():
                continue
            rng = random.Random(seed + f_idx * 10 + variant + (5 if kind == "after" else 0))
            img = Image.new("RGB", size)
            draw = ImageDraw.Draw(img)
            horizon = int(h * rng.uniform(0.38, 0.5))
            for y in range(horizon):  # sky gradient
                t = y / horizon
                draw.line([(0, y), (w, y)], fill=(int(150 + 60 * t), int(185 + 40 * t), int(225 + 20 * t)))
            draw.rectangle([0, horizon, w, h], fill=ground)
            for _ in range(rng.randint(3, 6)):  # buildings on the skyline
                x0 = rng.randint(-40, w - 40)
                bw, bh = rng.randint(60, 160), rng.randint(60, horizon - 10)
                shade = rng.randint(150, 210)
                draw.rectangle([x0, horizon - bh, x0 + bw, horizon], fill=(shade, shade - 10, shade - 20))
            draw.line([(0, int(h * 0.78)), (w, int(h * 0.7))], fill=(230, 230, 230), width=4)  # kerb line
            if kind == "before":  # clutter: the problem
                for _ in range(rng.randint(6, 14)):
                    x, y = rng.randint(40, w - 80), rng.randint(horizon + 20, h - 90)
                    r = rng.randint(10, 40)
                    colour = (rng.randint(60, 230), rng.randint(40, 200), rng.randint(30, 160))
                    draw.ellipse([x, y, x + r * 1.6, y + r], fill=colour, outline=(40, 40, 40))
            else:  # tidy: cones and a clean surface
                for i in range(3):
                    x = 180 + i * 110
                    draw.polygon([(x, h - 110), (x + 24, h - 170), (x + 48, h - 110)], fill=(240, 120, 30))
            draw.rectangle([0, h - 64, w, h], fill=(0, 0, 0))
            label = f"{caption} · {'处置前 before' if kind == 'before' else '处置后 after'}"
            draw.text((16, h - 58), label, font=font_big, fill=(255, 255, 255))
            draw.text((w - 210, 12), "浦东新区 演示图片 DEMO", font=font_small, fill=(30, 30, 30))
            img.save(target, "JPEG", quality=72, optimize=True)
            written += 1
    total = len(PHOTO_FAMILIES) * len(PHOTO_VARIANTS)
    return StepResult("photos", created=written, skipped=written == 0, detail=f"{total} files in {PHOTO_DIR}/")


# --------------------------------------------------------------------------------------------- cameras
def generate_cameras(*, district: AdminArea, count: int, seed: int, now: datetime) -> StepResult:
    """~`count` street cameras, each at a random point inside a random cell; about 5 % offline."""
    prefix = f"{district.code}-CAM-"
    existing = Camera.objects.filter(code__startswith=prefix).count()
    if existing:
        return StepResult("cameras", skipped=True, detail=f"{existing} already exist")
    rng = random.Random(seed * 31 + 1)
    cells = _cells(district=district)
    picks = rng.sample(cells, count) if count <= len(cells) else rng.choices(cells, k=count)
    codes, names, cell_ids, statuses, seen = [], [], [], [], []
    per_name: dict[str, int] = defaultdict(int)
    for i, cell in enumerate(picks, start=1):
        a, b = rng.sample(ROADS, 2)
        base = f"浦东-{a}{b}口"
        per_name[base] += 1
        offline = rng.random() < 0.05
        codes.append(f"{prefix}{i:05d}")
        names.append(f"{base}-{per_name[base]:02d}")
        cell_ids.append(cell[0])
        statuses.append(Camera.Status.OFFLINE if offline else Camera.Status.ONLINE)
        lag = timedelta(hours=rng.uniform(2, 240)) if offline else timedelta(seconds=rng.uniform(0, 60))
        seen.append(now - lag)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            f"""
            INSERT INTO geo_camera (code, name, location, cell_id, district_id, status, stream_url, last_seen_at)
            SELECT t.code, t.name, {POINT_IN_CELL}, c.id, c.district_id, t.status, '', t.seen
            FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[], %s::timestamptz[], %s::int[])
                 AS t(code, name, cell_id, status, seen, seed)
            JOIN geo_gridcell c ON c.id = t.cell_id
            """,
            [codes, names, cell_ids, statuses, seen, _row_seeds(seed=seed, salt=1, n=count)],
        )
        created = cur.rowcount
    offline = statuses.count(Camera.Status.OFFLINE)
    return StepResult("cameras", created=created, detail=f"{offline} offline")


# --------------------------------------------------------------------------------------------- speakers
# Where the demo's speakers listen: `manage.py speakers_simulate` (default port) answers like an IP speaker.
SPEAKER_URL = "http://127.0.0.1:8765/speakers/{code}"
# Most IP speakers read text with their own TTS; some only play audio files.
SPEAKER_GATEWAYS = {Speaker.Gateway.TEXT_JSON: 70, Speaker.Gateway.TEXT_FORM: 15, Speaker.Gateway.AUDIO_WAV: 15}


def generate_speakers(*, district: AdminArea, count: int, seed: int) -> StepResult:
    """Street loudspeakers (街头语音呼叫喇叭) on the poles of `count` cameras, 4–12 m from the camera, each located
    to its cell by the one locate rule (geo.services.speaker_locate). Speakers go where the trouble is: first
    beside the cameras that reported a case still open, then beside random others."""
    prefix = f"{district.code}-SPK-"
    existing = Speaker.objects.filter(code__startswith=prefix).count()
    if existing:
        return StepResult("speakers", skipped=True, detail=f"{existing} already exist")
    rng = random.Random(seed * 31 + 7)
    cameras = list(
        Camera.objects.filter(district=district, cell__isnull=False)
        .order_by("id")
        .values_list("id", "name", "location")
    )
    busy = set(
        Case.objects.filter(camera__district=district, status__in=OPEN_STATUSES).values_list("camera", flat=True)
    )
    first = [c for c in cameras if c[0] in busy][:count]
    rest = [c for c in cameras if c[0] not in busy]
    picks = sorted(first + rng.sample(rest, min(count - len(first), len(rest))), key=lambda c: c[0])
    gateways = _weighted(rng, SPEAKER_GATEWAYS, len(picks))
    speakers = []
    for i, ((camera_id, camera_name, at), gateway) in enumerate(zip(picks, gateways, strict=True), start=1):
        metres, bearing = rng.uniform(4, 12), rng.uniform(0, 2 * math.pi)
        lat = at.y + metres * math.cos(bearing) / 111_320
        lon = at.x + metres * math.sin(bearing) / (111_320 * math.cos(math.radians(at.y)))
        code = f"{prefix}{i:04d}"
        speaker = Speaker(
            code=code, name=f"{camera_name} 喇叭", location=Point(lon, lat, srid=4326), camera_id=camera_id,
            gateway=gateway, url=SPEAKER_URL.format(code=code),
        )  # fmt: skip
        speakers.append(speaker_locate(speaker=speaker))
    Speaker.objects.bulk_create(speakers)
    audio = sum(1 for s in speakers if s.gateway == Speaker.Gateway.AUDIO_WAV)
    return StepResult("speakers", created=len(speakers), detail=f"beside cameras, {audio} audio")


# --------------------------------------------------------------------------------------------- components
def generate_components(*, district: AdminArea, count: int, seed: int) -> StepResult:
    """Manhole covers, lights, bins, hydrants… on random cells, routed to their category's department."""
    existing = Component.objects.filter(code__startswith=district.code, cell__district=district).count()
    if existing:
        return StepResult("components", skipped=True, detail=f"{existing} already exist")
    rng = random.Random(seed * 31 + 2)
    cats = {c.code: c for c in Category.objects.filter(code__in=COMPONENT_WEIGHTS)}
    weights = {code: w for code, w in COMPONENT_WEIGHTS.items() if code in cats}
    cells = _cells(district=district)
    serial: dict[str, int] = defaultdict(int)
    codes, names, majors, cat_ids, dept_ids, cell_ids = [], [], [], [], [], []
    for code in _weighted(rng, weights, count):
        cat = cats[code]
        serial[code] += 1
        # admin(6) + major(2) + minor(2) + serial(6): the standard's component code layout.
        codes.append(f"{district.code}{code[1:5]}{serial[code]:06d}")
        names.append(f"{cat.name}-{rng.choice(ROADS)}")
        majors.append(code[1:3])
        cat_ids.append(cat.pk)
        dept_ids.append(cat.default_department_id)
        cell_ids.append(rng.choice(cells)[0])
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            f"""
            INSERT INTO geo_component (code, major_class, category_id, name, location, cell_id,
                                       authority_id, owner_id, maintainer_id, status)
            SELECT t.code, t.major, t.cat, t.name, {POINT_IN_CELL}, c.id,
                   t.dept, t.dept, t.dept, 'normal'
            FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[], %s::bigint[], %s::bigint[], %s::int[])
                 AS t(code, major, cat, name, dept, cell_id, seed)
            JOIN geo_gridcell c ON c.id = t.cell_id
            """,
            [codes, majors, cat_ids, names, dept_ids, cell_ids, _row_seeds(seed=seed, salt=2, n=count)],
        )
        created = cur.rowcount
    return StepResult("components", created=created, detail=f"{len(serial)} kinds")


# --------------------------------------------------------------------------------------------- teams
def _split_evenly(items: list, k: int) -> list[list]:
    n = len(items)
    return [items[(i * n) // k : ((i + 1) * n) // k] for i in range(k)]


def _serpentine(items: list[tuple[int, float, float]], *, pitch: float) -> list[tuple[int, float, float]]:
    """Boustrophedon order (rows of one grid pitch, alternating direction): consecutive runs stay contiguous."""
    top = max(y for _, _, y in items)

    def key(g: tuple[int, float, float]) -> tuple[int, float]:
        band = round((top - g[2]) / pitch)
        return band, g[1] if band % 2 == 0 else -g[1]

    return sorted(items, key=key)


def _quotas(sizes: dict[int, int], total: int) -> dict[int, int]:
    """Teams per street: proportional to its grids (largest remainder), at least one, never more than grids."""
    grand = sum(sizes.values())
    total = max(total, len(sizes))
    raw = {k: total * v / grand for k, v in sizes.items()}
    q = {k: max(1, min(sizes[k], int(r))) for k, r in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - int(raw[k]), reverse=True):
        if sum(q.values()) >= total:
            break
        if q[k] < sizes[k]:
            q[k] += 1
    return q


def generate_teams(*, district: AdminArea, count: int, seed: int, now: datetime) -> StepResult:
    """~`count` patrol teams; each owns a contiguous run of its street's responsibility grids."""
    existing = PatrolTeam.objects.filter(district=district).count()
    if existing:
        return StepResult("teams", skipped=True, detail=f"{existing} already exist")
    rng = random.Random(seed * 31 + 3)
    # Grid centroids in UTM (from their cells: ResponsibilityGrid.geom may be empty).
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT rg.id, rg.street_id,
                   avg(ST_X(ST_Transform(c.center, 32651))), avg(ST_Y(ST_Transform(c.center, 32651))),
                   sum(c.area_m2)
            FROM geo_responsibilitygrid rg JOIN geo_gridcell c ON c.responsibility_grid_id = rg.id
            WHERE rg.district_id = %s
            GROUP BY rg.id, rg.street_id ORDER BY rg.id
            """,
            [district.pk],
        )
        grids = cur.fetchall()
    if not grids:
        raise DemoError("没有责任网格 (no responsibility grids: run respgrids_synthesize)")
    by_street: dict[int | None, list[tuple[int, float, float]]] = defaultdict(list)
    for gid, street_id, x, y, _area in grids:
        by_street[street_id].append((gid, x, y))
    pitch = math.sqrt(statistics.median(g[4] for g in grids))  # typical grid edge, metres
    streets = {a.pk: a for a in AdminArea.objects.filter(pk__in=[s for s in by_street if s])}
    quotas = _quotas({s: len(g) for s, g in by_street.items()}, count)
    cells_by_grid: dict[int, list[int]] = defaultdict(list)
    for cid, _s, _c, gid in _cells(district=district):
        if gid:
            cells_by_grid[gid].append(cid)

    dept = Department.objects.filter(code="PD-CGZF").first()  # street patrols are 城管执法 squads
    skill_pool = list(Category.objects.filter(code__startswith="E04", parent__isnull=False).values_list("pk", "code"))
    extra_pool = list(
        Category.objects.filter(
            parent__isnull=False, code__in=["E0101", "E0103", "E0105", "E0201", "E0110", "C0109"]
        ).values_list("pk", "code")
    )
    teams: list[PatrolTeam] = []
    team_grids: list[list[int]] = []
    street_order = sorted(by_street, key=lambda s: streets[s].code if s in streets else "")
    for street_id in street_order:
        items = _serpentine(by_street[street_id], pitch=pitch)
        street = streets.get(street_id)
        for n, chunk in enumerate(_split_evenly(items, quotas[street_id]), start=1):
            i = len(teams) + 1
            status = _weighted(rng, {"on_duty": 75, "busy": 15, "off_duty": 10}, 1)[0]
            teams.append(
                PatrolTeam(
                    code=f"{district.code}-PT-{i:03d}",
                    name=f"{street.name if street else district.name}第{n}巡查队",
                    district=district,
                    street=street,
                    department=dept,
                    status=status,
                    last_position_at=now - timedelta(seconds=rng.randint(5, 600 if status != "off_duty" else 20000)),
                )
            )
            team_grids.append([g[0] for g in chunk])
    pwd = make_password(DEMO_PASSWORD)  # hashed once: a PBKDF2 hash per member would take minutes
    with transaction.atomic():
        PatrolTeam.objects.bulk_create(teams, batch_size=1000)
        grid_ids, grid_team, pos_team, pos_cell = [], [], [], []
        skills = []
        members: list[User] = []
        for t_idx, (team, gids) in enumerate(zip(teams, team_grids, strict=True), start=1):
            grid_ids += gids
            grid_team += [team.pk] * len(gids)
            pos_team.append(team.pk)
            pos_cell.append(rng.choice(cells_by_grid[rng.choice(gids)]))
            picked = rng.sample(skill_pool, min(len(skill_pool), rng.randint(2, 4)))
            picked += rng.sample(extra_pool, min(len(extra_pool), rng.randint(1, 2)))
            skills += [PatrolTeam.skills.through(patrolteam_id=team.pk, category_id=pk) for pk, _ in picked]
            for m in range(1, rng.randint(3, 5) + 1):
                last, first = _person_name(rng)
                members.append(
                    User(
                        username=f"pt{t_idx:03d}-{m}",
                        password=pwd,
                        first_name=first,
                        last_name=last,
                        role=User.Role.PATROL,
                        area=district,
                        team=team,
                        department=dept,
                        phone=_phone(rng),
                    )
                )
        PatrolTeam.skills.through.objects.bulk_create(skills, batch_size=5000)
        User.objects.bulk_create(members, batch_size=2000)
        with connection.cursor() as cur:
            cur.execute(
                """
                UPDATE geo_responsibilitygrid rg SET team_id = t.team_id
                FROM unnest(%s::bigint[], %s::bigint[]) AS t(grid_id, team_id) WHERE rg.id = t.grid_id
                """,
                [grid_ids, grid_team],
            )
            cur.execute(
                f"""
                UPDATE gridmgmt_patrolteam pt
                SET last_position = {POINT_IN_CELL}::geography
                FROM unnest(%s::bigint[], %s::bigint[], %s::int[]) AS t(team_id, cell_id, seed)
                JOIN geo_gridcell c ON c.id = t.cell_id
                WHERE pt.id = t.team_id
                """,
                [pos_team, pos_cell, _row_seeds(seed=seed, salt=3, n=len(pos_team))],
            )
    return StepResult(
        "teams",
        created=len(teams),
        detail=f"{len(members)} members, {len(grid_ids)} grids in {len(by_street)} streets",
    )


# --------------------------------------------------------------------------------------------- users
def _demo_department(*, role: str, team: PatrolTeam | None, centre: Department | None) -> Department | None:
    if role == User.Role.RESIDENT:
        return None
    if role == User.Role.PATROL:
        return team.department if team else None
    return centre  # command-centre staff: 城运中心


def generate_demo_users(*, district: AdminArea) -> StepResult:
    """One login per role (password DEMO_PASSWORD); staff are scoped to the district."""
    have = set(User.objects.filter(username__in=[u.username for u in DEMO_USERS]).values_list("username", flat=True))
    missing = [u for u in DEMO_USERS if u.username not in have]
    if not missing:
        return StepResult("users", skipped=True, detail=f"{len(have)} demo logins exist")
    pwd = make_password(DEMO_PASSWORD)
    first_team = PatrolTeam.objects.filter(district=district).order_by("code").first()
    centre = Department.objects.filter(code="PD-CYZX").first()
    rows = []
    for u in missing:
        staff = u.role != User.Role.RESIDENT
        rows.append(
            User(
                username=u.username,
                password=pwd,
                first_name=u.label,
                last_name="演示",
                role=u.role,
                area=district if staff else None,
                team=first_team if u.role == User.Role.PATROL else None,
                department=_demo_department(role=u.role, team=first_team, centre=centre),
                is_staff=u.role == User.Role.ADMIN,
                is_superuser=u.role == User.Role.ADMIN,
            )
        )
    User.objects.bulk_create(rows)
    return StepResult("users", created=len(rows), detail=", ".join(u.username for u in missing))


TRACKER_PREFIX = "demo-"  # a demo patrol member's tracker identifier: demo-<username> (README, Tracking devices)


def demo_trackers_register(*, district: AdminArea) -> StepResult:
    """A tracker for every patrol member of the district, identifier `demo-<username>` (`demo-patrol` for the
    patrol login), so Traccar Client or OsmAnd pointed at `/track/osmand` moves a team on the wall. One
    INSERT … SELECT; members who already have theirs are skipped."""
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO realtime_device (user_id, kind, identifier, active, created_at)
            SELECT u.id, 'tracker', %(prefix)s || u.username, true, now()
            FROM gridmgmt_user u JOIN gridmgmt_patrolteam t ON t.id = u.team_id
            WHERE u.role = %(role)s AND u.is_active AND t.district_id = %(district)s
            ON CONFLICT (identifier) DO NOTHING
            """,
            {"prefix": TRACKER_PREFIX, "role": User.Role.PATROL.value, "district": district.id},
        )
        created = cur.rowcount
    if not created:
        return StepResult("trackers", skipped=True, detail="every patrol member has a tracker")
    return StepResult("trackers", created=created, detail=f"{TRACKER_PREFIX}<username>, e.g. {TRACKER_PREFIX}patrol")


# --------------------------------------------------------------------------------------------- tracks
TRACK_DAYS = 2  # yesterday (a whole working day) and today up to `now`
TRACK_STEP_S = 120  # one fix every two minutes (keeps the demo load fast: ~74,000 fixes a day)
TRACK_MINUTES_PER_CELL = 4  # a member walks ~100 m (one cell) in 4 minutes, looking around
# Shifts (local time): from, to, and where the walk resumes (steps after the morning's start) — lunch is a gap,
# which breaks the track and shows in the attendance.
TRACK_SHIFTS = ((8, 30, 12, 0, 0), (13, 0, 17, 30, 225))

_TRACKS_SQL = """
WITH tc AS (  -- each team's cells, numbered along a serpentine over its area (row by row, back and forth)
    SELECT rg.team_id, ST_X(c.center) AS x, ST_Y(c.center) AS y,
           row_number() OVER (PARTITION BY rg.team_id ORDER BY floor(ST_Y(c.center) / 0.0009),
               CASE WHEN floor(ST_Y(c.center) / 0.0009)::bigint %% 2 = 0 THEN ST_X(c.center) ELSE -ST_X(c.center) END
           ) AS k
    FROM geo_responsibilitygrid rg JOIN geo_gridcell c ON c.responsibility_grid_id = rg.id
    WHERE rg.district_id = %(district)s AND rg.team_id IS NOT NULL
), n AS (
    SELECT team_id, count(*) AS n FROM tc GROUP BY team_id
), dev AS (  -- the demo trackers; members of a team start spread along its cells
    SELECT d.id AS device_id, u.id AS user_id, u.team_id,
           row_number() OVER (PARTITION BY u.team_id ORDER BY u.username) - 1 AS m,
           count(*) OVER (PARTITION BY u.team_id) AS mm
    FROM realtime_device d JOIN gridmgmt_user u ON u.id = d.user_id
    JOIN gridmgmt_patrolteam t ON t.id = u.team_id
    WHERE d.kind = 'tracker' AND d.identifier LIKE %(prefix)s AND u.is_active AND t.district_id = %(district)s
), steps AS (
    SELECT st.day_n, st.shift, st.t0, st.t0 + st.cnt * make_interval(secs => %(step)s) AS t1,
           st.t0 + s * make_interval(secs => %(step)s) AS at, st.w0 + s AS w
    FROM unnest(%(day_n)s::int[], %(shift)s::int[], %(t0)s::timestamptz[], %(w0)s::int[], %(count)s::int[])
             AS st(day_n, shift, t0, w0, cnt),
         generate_series(0, st.cnt - 1) AS s
), walk AS (
    -- back and forth along the serpentine (position p of a ping-pong of 2n − 2 steps), never jumping from its end
    -- to its start
    SELECT dev.device_id, dev.user_id, dev.team_id, n.n, steps.at, steps.w,
           ((dev.m * n.n) / dev.mm + steps.day_n * 37 + steps.w / %(per_cell)s) %% greatest(2 * n.n - 2, 1) AS p,
           (steps.w %% %(per_cell)s)::float8 / %(per_cell)s AS f,
           ((dev.device_id * 7919 + steps.w * 104729) %% 1000) / 1000.0 - 0.5 AS jx,
           ((dev.device_id * 104729 + steps.w * 7919) %% 1000) / 1000.0 - 0.5 AS jy
    FROM dev JOIN n ON n.team_id = dev.team_id CROSS JOIN steps
    -- members come on duty up to 20 minutes late and leave up to 24 minutes early (attendance differs)
    WHERE NOT (steps.shift = 0 AND steps.at < steps.t0 + (dev.device_id %% 5) * interval '5 min')
      AND NOT (steps.shift = 1 AND steps.at > steps.t1 - (dev.device_id * 7 %% 5) * interval '6 min')
), ends AS (
    SELECT w.*,
           CASE WHEN w.p < w.n THEN w.p ELSE 2 * w.n - 2 - w.p END + 1 AS k1,
           CASE WHEN (w.p + 1) %% greatest(2 * w.n - 2, 1) < w.n THEN (w.p + 1) %% greatest(2 * w.n - 2, 1)
                ELSE 2 * w.n - 2 - (w.p + 1) %% greatest(2 * w.n - 2, 1) END + 1 AS k2
    FROM walk w
)
INSERT INTO realtime_position
    (device_id, at, received_at, user_id, team_id, point, speed, course, altitude, accuracy, battery)
SELECT w.device_id, w.at + (w.device_id %% 50) * interval '1 s', w.at + (w.device_id %% 50 + 2) * interval '1 s',
       w.user_id, w.team_id,
       ST_SetSRID(ST_MakePoint(a.x + (b.x - a.x) * w.f + w.jx * 0.0002, a.y + (b.y - a.y) * w.f + w.jy * 0.0002), 4326),
       0.4, NULL, 5, 8, 100 - (w.w %% 600) / 8.0
FROM ends w
JOIN tc a ON a.team_id = w.team_id AND a.k = w.k1
JOIN tc b ON b.team_id = w.team_id AND b.k = w.k2
ON CONFLICT (device_id, at) DO NOTHING
"""


def generate_tracks(*, district: AdminArea, now: datetime, days: int = TRACK_DAYS) -> StepResult:
    """Plausible tracks for every demo tracker (`demo-<username>`): each member walks through the cells of their
    team's responsibility grids (a serpentine, one cell every few minutes, members of a team spread along it), a
    fix every two minutes in the morning and the afternoon shifts of yesterday and of today up to `now` — so the
    dispatch map replays a day and the wall shows a coverage. One INSERT … SELECT (no Python loop over fixes).
    Skipped once the demo trackers have any fix: a second `make demo` adds no rows."""
    from realtime import positions

    today = now.astimezone(TZ).date()
    wanted = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
    with connection.cursor() as cur:
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM realtime_position p JOIN realtime_device d ON d.id = p.device_id"
            " WHERE d.identifier LIKE %s)",
            [TRACKER_PREFIX + "%"],
        )
        if cur.fetchone()[0]:
            return StepResult("tracks", skipped=True, detail="the demo trackers have tracks")
    day_n, shift, t0, w0, count = [], [], [], [], []
    for day in wanted:
        for n, (h0, m0, h1, m1, resume) in enumerate(TRACK_SHIFTS):
            start = datetime(day.year, day.month, day.day, h0, m0, tzinfo=TZ)
            end = min(datetime(day.year, day.month, day.day, h1, m1, tzinfo=TZ), now)
            steps = int((end - start).total_seconds() // TRACK_STEP_S)
            if steps > 0:
                day_n.append(day.toordinal() % 1000)
                shift.append(n)
                t0.append(start)
                w0.append(resume)
                count.append(steps)
    if not count:
        return StepResult("tracks", skipped=True, detail="no working hours yet on the demo days")
    positions.partitions_create(wanted)
    params = {
        "district": district.pk,
        "prefix": TRACKER_PREFIX + "%",
        "step": TRACK_STEP_S,
        "per_cell": TRACK_MINUTES_PER_CELL * 60 // TRACK_STEP_S,
        "day_n": day_n,
        "shift": shift,
        "t0": t0,
        "w0": w0,
        "count": count,
    }
    with transaction.atomic(), connection.cursor() as cur:
        # Fresh rows (the teams, members and trackers just made) have no statistics yet: without them the planner
        # takes the numbered cells for two rows and multiplies every step by them (85 s instead of 0.1 s on the
        # tests' tiny district).
        cur.execute("ANALYZE geo_responsibilitygrid, gridmgmt_patrolteam, gridmgmt_user, realtime_device")
        cur.execute(_TRACKS_SQL, params)
        created = cur.rowcount
    return StepResult("tracks", created=created, detail=f"fixes of the demo trackers, {len(set(day_n))} day(s)")


def demo_patrol_team_pick(*, district: AdminArea, enough: int = 3) -> StepResult:
    """Put the `patrol` login in the team with the most tasks now, so its phone shows work when the demo opens
    (the histories are random: the first team by code may have nothing open today)."""
    tasks = Case.objects.filter(district=district, status__in=statuses_actionable(roles=access.FIELD_ROLES))
    login = User.objects.filter(username="patrol", role=User.Role.PATROL).first()
    if login is None or tasks.filter(team_id=login.team_id).count() >= enough:
        return StepResult("patrol login", skipped=True, detail="the patrol login's team has tasks")
    busiest = tasks.exclude(team=None).values("team").annotate(n=Count("pk")).order_by("-n", "team").first()
    if busiest is None:
        return StepResult("patrol login", skipped=True, detail="no team has tasks")
    team = PatrolTeam.objects.get(pk=busiest["team"])
    User.objects.filter(pk=login.pk).update(team=team, department=team.department)
    return StepResult("patrol login", created=-1, detail=f"patrol → {team.code} ({busiest['n']} tasks)")


# --------------------------------------------------------------------------------------------- cases
# The history is simulated in memory, but every rule comes from the domain: the moves and who may make them
# (gridmgmt.rules.RULES), each move's effect on the case's clocks and its event data (gridmgmt.services.moves,
# the same functions the workflow's services apply), deadlines on the working calendar
# (gridmgmt.workcalendar.limit_add, through the moves), payloads and feed envelopes (gridmgmt.events), the case code
# (gridmgmt.services.intake.case_code and its sequence) and escalation (gridmgmt.escalation.cases_escalate,
# run over the loaded cases at `now`). The demo only batches the writes.
EVENT_BATCH = 5000  # events per events_write call


@dataclass
class _World:
    """Everything a case timeline needs to know about the district, fetched once."""

    cells: list[tuple[int, int | None, int | None, int | None]]
    hot_cells: list[tuple[int, int | None, int | None, int | None]]
    grid_team: dict[int, int]
    street_teams: dict[int | None, list[int]]
    all_teams: list[int]
    members: dict[int, list[int]]
    cameras: list[tuple[int, int]]  # (camera id, cell id)
    cell_by_id: dict[int, tuple[int, int | None, int | None, int | None]]
    street_names: dict[int, str]
    users: dict[str, int]  # role -> demo user id
    teams: dict[int, PatrolTeam] = field(default_factory=dict)
    grids: dict[int, ResponsibilityGrid] = field(default_factory=dict)
    departments: dict[int, Department] = field(default_factory=dict)
    actors: dict[int, User] = field(default_factory=dict)  # user id -> an unsaved stand-in (id, role, team)

    def actor(self, user_id: int | None) -> User | None:
        return self.actors.get(user_id) if user_id else None


def _load_world(*, district: AdminArea, rng: random.Random) -> _World:
    cells = _cells(district=district)
    grids = {g.pk: g for g in ResponsibilityGrid.objects.filter(district=district).only("id", "code", "team_id")}
    grid_team = {gid: g.team_id for gid, g in grids.items() if g.team_id}
    teams = {
        t.pk: t
        for t in PatrolTeam.objects.filter(district=district)
        .order_by("id")
        .only("id", "code", "name", "district_id", "street_id")
    }
    if not teams:
        raise DemoError("没有巡查队伍 (no patrol teams: run the teams step first)")
    street_teams: dict[int | None, list[int]] = defaultdict(list)
    for t in teams.values():
        street_teams[t.street_id].append(t.pk)
    members: dict[int, list[int]] = defaultdict(list)
    actors: dict[int, User] = {}
    staff = User.objects.filter(team_id__in=list(teams)) | User.objects.filter(
        username__in=[u.username for u in DEMO_USERS]
    )
    for uid, role, tid, username in staff.order_by("id").values_list("id", "role", "team_id", "username"):
        actors[uid] = User(id=uid, role=role, team_id=tid, username=username)
        if tid in teams and role == User.Role.PATROL:
            members[tid].append(uid)
    # Hotspots: 5 % of the grids draw a third of the cases, so the heat map has something to show.
    grid_ids = sorted({c[3] for c in cells if c[3]})
    hot = set(rng.sample(grid_ids, max(1, len(grid_ids) // 20))) if grid_ids else set()
    hot_cells = [c for c in cells if c[3] in hot] or cells
    cameras = list(
        Camera.objects.filter(district=district, cell__isnull=False).order_by("id").values_list("id", "cell_id")
    )
    users = {a.role: a.pk for a in actors.values() if a.username in {u.username for u in DEMO_USERS}}
    street_names = dict(AdminArea.objects.filter(parent=district).values_list("id", "name"))
    return _World(
        cells=cells,
        hot_cells=hot_cells,
        grid_team=grid_team,
        street_teams=street_teams,
        all_teams=list(teams),
        members=members,
        cameras=cameras,
        cell_by_id={c[0]: c for c in cells},
        street_names=street_names,
        users=users,
        teams=teams,
        grids=grids,
        departments={d.pk: d for d in Department.objects.only("id", "code", "name")},
        actors=actors,
    )


def _team_for(world: _World, cell: tuple, rng: random.Random) -> int:
    team = world.grid_team.get(cell[3]) if cell[3] else None
    if team is None:  # 属地兜底: a team of the same street, else any team
        team = rng.choice(world.street_teams.get(cell[1]) or world.all_teams)
    return team


_satisfaction = _Picker({5: 62, 4: 28, 3: 6, 2: 2.5, 1: 1.5})  # return visits: mostly satisfied


@dataclass
class _Step:
    """One written event of the simulated history: the row, its feed envelope, its photo."""

    event: CaseEvent
    envelope: dict
    photo: str | None  # "before" / "after": a CasePhoto of this kind is attached


class _History:
    """One case's moves, applied to an unsaved Case the way the workflow applies them. A move dated after
    `now` has not happened, nor has anything after it."""

    def __init__(self, *, case: Case, now: datetime, world: _World, category: dict) -> None:
        self.case, self.now, self.world, self.category = case, now, world, category
        self.steps: list[_Step] = []
        self.stopped = False

    @property
    def last(self) -> datetime:
        return self.steps[-1].event.at

    def move(
        self,
        action: str | None,
        at: datetime,
        actor: User | None,
        *,
        effect: Callable[[Case, datetime], moves.Move],
        type_: str | None = None,
        note: str = "",
        located: bool = False,
        photo: str | None = None,
    ) -> bool:
        """Apply `effect` (→ new status, event data) at `at` if the workflow allows `action` to `actor`."""
        case = self.case
        if self.steps:
            at = max(at, self.last + timedelta(seconds=1))  # strictly increasing
        if self.stopped or at > self.now:
            self.stopped = True
            return False
        if action is not None:  # the demo never writes a move the workflow would refuse
            try:
                rule_check(action=action, case=case, user=actor)
            except DomainError as exc:
                raise DemoError(f"demo move {action} from {case.status} by {actor}: {exc}") from exc
            type_ = RULES[action].event
        from_status = case.status
        move = effect(case, at)
        to_status, data = move.status, move.data
        case.status = to_status
        case.version += 1
        case.updated_at = at
        event = event_build(
            case=case,
            type=type_,
            actor=actor,
            from_status=from_status,
            to_status=to_status,
            at=at,
            note=note,
            data=data,
            location=case.point if located else None,
        )
        team = self.world.teams.get(case.team_id)
        envelope = case_envelope(
            event=event,
            case=case,
            category=self.category,
            team={"code": team.code, "name": team.name} if team else None,
        )
        self.steps.append(_Step(event, envelope, photo))
        return True


def _simulate(
    *, rng: random.Random, now: datetime, case: Case, reporter: User | None, team_id: int, world: _World,
    calendar: dict, camera: int | None,
) -> _History:  # fmt: skip
    """One case's history from report to archive, cut at `now`."""
    S = Case.Status
    cat = case.category
    dispatcher = world.actor(world.users.get(User.Role.DISPATCHER))
    inspector = world.actor(world.users.get(User.Role.INSPECTOR))
    leader = world.actor(world.users.get(User.Role.SHIFT_LEADER))
    crew = world.members.get(team_id) or [world.users.get(User.Role.PATROL)]
    member = world.actor(rng.choice(crew))
    team = world.teams[team_id]
    urgent = case.urgency == Case.Urgency.URGENT
    recent = now - case.reported_at < timedelta(hours=12)  # the live queue: some of these wait longer

    def minutes(a: float, b: float) -> timedelta:
        return timedelta(minutes=rng.uniform(a, b))

    h = _History(case=case, now=now, world=world, category={"code": cat.code, "name": cat.name})
    extra = {"camera_id": camera} if camera else None
    h.move(
        None, case.reported_at, reporter, type_=CaseEvent.Type.REPORTED, located=True, photo="before",
        note=case.description[:200],
        effect=lambda c, at: moves.Move(S.REPORTED, events.reported_data(source=c.source, extra=extra)),
    )  # fmt: skip

    # 自处理: a patrol member fixes it on the spot, straight from the report; the check comes from someone else.
    if case.source == Case.Source.PATROL and cat.code in SELF_HANDLE_CODES and reporter and rng.random() < 0.3:

        def self_handle(c: Case, at: datetime) -> moves.Move:
            return moves.move_self_handle(c, at=at, team_id=reporter.team_id)

        h.move("self_handle", h.last + minutes(5, 40), reporter, effect=self_handle, located=True, photo="after")
        _finish(h, rng=rng, inspector=inspector, leader=leader, dispatcher=dispatcher, reporter=reporter)
        return h

    dispatch_limit = cat.dispatch_minutes_urgent if urgent else cat.dispatch_minutes_normal
    if recent and rng.random() < 0.25:
        file_delay = minutes(40, 480)
    elif rng.random() < 0.05:
        file_delay = minutes(dispatch_limit, dispatch_limit * 3)  # filed late
    else:
        file_delay = minutes(1, dispatch_limit * 0.6)
    void_rate = 0.06 if case.source in {Case.Source.RESIDENT, Case.Source.HOTLINE} else 0.02
    if rng.random() < void_rate:

        def void(c: Case, at: datetime) -> moves.Move:
            return moves.move_void(c, at=at)

        h.move("void", case.reported_at + file_delay, dispatcher, effect=void, note=rng.choice(VOID_REASONS))
        return h

    def file(c: Case, at: datetime) -> moves.Move:
        return moves.move_file(c, at=at, calendar=calendar)

    if not h.move("file", case.reported_at + file_delay, dispatcher, effect=file):
        return h

    def dispatch(c: Case, at: datetime, *, forced: bool = False) -> moves.Move:
        return moves.move_dispatch(c, at=at, team=team, forced=forced)

    dispatch_delay = minutes(30, 300) if recent and rng.random() < 0.15 else minutes(1, dispatch_limit * 0.3)
    if not h.move("dispatch", h.last + dispatch_delay, dispatcher, effect=dispatch):
        return h
    if rng.random() < 0.03:  # 退单 → 审定: ownership confirmed, same team

        def send_back(c: Case, at: datetime) -> moves.Move:
            return moves.move_send_back(c, at=at)

        h.move("send_back", h.last + minutes(10, 60), member, effect=send_back, note=rng.choice(SENT_BACK_REASONS))
        h.move(
            "arbitrate", h.last + minutes(30, 240), leader, note="审定:属本单位职责,维持派遣",
            effect=lambda c, at: dispatch(c, at, forced=True),
        )  # fmt: skip

    def accept(c: Case, at: datetime) -> moves.Move:
        return moves.move_accept(c, at=at, calendar=calendar)

    accept_delay = minutes(60, 240) if recent and rng.random() < 0.15 else minutes(2, 6 if urgent else 20)
    if not h.move("accept", h.last + accept_delay, member, effect=accept, located=True):
        return h
    accepted_at = h.last
    if rng.random() < 0.012:  # 挂账: the clocks stop until it is resumed

        def park(c: Case, at: datetime) -> moves.Move:
            return moves.move_park(c, at=at)

        def resume(c: Case, at: datetime) -> moves.Move:
            return moves.move_resume(c, at=at, to_status=S.HANDLING)

        h.move("park", h.last + minutes(30, 600), leader, effect=park, note=rng.choice(PARK_REASONS))
        if not (now - case.reported_at > timedelta(days=20) or rng.random() < 0.5):
            return h  # still parked
        h.move("resume", h.last + timedelta(days=rng.uniform(1, 6)), leader, effect=resume)
    if rng.random() < 0.02:  # 延时
        hours = float(rng.choice((4, 8, 16)))

        def request(c: Case, at: datetime) -> moves.Move:
            return moves.move_extension_request(c, at=at, hours=hours)

        def approve(c: Case, at: datetime) -> moves.Move:
            return moves.move_extension_approve(c, at=at, hours=hours, calendar=calendar)

        h.move("extension_request", h.last + minutes(10, 120), member, effect=request, note="需协调产权单位,申请延时")
        h.move("extension_approve", h.last + minutes(10, 60), leader, effect=approve)

    def handle(c: Case, at: datetime) -> moves.Move:
        return moves.move_handle(c, at=at)

    if case.status == S.HANDLING and case.deadline_at is not None:
        # Most finish within 15–85 % of the limit; one in twelve runs late.
        f = rng.uniform(1.05, 2.6) if rng.random() < 0.08 else rng.uniform(0.15, 0.85)
        handled_at = max(accepted_at + (case.deadline_at - accepted_at) * f, h.last + minutes(5, 30))
        if not h.move("handle", handled_at, member, effect=handle, located=True, photo="after"):
            return h
    if case.status == S.HANDLED and rng.random() < 0.05:  # 核查不通过 → 返工
        handled_deadline = h.steps[-1].event.data.get(events.DEADLINE_AT)  # what the HANDLED event recorded

        def check_fail(c: Case, at: datetime) -> moves.Move:
            return moves.move_check_fail(c, at=at, handled_deadline=handled_deadline)

        h.move(
            "check_fail", h.last + minutes(15, 240), inspector, effect=check_fail, located=True,
            note=rng.choice(CHECK_FAIL_NOTES),
        )  # fmt: skip
        h.move("handle", h.last + minutes(60, 480), member, effect=handle, located=True, photo="after")
    _finish(h, rng=rng, inspector=inspector, leader=leader, dispatcher=dispatcher, reporter=reporter)
    return h


def _finish(
    h: _History, *, rng: random.Random, inspector: User | None, leader: User | None, dispatcher: User | None,
    reporter: User | None,
) -> None:  # fmt: skip
    """Check, close, rate and archive a handled case (each only once its time has come)."""
    S = Case.Status
    if h.case.status != S.HANDLED:
        return

    def close(c: Case, at: datetime) -> moves.Move:
        if c.source == Case.Source.HOTLINE:
            c.hotline_reply = "已按市民反映情况处置完毕,感谢您的来电。"
            c.replied_at = at
        return moves.move_close(c, at=at)

    # Inspectors batch their rounds and the centre closes in shifts: some cases wait hours at each desk.
    check_delay = _minutes(rng, 240, 1200) if rng.random() < 0.3 else _minutes(rng, 15, 240)
    h.move(
        "check_pass",
        h.last + check_delay,
        inspector,
        effect=lambda c, at: moves.move_check_pass(c, at=at),
        located=True,
    )
    close_delay = _minutes(rng, 120, 720) if rng.random() < 0.15 else _minutes(rng, 5, 90)
    if not h.move("close", h.last + close_delay, leader, effect=close):
        return
    closed_at = h.last
    if rng.random() < 0.75:  # 回访评价
        score = _satisfaction(rng)
        own = access.is_resident(reporter)
        rater, note = (reporter, "居民评价") if own else (dispatcher, "电话回访")

        def rate(c: Case, at: datetime) -> moves.Move:
            return moves.move_rate(c, at=at, satisfaction=score)

        h.move("rate", h.last + _minutes(rng, 120, 2880), rater, effect=rate, note=note)
    h.move(
        "archive", max(h.last, closed_at + timedelta(days=rng.uniform(3, 5))), leader,
        effect=lambda c, at: moves.move_archive(c, at=at),
    )  # fmt: skip


def _minutes(rng: random.Random, a: float, b: float) -> timedelta:
    return timedelta(minutes=rng.uniform(a, b))


def _case_codes(*, days: list) -> list[str]:
    """The product's case codes (gridmgmt.services.intake.case_code) with serials drawn from its sequence."""
    if not days:
        return []
    with connection.cursor() as cur:
        cur.execute("SELECT nextval('gridmgmt_case_code_seq') FROM generate_series(1, %s) ORDER BY 1", [len(days)])
        serials = [r[0] for r in cur.fetchall()]
    return [case_code(day=day, serial=serial) for day, serial in zip(days, serials, strict=True)]


CASE_COLUMNS = (
    "id", "code", "point", "address", "cell_id", "community_id", "street_id", "district_id", "responsibility_grid_id",
    "category_id", "source", "urgency", "status", "level", "description", "reporter_id", "reporter_name",
    "reporter_phone", "team_id", "department_id", "camera_id", "duplicate_of_id", "external_id", "idempotency_key",
    "supporters", "satisfaction", "reported_at", "stage_started_at", "due_at", "warn_at", "accepted_at", "parked_at",
    "send_back_count", "rework_count", "extension_pending", "hotline_reply", "replied_at", "dispatch_deadline_at",
    "deadline_at", "closed_at", "updated_at", "version",
)  # fmt: skip


def generate_cases(*, district: AdminArea, count: int, days: int, seed: int, now: datetime) -> StepResult:
    """~`count` cases over the last `days` days with their full event history, photos, feed rows and scope
    copies; then the escalation rule is run over them at `now` until no case is due."""
    existing = Case.objects.filter(district=district, idempotency_key__startswith=DEMO_KEY_PREFIX).count()
    if existing:
        return StepResult("cases", skipped=True, detail=f"{existing} demo cases exist")
    rng = random.Random(seed * 31 + 5)
    world = _load_world(district=district, rng=rng)
    cats = {c.code: c for c in Category.objects.filter(parent__isnull=False, is_active=True)}
    weights = {code: CASE_WEIGHTS.get(code, 0.15) for code in cats}

    # 1. What, where and when: category, source, cell, time.
    start = now - timedelta(days=days)
    pick_cat, pick_hour = _Picker(weights), _Picker(dict(enumerate(HOURLY)))
    pick_source = _Picker(SOURCE_WEIGHTS)
    pick_source_no_camera = _Picker({k: v for k, v in SOURCE_WEIGHTS.items() if k != Case.Source.CAMERA})
    plans = []
    for _ in range(count):
        code = pick_cat(rng)
        cat = cats[code]
        camera_ok = world.cameras and (code in CAMERA_CODES or code.startswith("E04"))
        source = pick_source(rng) if camera_ok else pick_source_no_camera(rng)
        camera = None
        if source == Case.Source.CAMERA:
            camera, cell_id = rng.choice(world.cameras)
            cell = world.cell_by_id[cell_id]
        else:
            cell = rng.choice(world.hot_cells if rng.random() < 0.33 else world.cells)
        day = rng.randrange(days + 1)
        hour = pick_hour(rng)
        at = (start + timedelta(days=day)).replace(hour=hour, minute=0, second=0) + timedelta(
            seconds=rng.randrange(3600)
        )
        if at > now or at < start:
            at = start + timedelta(seconds=rng.uniform(0, (now - start).total_seconds()))
        p_urgent = 0.9 if cat.default_urgency == Case.Urgency.URGENT else 0.15 if code.startswith("E05") else 0.04
        urgency = Case.Urgency.URGENT if rng.random() < p_urgent else Case.Urgency.NORMAL
        plans.append((at, cat, source, camera, cell, urgency))
    plans.sort(key=lambda p: p[0])

    # 2. Points: one seeded random point inside each case's cell, drawn in PostGIS; and the cells' codes.
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT t.i, encode(ST_AsEWKB(p.geom), 'hex'), ST_X(p.geom), ST_Y(p.geom), c.code
            FROM unnest(%s::bigint[], %s::int[], %s::int[]) AS t(cell_id, i, seed)
            JOIN geo_gridcell c ON c.id = t.cell_id, LATERAL (SELECT {POINT_IN_CELL} AS geom) p
            """,
            [[p[4][0] for p in plans], list(range(count)), _row_seeds(seed=seed, salt=5, n=count)],
        )
        points = {i: (ewkb, x, y, cell_code) for i, ewkb, x, y, cell_code in cur.fetchall()}

    # 3. Codes from the product's generator and sequence, in report order; ids from the table's sequence.
    codes = _case_codes(days=[timezone.localdate(p[0]) for p in plans])
    case_ids = _allocate_ids(table=Case._meta.db_table, n=count)
    calendar = calendar_load(start=(start - timedelta(days=1)).date(), end=now.date())
    cases: list[Case] = []
    histories: list[_History] = []
    u = world.users
    for i, (at, cat, source, camera, cell, urgency) in enumerate(plans):
        team_id = _team_for(world, cell, rng)
        reporter_name = reporter_phone = external_id = ""
        if source == Case.Source.PATROL:
            reporter = world.actor(rng.choice(world.members.get(team_id) or [u.get(User.Role.PATROL)]))
        elif source == Case.Source.INSPECTOR:
            reporter = world.actor(u.get(User.Role.INSPECTOR))
        elif source == Case.Source.RESIDENT:
            reporter = world.actor(u.get(User.Role.RESIDENT)) if rng.random() < 0.25 else None
            if rng.random() < 0.6:
                reporter_name, reporter_phone = "".join(_person_name(rng)), _phone(rng)
        elif source == Case.Source.HOTLINE:
            reporter = world.actor(u.get(User.Role.DISPATCHER))  # the operator keys in the order
            reporter_name, reporter_phone = "".join(_person_name(rng)), _phone(rng)
            external_id = f"12345-{at:%Y%m%d}{rng.randrange(10**6):06d}"
        elif source == Case.Source.ASSIGNED:
            reporter = world.actor(u.get(User.Role.SHIFT_LEADER))
        else:
            reporter = None
        ewkb, x, y, cell_code = points[i]
        address = f"浦东新区{world.street_names.get(cell[1], '')}{rng.choice(ROADS)}{rng.randint(1, 2000)}号附近"
        case = Case(
            id=case_ids[i], code=codes[i], point=Point(x, y, srid=4326), address=address,
            cell=GridCell(id=cell[0], code=cell_code), community_id=cell[2], street_id=cell[1],
            district_id=district.pk, responsibility_grid=world.grids.get(cell[3]), category=cat, source=source,
            urgency=urgency, status="", level=Case.Level.GRID, description=f"{address},{cat.plain_name or cat.name}。",
            reporter=reporter if source in {Case.Source.PATROL, Case.Source.INSPECTOR, Case.Source.RESIDENT} else None,
            reporter_name=reporter_name, reporter_phone=reporter_phone, camera_id=camera, external_id=external_id,
            idempotency_key=f"{DEMO_KEY_PREFIX}{seed}:{i}", reported_at=at, version=0,
            department=world.departments.get(cat.default_department_id),
        )  # fmt: skip
        case._ewkb = ewkb
        history = _simulate(
            rng=rng, now=now, case=case, reporter=reporter, team_id=team_id, world=world, calendar=calendar,
            camera=camera,
        )  # fmt: skip
        histories.append(history)
        cases.append(case)

    # 4. Photos (one per "before"/"after" step) and the events in time order, so event ids follow time and the
    # feed replays history in order.
    steps = sorted(
        ((s.event.at, i, n, s) for i, h in enumerate(histories) for n, s in enumerate(h.steps)),
        key=lambda t: (t[0], t[1], t[2]),
    )
    families: dict[str, str] = {}
    photo_rows = []
    for _at, i, _n, s in steps:
        if s.photo:
            code = cases[i].category.code
            family = families.get(code) or families.setdefault(code, _photo_family(code))
            variant = rng.randrange(2) if s.photo == "before" else 0
            photo_rows.append((cases[i].pk, s.photo, photo_path(family=family, kind=s.photo, variant=variant), s))
    photo_ids = _allocate_ids(table=CasePhoto._meta.db_table, n=len(photo_rows))
    photo_of = {id(r[3]): CasePhoto(id=pid) for r, pid in zip(photo_rows, photo_ids, strict=True)}

    w, h = 640, 480
    with transaction.atomic():
        _copy(
            table=Case._meta.db_table,
            columns=CASE_COLUMNS,
            rows=(_case_row(c) for c in cases),
        )
        _copy(
            table=CasePhoto._meta.db_table,
            columns=["id", "case_id", "kind", "image", "width", "height", "created_at"],
            rows=((pid, r[0], r[1], r[2], w, h, r[3].event.at) for pid, r in zip(photo_ids, photo_rows, strict=True)),
        )
        for b in range(0, len(steps), EVENT_BATCH):
            batch = [t[3] for t in steps[b : b + EVENT_BATCH]]
            events_write(
                [s.event for s in batch],
                photos={k: [photo_of[id(s)]] for k, s in enumerate(batch) if s.photo},
                envelopes=[s.envelope for s in batch],
                notify=False,  # 90 days of history is not news: inboxes start with the escalations below
            )
        escalated = _escalate_all(now=now)
    states = Counter(c.status for c in cases)
    open_states = {k: v for k, v in states.items() if k in OPEN_STATUSES}
    overdue = Case.objects.filter(overdue_q(now=now), pk__in=case_ids).count()
    detail = (
        f"{len(steps)} events, {len(photo_rows)} photos; open {sum(open_states.values())} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(open_states.items()))}), overdue {overdue}, "
        f"{escalated} escalations"
    )
    return StepResult("cases", created=len(cases), detail=detail)


def _escalate_all(*, now: datetime) -> int:
    """Run the escalation rule at `now` until no case is due (each run raises a due case by one level)."""
    total = 0
    for _ in range(1000):
        report = cases_escalate(now=now)
        if not report.count:
            return total
        total += report.count
    raise DemoError("escalation did not settle")


def _case_row(c: Case) -> tuple:
    values = {f: getattr(c, f) for f in CASE_COLUMNS}
    values["point"] = c._ewkb
    return tuple(values[f] for f in CASE_COLUMNS)
