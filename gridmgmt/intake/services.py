"""External intake channels: camera alarms from video/AI systems and 12345 hotline orders.

Both create cases only through `gridmgmt.services.case_report`, with an idempotency key derived from the
sender's own id, so a retried delivery never creates a second case.
"""

import base64
import binascii
import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from geo.coords import DATUM_TO_WGS84, point_parse
from geo.models import Camera
from gridmgmt import access, services
from gridmgmt.errors import InvalidInput, NotFound, RoleNotAllowed, TransitionNotAllowed
from gridmgmt.models import CameraSystem, Case, CaseEvent, User
from gridmgmt.notify import cameras_offline_notify
from gridmgmt.photos import MAX_BYTES
from gridmgmt.states import OPEN_STATUSES
from realtime.services import camera_status_set

# A camera clock may run a little fast; an alarm from further in the future is a broken clock.
MAX_CLOCK_SKEW = timedelta(minutes=10)
MAX_ID_LEN = 56  # the idempotency key adds a prefix and must fit in 64 characters


# --- shared parsing --------------------------------------------------------------------------------------


def _text(value, *, field: str, max_len: int, required: bool = False, message: str = "") -> str:
    text = "" if value is None else str(value).strip()
    if required and not text:
        raise InvalidInput(message or _("缺少必填字段 %(field)s") % {"field": field}, field=field, code="required")
    if len(text) > max_len:
        raise InvalidInput(_("%(field)s 不能超过 %(n)s 个字符") % {"field": field, "n": max_len}, field=field)
    return text


def _external_id(value, *, field: str) -> str:
    text = _text(value, field=field, max_len=MAX_ID_LEN, required=True)
    if not text.isprintable() or any(ch.isspace() for ch in text):
        raise InvalidInput(_("%(field)s 不能包含空白或控制字符") % {"field": field}, field=field)
    return text


def time_parse(value, *, field: str = "time", now: datetime | None = None) -> datetime:
    """An ISO 8601 time; without an offset it is taken as Beijing time. Refuses times from the future."""
    now = now or timezone.now()
    if value in (None, ""):
        return now
    try:
        parsed = parse_datetime(value.strip()) if isinstance(value, str) else None
    except ValueError:  # well formed but impossible, e.g. month 13
        parsed = None
    if parsed is None:
        raise InvalidInput(_("时间格式无效,应为 ISO 8601,例如 2026-11-24T10:00:00+08:00"), field=field)
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    if parsed > now + MAX_CLOCK_SKEW:
        raise InvalidInput(_("告警时间晚于当前时间"), field=field, code="time_in_future")
    return parsed


def snapshot_decode(value: str, *, field: str = "snapshot_base64") -> SimpleUploadedFile:
    """A base64 image (optionally a `data:image/...;base64,` URL) as an upload for the photo pipeline."""
    text = value.strip()
    if text.startswith("data:"):
        text = text.partition(",")[2]
    if len(text) > MAX_BYTES * 4 // 3 + 4:
        raise InvalidInput(_("照片 %(name)s 超过 10 MB") % {"name": field}, field=field, code="photo_too_large")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(_("抓拍图片不是有效的 base64 编码"), field=field, code="photo_invalid") from None
    return SimpleUploadedFile("snapshot.jpg", raw)


# --- camera alarms -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlarmResult:
    case: Case
    created: bool


def camera_system_authenticate(*, token: str) -> CameraSystem | None:
    if not token:
        return None
    return CameraSystem.objects.select_related("district").filter(token=token, is_active=True).first()


def _alarm_category(*, system: CameraSystem, category: str, label: str) -> str:
    if category:
        return category
    if not label:
        raise InvalidInput(_("请提供事件类别 category 或算法标签 label"), field="category", code="required")
    mapped = (system.label_map or {}).get(label)
    if not mapped:
        raise InvalidInput(_("未配置的算法标签: %(label)s") % {"label": label}, field="label", code="unknown_label")
    return str(mapped)


def _confidence(value) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not 0 <= number <= 1:  # NaN fails too
        raise InvalidInput(_("置信度须为 0–1 之间的数"), field="confidence")
    return number


CAMERA_SCOPE = "camera"  # idempotency scope of alarms (the key names the system and the alarm)


def _alarm_key(system: CameraSystem, alarm_id: str) -> str:
    digest = hashlib.sha256(f"{system.code}\x00{alarm_id}".encode()).hexdigest()
    return f"camera:{digest[:56]}"


def _open_alarm_case(*, camera: Camera, category_id: int, at: datetime, window: timedelta) -> Case | None:
    """The camera's open case of this category whose latest alarm (the report or an attached one) lies
    within the window of this alarm's time."""
    near = Q(reported_at__range=(at - window, at + window)) | Q(
        events__type=CaseEvent.Type.SUPPORTED,
        events__data__has_key="alarm",
        events__at__range=(at - window, at + window),
    )
    return (
        Case.objects.filter(camera=camera, category_id=category_id, source=Case.Source.CAMERA, status__in=OPEN_STATUSES)
        .filter(near)
        .order_by("-reported_at")
        .first()
    )


def camera_alarm_ingest(
    *,
    system: CameraSystem,
    camera_code,
    alarm_id,
    category: str = "",
    label: str = "",
    at=None,
    confidence=None,
    description: str = "",
    snapshots=(),
) -> AlarmResult:
    """One alarm from a camera system. A retried alarm id returns its case unchanged; another alarm of the same
    camera and category within `dedup_minutes` of the open case's latest alarm is attached to that case;
    anything else reports a new case at the camera's position."""
    code = _text(camera_code, field="camera", max_len=32, required=True, message=_("缺少摄像头编号 camera"))
    alarm_id = _external_id(alarm_id, field="alarm_id")
    category_code = _alarm_category(
        system=system,
        category=_text(category, field="category", max_len=16),
        label=_text(label, field="label", max_len=64),
    )
    at = time_parse(at)
    score = _confidence(confidence)
    description = _text(description, field="description", max_len=2000)
    camera = Camera.objects.select_related("cell").filter(code=code).first()
    if camera is None:
        raise InvalidInput(_("未登记的摄像头: %(code)s") % {"code": code}, field="camera", code="unknown_camera")
    district_id = camera.district_id or (camera.cell.district_id if camera.cell else None)
    if district_id != system.district_id:
        # Out of the system's scope looks like absent (the access rule of the whole project).
        raise NotFound(_("本系统辖区内没有摄像头 %(code)s") % {"code": code}, field="camera", code="camera_not_found")
    cat = services.category_resolve(code=category_code)
    key = _alarm_key(system, alarm_id)
    alarm = {"system": system.code, "id": alarm_id, "camera": camera.code, "at": at.isoformat(), "key": key}
    if label:
        alarm["label"] = label
    if score is not None:
        alarm["confidence"] = score

    with transaction.atomic():
        # Serialise alarms of one camera and category, so two at once never both open a case.
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"camera-alarm:{camera.id}:{cat.id}"])
        done = Case.objects.filter(idempotency_scope=CAMERA_SCOPE, idempotency_key=key).first() or _attached_case(
            camera=camera, key=key
        )
        if done is not None:
            return AlarmResult(done, False)
        window = timedelta(minutes=system.dedup_minutes)
        open_case = _open_alarm_case(camera=camera, category_id=cat.id, at=at, window=window)
        if open_case is not None:
            attached = services.case_alarm_attach(case_id=open_case.pk, alarm=alarm, photos=snapshots, at=at)
            if attached is not None:
                return AlarmResult(attached, False)
            for upload in snapshots:  # the attempt read them; the new case reads them again
                upload.seek(0)
        case, created = services.case_report(
            source=Case.Source.CAMERA,
            category_code=cat.code,
            lon=camera.location.x,
            lat=camera.location.y,
            description=description or _("视频告警: %(camera)s") % {"camera": camera.name},
            photos=snapshots,
            idempotency_key=key,
            idempotency_scope=CAMERA_SCOPE,
            camera_id=camera.id,
            at=at,
            data={"camera_id": camera.id, "alarm": alarm},
        )
    return AlarmResult(case, created)


def _attached_case(*, camera: Camera, key: str) -> Case | None:
    # Only this camera's cases can hold the alarm: the case index keeps this from scanning all events.
    event = (
        CaseEvent.objects.filter(
            case__in=Case.objects.filter(camera=camera), type=CaseEvent.Type.SUPPORTED, data__alarm__key=key
        )
        .select_related("case")
        .first()
    )
    return event.case if event else None


# --- camera heartbeats -------------------------------------------------------------------------------------

MAX_HEARTBEAT_CAMERAS = 10_000  # per request; a bigger platform splits its report


@dataclass(frozen=True)
class HeartbeatResult:
    seen: int  # cameras of this system named in the heartbeat
    changed: list[dict]  # [{"camera", "from_status", "status"}] in code order
    unknown: list[str]  # codes that are not cameras of this system (absent, or another district's)


def _camera_code(value, *, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(_("%(field)s 须为摄像头编号字符串") % {"field": field}, field=field)
    text = _text(value, field=field, max_len=32, required=True)
    if not text.isprintable() or any(ch.isspace() for ch in text):
        raise InvalidInput(_("%(field)s 不能包含空白或控制字符") % {"field": field}, field=field)
    return text


def _code_list(value, *, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise InvalidInput(_("%(field)s 须为摄像头编号的列表") % {"field": field}, field=field)
    return [_camera_code(v, field=field) for v in value]


def heartbeat_parse(*, online=None, offline=None, cameras=None) -> dict[str, str]:
    """{camera code: status} from `online`/`offline` (lists of codes) and/or `cameras` (a list of
    {"camera", "status"} or an object {code: status}). At least one must be given; a camera named twice with
    two statuses is refused."""
    if online is None and offline is None and cameras is None:
        raise InvalidInput(_("请提供 online、offline 或 cameras"), field="cameras", code="required")
    pairs = [(c, Camera.Status.ONLINE.value) for c in _code_list(online, field="online")]
    pairs += [(c, Camera.Status.OFFLINE.value) for c in _code_list(offline, field="offline")]
    if isinstance(cameras, dict):
        cameras = [{"camera": k, "status": v} for k, v in cameras.items()]
    if cameras is not None and not isinstance(cameras, list | tuple):
        raise InvalidInput(_("cameras 须为列表或对象"), field="cameras")
    for item in cameras or ():
        if not isinstance(item, dict):
            raise InvalidInput(_("cameras 的每一项须为 {camera, status}"), field="cameras")
        status = item.get("status")
        if status not in Camera.Status.values:
            raise InvalidInput(_("未知的摄像头状态: %(s)s") % {"s": str(status)[:20]}, field="status")
        pairs.append((_camera_code(item.get("camera"), field="camera"), status))
    if len(pairs) > MAX_HEARTBEAT_CAMERAS:
        raise InvalidInput(
            _("一次心跳最多 %(n)s 个摄像头") % {"n": MAX_HEARTBEAT_CAMERAS}, field="cameras", code="too_many"
        )
    statuses: dict[str, str] = {}
    for code, status in pairs:
        if statuses.setdefault(code, status) != status:
            raise InvalidInput(_("摄像头 %(code)s 同时报告了两种状态") % {"code": code}, field="cameras")
    return statuses


def camera_heartbeat_receive(*, system: CameraSystem, statuses: dict[str, str], now=None) -> HeartbeatResult:
    """A camera system says which of its cameras are online (and, optionally, offline). Cameras reported online
    get `last_seen_at = now`; each camera whose status differs goes through `camera_status_set` (one feed row per
    change); the centre gets one notification per person for the cameras this heartbeat turned offline. Cameras it
    does not name are left alone: their heartbeat stops, and `cameras_offline_timeout` marks them offline after
    CAMERA_OFFLINE_AFTER. Codes outside the system's district are reported back as unknown, like absent ones; when
    none is known, NotFound."""
    now = now or timezone.now()
    in_scope = Camera.objects.filter(code__in=list(statuses)).filter(
        Q(district_id=system.district_id) | Q(district__isnull=True, cell__district_id=system.district_id)
    )
    changed: list[dict] = []
    with transaction.atomic():
        # Locked in id order (two heartbeats never deadlock); the timeout job waits, then re-reads last_seen_at.
        rows = list(in_scope.select_for_update(of=("self",)).order_by("id").values_list("id", "code", "status"))
        known = {code for _id, code, _status in rows}
        unknown = sorted(set(statuses) - known)
        if statuses and not rows:
            shown = "、".join(unknown[:5]) + ("…" if len(unknown) > 5 else "")
            raise NotFound(
                _("本系统辖区内没有摄像头 %(code)s") % {"code": shown}, field="cameras", code="camera_not_found"
            )
        seen_ids = [i for i, code, _status in rows if statuses[code] == Camera.Status.ONLINE]
        Camera.objects.filter(pk__in=seen_ids).update(last_seen_at=now)
        gone = []
        for camera_id, code, status in sorted(rows, key=lambda r: r[1]):
            if statuses[code] != status:
                went = camera_status_set(camera_id=camera_id, status=statuses[code], seen_at=now, notify=False)
                gone += [went] if went is not None else []
                changed.append({"camera": code, "from_status": status, "status": statuses[code]})
        # The cameras this heartbeat says went offline: one notification per centre user for all of them.
        cameras_offline_notify(cameras=gone, at=now, timeout=False)
    return HeartbeatResult(seen=len(rows), changed=changed, unknown=unknown)


# --- 12345 hotline ---------------------------------------------------------------------------------------------


HOTLINE_SCOPE = "hotline"  # idempotency scope of 12345 orders: the order number is the district's, not a client's


def _hotline_key(order_no: str) -> str:
    return f"hotline:{order_no}"


def _point_wgs84(lon, lat, datum: str) -> tuple[float, float]:
    datum = (datum or "wgs84").strip().lower()
    convert = DATUM_TO_WGS84.get(datum)
    if convert is None:
        raise InvalidInput(_("坐标系只能是 wgs84、gcj02 或 bd09"), field="datum", code="unknown_datum")
    point = point_parse(lon, lat)  # validates numbers and ranges before any conversion
    x, y = convert(point.x, point.y)
    return float(x), float(y)


def hotline_order_receive(
    *,
    operator: User,
    order_no,
    lon,
    lat,
    category_code,
    text,
    datum: str = "wgs84",
    address: str = "",
    caller_phone: str = "",
    caller_name: str = "",
    urgency: str | None = None,
) -> tuple[Case, bool]:
    """A 12345 order. Its number is unique: a repeat returns the case the first delivery created."""
    if access.role_effective(operator) not in access.DISPATCHERS:
        raise RoleNotAllowed(_("只有派遣员、值班长或管理员可以录入 12345 工单"))
    order_no = _external_id(order_no, field="order_no")
    existing = Case.objects.filter(idempotency_scope=HOTLINE_SCOPE, idempotency_key=_hotline_key(order_no)).first()
    if existing is not None:
        return _hotline_checked(existing, order_no), False
    lon, lat = _point_wgs84(lon, lat, datum)
    case, created = services.case_report(
        source=Case.Source.HOTLINE,
        category_code=_text(category_code, field="category", max_len=16, required=True),
        lon=lon,
        lat=lat,
        description=_text(text, field="text", max_len=2000, required=True, message=_("工单内容不能为空")),
        urgency=_text(urgency, field="urgency", max_len=10) or None,
        reporter_name=_text(caller_name, field="caller_name", max_len=50),
        reporter_phone=_text(caller_phone, field="caller_phone", max_len=20),
        address=_text(address, field="address", max_len=200),
        idempotency_key=_hotline_key(order_no),
        idempotency_scope=HOTLINE_SCOPE,
        external_id=order_no,
        data={"order_no": order_no, "operator": operator.username},
    )
    return _hotline_checked(case, order_no), created


def _hotline_checked(case: Case, order_no: str) -> Case:
    # Belt and braces (keys are scoped per channel now): never hand out another channel's case for an order number.
    if case.source != Case.Source.HOTLINE or case.external_id != order_no:
        raise TransitionNotAllowed(_("工单号已被占用"), field="order_no", code="order_no_taken")
    return case
