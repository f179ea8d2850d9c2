"""The faces: resident report + tracking, patrol phone (PWA), live wall, dispatch desk, staff login.

Views only decide who may open a page and hand it its start-up data; the pages talk to /api/ for
everything else (intake, workflow, timelines), so a face never has rules of its own.
"""

from __future__ import annotations

import hashlib
from functools import wraps
from pathlib import Path

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.storage import staticfiles_storage
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.gzip import gzip_page

from geo import district_map
from geo.models import AdminArea, GridCell
from geo.selectors import CELL_TILE_MIN_ZOOM
from gridmgmt import access, clients
from gridmgmt import selectors as case_selectors
from gridmgmt.dbrouter import lag_tolerant
from gridmgmt.faces import maps, selectors
from gridmgmt.models import SPEAKER_REPEAT_MAX, Case, CaseEvent, CasePhoto, Category, User
from gridmgmt.names import name_localized
from gridmgmt.photos import MAX_PHOTOS
from gridmgmt.rules import RULES, speaker_call_allowed, statuses_actionable
from gridmgmt.states import OPEN_STATUSES, states_describe
from realtime.scopes import scopes_default

R = User.Role
PATROL_ROLES = access.FACE_ROLES["patrol"]
WALL_ROLES = access.FACE_ROLES["wall"]
DISPATCH_ROLES = access.FACE_ROLES["dispatch"]


def _role(user: User) -> str:
    return access.role_effective(user)


def staff_face(roles: set[str]):
    """Log in first (session); a logged-in user of another role gets a 403 page saying which roles may enter."""

    def decorate(view):
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect(f"{reverse('faces:login')}?next={request.get_full_path()}")
            if _role(request.user) not in roles:
                labels = "、".join(str(R(r).label) for r in R.values if r in roles)
                message = _("当前账号(%(role)s)不能使用此页面,需要以下角色之一:%(roles)s") % {
                    "role": request.user.get_role_display(),
                    "roles": labels,
                }
                return render(request, "faces/forbidden.html", {"message": message}, status=403)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def _district(user=None):
    """The user's district (their area, or the district above it), else the first district."""
    area_id = getattr(user, "area_id", None) if user is not None and user.is_authenticated else None
    areas = AdminArea.objects.defer("boundary")  # boundaries are megabytes; the map gets a simplified one
    area = areas.filter(pk=area_id).first() if area_id else None
    while area is not None and area.level != AdminArea.Level.DISTRICT:
        area = areas.filter(pk=area.parent_id).first()
    if area is None:
        # The public pages show the district that has a grid (a city may hold boundaries of all districts).
        gridded = GridCell.objects.filter(district_id=OuterRef("pk"))
        area = areas.filter(level=AdminArea.Level.DISTRICT).filter(Exists(gridded)).order_by("code").first()
    return area or district_map.district_for_map(code=None)


def _categories() -> list[dict]:
    """Active subclasses with their plain wording, for pickers (a page-specific read; ~100 rows)."""
    rows = (
        Category.objects.filter(is_active=True, parent__isnull=False, parent__is_active=True)
        .select_related("parent")
        .order_by("code")
    )
    return [
        {
            "code": c.code,
            "name": name_localized(c),
            "plain": access.category_public_name(c),  # residents' words, in English on an English page
            "major": name_localized(c.parent),
            "sensitive": c.is_sensitive,
        }
        for c in rows
    ]


# Messages the page scripts show, in the request's language.
JS_MESSAGES = {
    "network": gettext_lazy("网络连接中断,请稍后重试;已填写的内容已保存在本机。"),
    "offline": gettext_lazy("当前离线"),
    "online": gettext_lazy("已联网"),
    "server": gettext_lazy("服务器出错(%(status)s),请稍后重试。"),
    "photo_type": gettext_lazy("只能上传照片(JPEG、PNG、WebP 或 HEIC)。"),
    "photo_count": gettext_lazy("每次最多 %(n)s 张照片。"),
    "photos_picked": gettext_lazy("已选 %(n)s 张照片"),
    "waiting": gettext_lazy("等待发送"),
    "task_waiting": gettext_lazy("已在本机完成、等待发送:%(list)s"),
    "already_queued": gettext_lazy("该操作已在待发送队列中,联网后发送,无需再点。"),
    "made_at": gettext_lazy("%(time)s 完成"),
    "made_where": gettext_lazy("位置 %(lat)s, %(lon)s"),
    "sent_at": gettext_lazy("%(time)s 已发送"),
    "tasks_offline": gettext_lazy("当前离线:显示的是 %(time)s 读取的任务。"),
    "photo_size": gettext_lazy("照片不能超过 10 MB。"),
    "photo_required": gettext_lazy("请拍摄或选择一张照片。"),
    "location_required": gettext_lazy("请确定问题位置:使用定位,或在地图上点选。"),
    "category_required": gettext_lazy("请选择问题类别。"),
    "locating": gettext_lazy("正在定位…"),
    "located_gps": gettext_lazy("已使用手机定位(精度约 %(m)s 米)"),
    "located_exif": gettext_lazy("已使用照片中的拍摄位置"),
    "located_pin": gettext_lazy("已使用地图上选择的位置,可拖动图钉调整"),
    "pin": gettext_lazy("问题位置(可拖动)"),
    "gps_failed": gettext_lazy("无法获取定位,请在地图上点选位置。"),
    "outside": gettext_lazy("该位置不在服务范围内,请在区界内选择。"),
    "submitting": gettext_lazy("正在提交…"),
    "submitted": gettext_lazy("已提交,案件编号 %(code)s"),
    "queued": gettext_lazy("已保存到待发送队列,联网后自动发送"),
    "sent": gettext_lazy("已发送"),
    "failed": gettext_lazy("发送失败"),
    "retry": gettext_lazy("重试"),
    "discard": gettext_lazy("删除"),
    "queue_foreign": gettext_lazy("另一位用户的待发送记录:不会以您的身份发送"),
    "logout_loses": gettext_lazy("退出后,以下 %(n)s 条未发送的记录将从本机删除:"),
    "duplicates": gettext_lazy("附近已有相似问题,是否是其中之一?"),
    "supported": gettext_lazy("已为该问题 +1,感谢!"),
    # The name of a "+1" button beside a possible duplicate (it starts with what the button shows).
    "support_this": gettext_lazy("+1:就是 %(code)s 这个问题"),
    "overdue": gettext_lazy("已超时 %(t)s"),
    "remaining": gettext_lazy("剩余 %(t)s"),
    "days": gettext_lazy("%(n)s 天"),
    "hours": gettext_lazy("%(n)s 小时"),
    "minutes": gettext_lazy("%(n)s 分钟"),
    "reason_required": gettext_lazy("请填写原因。"),
    "after_photo_required": gettext_lazy("请上传处置后照片。"),
    "not_found": gettext_lazy("找不到该案件。"),
    "reconnecting": gettext_lazy("正在重新连接…"),
    "no_tasks": gettext_lazy("暂无任务"),
    "no_cases": gettext_lazy("队列为空"),
    "confirm": gettext_lazy("确定吗?"),
    "cancel": gettext_lazy("取消"),
    "done": gettext_lazy("已完成"),
    "rated": gettext_lazy("感谢您的评价!"),
    "reopened": gettext_lazy("已重新打开,我们会尽快处理。"),
    "not_same": gettext_lazy("都不是,提交我的上报"),
    "track": gettext_lazy("查看处理进度"),
    "pick_score": gettext_lazy("请选择 1–5 星"),
    "note": gettext_lazy("说明"),
    "reason": gettext_lazy("原因"),
    "candidates": gettext_lazy("推荐处置队伍"),
    "timeline": gettext_lazy("案件时间线"),
    "nearby": gettext_lazy("附近疑似重复"),
    "photos": gettext_lazy("照片"),
    "no_candidates": gettext_lazy("暂无推荐队伍,可从全部队伍中选择:"),
    "select_case": gettext_lazy("从左侧队列选择一个案件"),
    # Workflow button labels are not here: each case's `actions` carries its own (gridmgmt.rules).
    "extension_pending": gettext_lazy("延时待批"),
    # The desk's queue and its ranked teams (static/js/faces/dispatch.js).
    "queue_count": gettext_lazy("共 %(count)s 件,显示 %(shown)s 件"),
    "queue_load_more": gettext_lazy("再显示 %(n)s 件(还有 %(left)s 件)"),
    "queue_new": gettext_lazy("新"),
    "queue_level": gettext_lazy("已升级至%(level)s"),
    "filter_all": gettext_lazy("全部"),
    "filters_on": gettext_lazy("(已选 %(n)s 项)"),
    "fact_distance": gettext_lazy("距离"),
    "fact_metres": gettext_lazy("%(m)s 米"),
    "fact_km": gettext_lazy("%(km)s 公里"),
    "fact_unknown": gettext_lazy("位置未知"),
    "fact_workload": gettext_lazy("在办"),
    "fact_cases": gettext_lazy("%(n)s 件"),
    "fact_owner": gettext_lazy("责任网格"),
    "fact_owner_yes": gettext_lazy("负责该网格"),
    "fact_skill": gettext_lazy("技能"),
    "fact_skill_yes": gettext_lazy("擅长该类别"),
    "fact_no": gettext_lazy("否"),
    "fact_status": gettext_lazy("状态"),
    "fact_busy": gettext_lazy("处置中"),
    # The resident's loop: the report's result, "my reports", the tracking page.
    "keep_link": gettext_lazy(
        "请保存此链接:以后凭它查看进度,并在办结后评价。换了手机或清除浏览器数据后,只有这个链接能评价。"
    ),
    "copy": gettext_lazy("复制链接"),
    "copied": gettext_lazy("链接已复制"),
    "copy_failed": gettext_lazy("无法自动复制,请长按链接复制。"),
    "share": gettext_lazy("分享"),
    "share_title": gettext_lazy("案件 %(code)s 处理进度"),
    "report_another": gettext_lazy("再报一个问题"),
    "case_number": gettext_lazy("案件编号"),
    "received": gettext_lazy("已收到您的上报,谢谢!"),
    "merged_note": gettext_lazy("该上报与另一案件是同一问题,已合并处理。"),
    "closing_open": gettext_lazy("正在处理中,办结后会在这里显示结果。"),
    "live": gettext_lazy("每 20 秒自动刷新"),
    # Action forms (common.js actionForm): every input labelled, a clear reason when one is missing.
    "required": gettext_lazy("必填"),
    "submit": gettext_lazy("提交"),
    "input_required": gettext_lazy("请填写「%(label)s」。"),
    "input_photo_required": gettext_lazy("请添加「%(label)s」。"),
    "input_hours": gettext_lazy("「%(label)s」须为大于 0 的数字。"),
    # The patrol phone's task list and task detail.
    "task_back": gettext_lazy("返回任务列表"),
    "task_loading": gettext_lazy("正在读取…"),
    "task_where": gettext_lazy("位置与时限"),
    "task_description": gettext_lazy("问题描述"),
    "task_standard": gettext_lazy("处置标准(结案条件)"),
    "task_actions": gettext_lazy("处置操作"),
    "address": gettext_lazy("地址"),
    "cell": gettext_lazy("单元网格"),
    "cell_only": gettext_lazy("单元网格 %(cell)s"),
    "deadline": gettext_lazy("处置时限"),
    "reported_at": gettext_lazy("上报时间"),
    "navigate": gettext_lazy("导航:"),
    "no_address": gettext_lazy("未填写地址(见地图与网格)"),
    "no_description": gettext_lazy("上报人未填写说明"),
    "no_photos": gettext_lazy("没有照片"),
    "no_standard": gettext_lazy("该类别未设定结案条件,请按派遣说明处置。"),
    "no_actions": gettext_lazy("当前没有需要你做的操作。"),
    "photo_alt": gettext_lazy("%(kind)s照片 %(n)s"),
    "status_now": gettext_lazy("案件状态:%(status)s"),
    "got_it": gettext_lazy("知道了"),
    "action_failed": gettext_lazy("未能提交:%(reason)s"),
    # The inbox (static/js/faces/inbox.js) of every staff face.
    "inbox_empty": gettext_lazy("暂无通知"),
    "inbox_new": gettext_lazy("新通知"),
    "inbox_unread": gettext_lazy("%(n)s 条未读通知"),
    "alerts_on": gettext_lazy("已开启提醒"),
    "alerts_denied": gettext_lazy("浏览器不允许通知:请在浏览器设置中允许本站通知。"),
    # The street loudspeaker form (static/js/faces/speakers.js) of the desk and the wall.
    "speaker_target": gettext_lazy("喇叭"),
    "speaker_preset": gettext_lazy("喊话内容"),
    "speaker_typed": gettext_lazy("自定义内容…"),
    "speaker_text": gettext_lazy("喊话文字"),
    "speaker_repeat": gettext_lazy("播放次数"),
    "speaker_send": gettext_lazy("喊话"),
    "speaker_sending": gettext_lazy("正在喊话…"),
    "speaker_none": gettext_lazy("该网格附近没有可用的喇叭"),
    "speaker_all_near": gettext_lazy("本网格及附近全部喇叭(%(n)s 个)"),
    "speaker_this": gettext_lazy("仅此喇叭"),
    "speaker_cell": gettext_lazy("此喇叭所在网格及附近全部喇叭"),
    # The wall (static/js/faces/wall.js): its footer, legend, alert panel and case card.
    "viewport_cases": gettext_lazy("视野内在办案件:显示 %(shown)s / 共 %(total)s"),
    "legend_cells_open": gettext_lazy("网格着色:在办案件数"),
    "legend_cells_overdue": gettext_lazy("网格着色:超时案件数"),
    "alerts_escalated": gettext_lazy("已升级案件"),
    "alerts_urgent": gettext_lazy("紧急案件"),
    "alerts_urgent_tag": gettext_lazy("紧急"),
    "alerts_cameras": gettext_lazy("离线摄像头"),
    "alerts_offline_tag": gettext_lazy("离线"),
    "alerts_none": gettext_lazy("暂无需要处置的告警"),
    "card_level": gettext_lazy("处置层级"),
    "card_urgency": gettext_lazy("紧急程度"),
    "card_address": gettext_lazy("地址"),
    "card_reported": gettext_lazy("上报时间"),
    "card_deadline": gettext_lazy("处置时限"),
    "card_team": gettext_lazy("处置队伍"),
    "card_source": gettext_lazy("来源"),
    "card_open": gettext_lazy("在调度台打开"),
}


def _page_config(request: HttpRequest, **extra) -> dict:
    """Start-up data for the page script, rendered with json_script (escaped for a <script> element)."""
    return {
        "messages": {k: str(v) for k, v in JS_MESSAGES.items()},
        "lang": request.LANGUAGE_CODE,
        "cellTiles": district_map.cell_tile_url_template(),
        "cellMinZoom": CELL_TILE_MIN_ZOOM,
        # Open/clocked statuses, lights and labels: the page reads them here, never from a copy of its own.
        "states": states_describe(),
        **extra,
    }


def _speakers(user: User) -> dict:
    """The loudspeaker form's start-up data: whether this user may call at all (gridmgmt.rules), the categories'
    preset words (data on each category), the bound on repeats."""
    presets = Category.objects.exclude(speaker_preset="").filter(is_active=True).order_by("code")
    return {
        "call": speaker_call_allowed(user=user),
        "presets": [{"code": c.code, "name": name_localized(c), "text": c.speaker_preset} for c in presets],
        "repeatMax": SPEAKER_REPEAT_MAX,
    }


def _inbox(request: HttpRequest, *, case_href: str) -> dict:
    """The inbox of a staff face: the user's notification scope on the feed (realtime/PROTOCOL.md), the list's
    address, and where a line leads (`{id}`/`{code}` filled in by the page): the case on a face this user may open."""
    return {
        "scope": f"user:{request.user.id}",
        "list": reverse("api:notification-list"),
        "caseHref": case_href,
    }


def _case_href(user: User) -> str:
    """A notification's line opens its case on the desk when this user may use the desk, else on the phone's
    task list (patrol), else on the public tracking page."""
    if _role(user) in DISPATCH_ROLES:
        return reverse("faces:dispatch") + "?case={id}"
    if _role(user) in PATROL_ROLES:
        return reverse("faces:patrol") + "?case={code}"
    return reverse("faces:report-track", args=["CODE"]).replace("CODE", "{code}")


def _map_context(request: HttpRequest, *, user=None, boundary_color: str = "#c0392b") -> dict:
    district = _district(user)
    return {
        "district": district,
        "district_name": district_map.display_name(district) if district else "",
        "map": maps.face_map(district=district, boundary_color=boundary_color),
    }


# --- resident ----------------------------------------------------------------------------------------


def report_page(request: HttpRequest) -> HttpResponse:
    """/report/: anyone reports a problem with a photo and a location; no account needed."""
    categories = [c for c in _categories() if not c["sensitive"]] + [c for c in _categories() if c["sensitive"]]
    context = _map_context(request)
    context["config"] = _page_config(request, categories=categories)
    return render(request, "faces/report.html", context)


def _bbox_parse(text: str) -> tuple[float, float, float, float]:
    bbox = tuple(float(v) for v in text.split(","))
    if len(bbox) != 4 or not (-180 <= bbox[0] < bbox[2] <= 180 and -90 <= bbox[1] < bbox[3] <= 90):
        raise ValueError(text)
    return bbox


def _bbox_invalid() -> JsonResponse:
    message = _("bbox 须为 最小经度,最小纬度,最大经度,最大纬度 四个数字")
    return JsonResponse({"code": "bbox_invalid", "detail": message, "field": "bbox"}, status=400)


def report_map(request: HttpRequest) -> JsonResponse:
    """/report/map.json?bbox=minlon,minlat,maxlon,maxlat: the public map's open cases (cell centres only)."""
    wait = clients.limit_hit(scope="public_map", ident=clients.client_ident(request))
    if wait is not None:
        return clients.throttled_json(wait)
    try:
        bbox = _bbox_parse(request.GET.get("bbox", ""))
    except ValueError:
        return _bbox_invalid()
    cases = selectors.public_cases_in_bbox(bbox=bbox)
    return JsonResponse(
        {"cases": cases, "limit": selectors.PUBLIC_MAP_LIMIT}, json_dumps_params={"ensure_ascii": False}
    )


def report_track(request: HttpRequest, code: str) -> HttpResponse:
    """/report/track/<code>: the public timeline; with the tracking token (kept by the browser) rate or reopen."""
    context = _map_context(request)
    context["code"] = code
    # Rate or say "not fixed" (with the token) in the statuses those actions start from (gridmgmt.rules).
    feedback = sorted(RULES["rate"].sources | RULES["reopen"].sources)
    # What the page says in place of a reply when the case has ended: the public view carries no reply of
    # its own (Case.hotline_reply is the hotline's, not public), so the closing status speaks.
    closing = {
        Case.Status.CLOSED: _("问题已处理完毕,案件已办结。请看处置后照片,并告诉我们是否满意。"),
        Case.Status.ARCHIVED: _("问题已处理完毕,案件已办结归档。"),
        Case.Status.VOIDED: _("经核实,该上报不予立案,案件已作废。"),
    }
    context["config"] = _page_config(
        request,
        code=code,
        feedback=feedback,
        closing={str(k): str(v) for k, v in closing.items()},
        photoKinds={k: str(v) for k, v in CasePhoto.Kind.choices},
        poll=20,
    )
    return render(request, "faces/track.html", context)


# --- patrol ------------------------------------------------------------------------------------------


def _statuses_joined(statuses) -> str:
    return ",".join(s for s in Case.Status.values if s in statuses)


def _patrol_task_statuses() -> str:
    """The phone's task list: the statuses a field action starts from (gridmgmt.rules: accept, handle…)."""
    return _statuses_joined(statuses_actionable(roles=access.FIELD_ROLES))


@staff_face(PATROL_ROLES)
def patrol_page(request: HttpRequest) -> HttpResponse:
    """/patrol/: the phone page — report, my tasks, the offline queue."""
    user = request.user
    context = _map_context(request, user=user)
    context["config"] = _page_config(
        request,
        categories=_categories(),
        user={"id": user.id, "name": user.get_full_name() or user.username, "team": user.team_id},
        tasks=_patrol_task_statuses(),
        # The team's cases on the feed: a dispatch reloads the task list at once (realtime/PROTOCOL.md).
        taskScope=f"team:{user.team_id}" if user.team_id else None,
        inbox=_inbox(request, case_href=_case_href(user)),
        serviceWorker=reverse("faces:patrol-sw"),
        photoMax=MAX_PHOTOS,
    )
    return render(request, "faces/patrol.html", context)


def patrol_manifest(request: HttpRequest) -> JsonResponse:
    """The web app manifest that makes /patrol/ installable."""
    manifest = {
        "name": _("网格巡查终端"),
        "short_name": _("巡查"),
        "start_url": reverse("faces:patrol"),
        "scope": reverse("faces:patrol"),
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#c0392b",
        "lang": request.LANGUAGE_CODE,
        "icons": [
            {"src": static("img/faces/patrol-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": static("img/faces/patrol-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "any"},
        ],
    }
    response = JsonResponse(manifest, json_dumps_params={"ensure_ascii": False})
    response["Content-Type"] = "application/manifest+json"
    return response


def static_version() -> str:
    """A short digest that changes whenever a static file does: the patrol service worker's cache name, so a
    deploy reaches phones (a changed worker replaces its cache). Behind nginx, the hashed storage's manifest
    hash; else the source files' names, sizes and times (65 files: well under a millisecond)."""
    manifest_hash = getattr(staticfiles_storage, "manifest_hash", "")
    if manifest_hash:
        return manifest_hash[:12]
    digest = hashlib.sha256()
    for root in settings.STATICFILES_DIRS:
        for path in sorted(Path(root).rglob("*")):
            if path.is_file():
                info = path.stat()
                digest.update(f"{path.relative_to(root)}:{info.st_size}:{info.st_mtime_ns};".encode())
    return digest.hexdigest()[:12]


@never_cache
def patrol_service_worker(request: HttpRequest) -> HttpResponse:
    """The service worker, served under /patrol/ so that its scope covers the page."""
    response = render(
        request,
        "faces/patrol_sw.js",
        {"shell": [reverse("faces:patrol")], "version": static_version()},
        content_type="text/javascript",
    )
    return response


# --- wall ---------------------------------------------------------------------------------------------


@staff_face(WALL_ROLES)
def wall_page(request: HttpRequest) -> HttpResponse:
    """/wall/: the command centre's video wall (dark, no scrolling, live)."""
    context = _map_context(request, user=request.user, boundary_color="#5dade2")
    district = context["district"]
    context["config"] = _page_config(
        request,
        snapshot=reverse("faces:wall-snapshot"),
        # The wall follows its district on the real-time feed (realtime/PROTOCOL.md).
        scope=f"district:{district.pk}" if district else "all",
        eventLabels={k: str(v) for k, v in CaseEvent.Type.choices},
        # Feed envelopes carry the category's code and its name in the site's language: the wall shows the
        # name in the page's language, looked up by code.
        categoryNames={c["code"]: c["name"] for c in _categories()},
        inbox=_inbox(request, case_href=_case_href(request.user)),
        speakers=_speakers(request.user),
        # The four handling levels' names (Case.Level), for escalated cases on the map and in the alerts.
        levels={value: str(label) for value, label in Case.Level.choices},
        # A case card links to the desk for those who may use it.
        caseHref=reverse("faces:dispatch") + "?case={id}" if _role(request.user) in DISPATCH_ROLES else "",
    )
    return render(request, "faces/wall.html", context)


@gzip_page  # ~700 KB of JSON for Pudong (per-cell counts and heat) → ~190 KB for ~20 ms of CPU
@staff_face(WALL_ROLES)
def wall_snapshot(request: HttpRequest) -> HttpResponse:
    """The wall's start-up state (?only=a,b to pick parts; "cases" with ?bbox= is the viewport's open cases,
    "teams" the teams' positions, "speakers" the street loudspeakers); afterwards it follows the real-time feed."""
    district = _district(request.user)
    parts = {p for p in request.GET.get("only", "").split(",") if p}
    bbox = None
    if "cases" in parts:
        try:
            bbox = _bbox_parse(request.GET.get("bbox", ""))
        except ValueError:
            return _bbox_invalid()
    with lag_tolerant():  # the replica's, when there is one: the feed brings the screen up to date
        data = selectors.wall_snapshot(
            cases=access.cases_visible(user=request.user),
            district_id=district.pk if district else None,
            parts=parts,
            bbox=bbox,
            teams=access.teams_visible(user=request.user) if "teams" in parts else None,
            speakers=access.speakers_visible(user=request.user) if "speakers" in parts else None,
        )
    return HttpResponse(selectors.snapshot_render(data), content_type="application/json")


# --- dispatch -----------------------------------------------------------------------------------------


# The desk's queues: each a stage of the workflow, the statuses its actions start from (gridmgmt.rules).
DISPATCH_QUEUES = (
    (gettext_lazy("待立案"), ("file",)),
    (gettext_lazy("待派遣"), ("dispatch",)),
    (gettext_lazy("处置中"), ("accept", "handle")),
    (gettext_lazy("待核查"), ("check_pass",)),
    (gettext_lazy("待结案"), ("close",)),
    (gettext_lazy("挂账"), ("resume",)),
)


def _dispatch_queues() -> list[dict]:
    queues = [
        {"label": str(label), "statuses": _statuses_joined({s for a in actions for s in RULES[a].sources})}
        for label, actions in DISPATCH_QUEUES
    ]
    return [*queues, {"label": str(gettext_lazy("全部在办")), "statuses": _statuses_joined(OPEN_STATUSES)}]


def _desk_scope(user: User) -> str:
    """The widest feed scope this user may hold other than their own inbox (realtime.scopes.scopes_default)."""
    return next((sc.key for sc in scopes_default(user=user) if sc.kind != "user"), "")


def _queue_filters(district) -> dict:
    """The desk's filter choices: the district's streets, the major categories, sources, lights and levels."""
    streets = AdminArea.objects.filter(level=AdminArea.Level.STREET, parent=district) if district else []
    majors = Category.objects.filter(parent__isnull=True, is_active=True).order_by("code")
    lights = states_describe()["lightLabels"]
    return {
        "area": [[a.code, a.name] for a in streets.only("code", "name").order_by("code")] if district else [],
        "category": [[c.code, name_localized(c)] for c in majors],
        "source": [[value, str(label)] for value, label in Case.Source.choices],
        "light": [[light, lights[light]] for light in ("red", "yellow", "green", "none")],
        "level": [[str(value), str(label)] for value, label in Case.Level.choices],
    }


def _ranking_rule() -> str:
    """How the ranked teams are ordered, in words, from the ranking's own weights (gridmgmt.selectors)."""
    return _(
        "排序依据:负责该网格 +%(owner)s,擅长该类别 +%(skill)s,距离每 %(step)s 米 −1(最多计 %(cap)s 米),"
        "每件在办 −%(load)s,处置中 −%(busy)s;得分高者在前。"
    ) % {
        "owner": round(case_selectors.OWNER_BONUS),
        "skill": round(case_selectors.SKILL_BONUS),
        "step": round(case_selectors.DISTANCE_PER_POINT_M),
        "cap": round(case_selectors.DISTANCE_CAP_M),
        "load": round(case_selectors.WORKLOAD_PENALTY),
        "busy": round(case_selectors.BUSY_PENALTY),
    }


@staff_face(DISPATCH_ROLES)
def dispatch_page(request: HttpRequest) -> HttpResponse:
    """/dispatch/: the queue, a case's details, duplicates, ranked teams, and the actions each case carries."""
    from gridmgmt.faces.desk import desk_config  # the desk module imports this one (staff_face)

    user = request.user
    context = _map_context(request, user=user)
    context["queues"] = _dispatch_queues()
    district = context["district"]
    context["config"] = _page_config(
        request,
        user={"id": user.id, "name": user.username},
        urgencies=[[value, str(label)] for value, label in Case.Urgency.choices],
        # The queue follows the desk's area on the feed (realtime/PROTOCOL.md): new and changed cases at once.
        scope=_desk_scope(user),
        filters=_queue_filters(district),
        rankingRule=_ranking_rule(),
        inbox=_inbox(request, case_href=_case_href(user)),
        speakers=_speakers(user),
        desk=desk_config(user),
    )
    return render(request, "faces/dispatch.html", context)


# --- login --------------------------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    template_name = "faces/login.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        # Attempts per address; a (username, address) is locked by django-axes after repeated failures.
        wait = clients.limit_hit(scope="login", ident=f"ip:{clients.client_ip(request)}")
        if wait is not None:
            return clients.throttled_page(request, wait)
        return super().post(request, *args, **kwargs)

    def get_default_redirect_url(self):
        home = access.ROLE_HOME.get(_role(self.request.user))
        return reverse(f"faces:{home}") if home else reverse("home")

    def get_redirect_url(self):
        url = super().get_redirect_url()
        if url and url_has_allowed_host_and_scheme(url, allowed_hosts={self.request.get_host()}):
            return url
        return ""
