"""The desk's printable case sheet (案件单): /dispatch/cases/<code>/print/.

A plain HTML page with print CSS — what a dispatcher hands a team without a phone, or files with a 12345 order:
the code (as text and as a QR code of the case's desk link), category, address, cell, description, photos and
the timeline. The reader is the same access gate as the API: a case outside the user's scope is a 404.
"""

from __future__ import annotations

import segno
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from gridmgmt import access
from gridmgmt.faces.views import DISPATCH_ROLES, staff_face
from gridmgmt.models import Case, CaseEvent
from gridmgmt.names import name_localized
from gridmgmt.phones import phone_mask
from gridmgmt.rules import BUTTONS, REPORT_SOURCES, RULES
from gridmgmt.states import LIGHT_LABELS, case_light


def case_qr_svg(*, url: str) -> str:
    """The QR code of `url` as inline SVG (no file, no script; prints crisp at any size)."""
    return segno.make(url, error="m").svg_inline(scale=3, border=2, dark="#000")


@staff_face(DISPATCH_ROLES)
def case_print_page(request: HttpRequest, code: str) -> HttpResponse:
    case = access.case_access(user=request.user, code=code)
    case = (
        Case.objects.select_related(
            "category__parent", "cell", "team", "street", "community", "department", "component"
        )
        .prefetch_related("photos")
        .get(pk=case.pk)
    )
    timeline = CaseEvent.objects.filter(case=case).select_related("actor").order_by("id")
    link = request.build_absolute_uri(f"{reverse('faces:dispatch')}?case={case.pk}")
    now = timezone.now()
    light = case_light(case=case, now=now)
    context = {
        "case": case,
        "category": name_localized(case.category),
        "major": name_localized(case.category.parent) if case.category.parent_id else "",
        "light_label": LIGHT_LABELS[light],
        "light": light,
        "reporter_phone": phone_mask(case.reporter_phone),
        "timeline": timeline,
        "qr": case_qr_svg(url=link),
        "link": link,
        "printed_at": now,
    }
    return render(request, "faces/case_print.html", context)


# --- the desk actions' start-up data (static/js/faces/desk_actions.js) ------------------------------------------

BULK_ACTIONS = ("file", "void", "dispatch")
COMPONENT_MIN_ZOOM = 16  # components are drawn from here (a few hundred metres across): GeoJSON in the box


def desk_config(user) -> dict:
    """What the desk-actions module needs, decided here: the actions this user's role may take in bulk and on
    the 回访 screen (gridmgmt.rules), the channels they may enter a case through (rules.REPORT_SOURCES), the
    print link's pattern and the page's words in the request's language."""
    role = access.role_effective(user)
    sources = [s for s in REPORT_SOURCES.get(role, ()) if s in PHONE_SOURCES]
    return {
        # Each bulk action with the statuses its rule starts from: the panel lists the cases it may apply to.
        "bulk": [
            {
                "name": a,
                "label": str(BUTTONS[a]),
                "statuses": ",".join(s for s in Case.Status.values if s in RULES[a].sources),
            }
            for a in BULK_ACTIONS
            if role in RULES[a].roles
        ],
        # 回访: record the answer (the rate rule) of a call, which needs the whole number
        "returnVisit": role in RULES["rate"].roles and access.reporter_phone_may_call(user),
        "sources": [{"value": s, "label": str(Case.Source(s).label)} for s in sources],
        "printUrl": reverse("faces:case-print", kwargs={"code": "CODE"}),
        "componentMinZoom": COMPONENT_MIN_ZOOM,
        "messages": {k: str(v) for k, v in DESK_MESSAGES.items()},
    }


# The channels a case taken at the desk comes in by: a 12345 call or an order from above (上级交办).
PHONE_SOURCES = (Case.Source.HOTLINE, Case.Source.ASSIGNED)

DESK_MESSAGES = {
    "new_case": _("电话登记"),
    "bulk": _("批量处理"),
    "return_visits": _("回访"),
    "urges": _("督办台账"),
    "print": _("打印案件单"),
    "close": _("关闭"),
    "category": _("类别"),
    "source": _("来源"),
    "address": _("地址"),
    "description": _("描述"),
    "reporter_name": _("联系人"),
    "reporter_phone": _("联系电话"),
    "external_id": _("工单号"),
    "component": _("部件编码"),
    "location": _("位置"),
    "pick_on_map": _("在地图上点选位置(或点选部件)"),
    "location_picked": _("已选位置 %(lon)s, %(lat)s"),
    "check_duplicates": _("查重并登记"),
    "duplicates_found": _("附近已有 %(n)s 件同类在办案件,可能是同一问题:"),
    "merge_into": _("合并到此案件 (附议)"),
    "proceed": _("仍然新建"),
    "created": _("已登记案件 %(code)s"),
    "merged": _("已合并到案件 %(code)s"),
    "need_location": _("请先在地图上点选位置"),
    "need_category": _("请选择类别"),
    "action": _("操作"),
    "team": _("处置队伍"),
    "reason": _("原因"),
    "note": _("说明"),
    "status_filter": _("案件状态"),
    "select_all": _("全选"),
    "selected": _("已选 %(n)s 件"),
    "run": _("执行"),
    "bulk_result": _("成功 %(ok)s 件,失败 %(failed)s 件"),
    "none_selected": _("请至少选择一个案件"),
    "no_items": _("没有案件"),
    "satisfaction": _("满意度"),
    "record": _("记录回访"),
    "recorded": _("已记录"),
    "urged_at": _("督办时间"),
    "urge_note": _("督办意见"),
    "answer": _("回复"),
    "unanswered": _("待回复"),
    "all": _("全部"),
    "answered": _("已回复"),
    "components_layer": _("部件"),
    "case": _("案件编号"),
    "need_satisfaction": _("请选择满意度"),
    "show_phone": _("显示号码"),
    "call": _("拨打"),
}
