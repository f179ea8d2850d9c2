from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Face:
    path: str
    title: Promise
    description: Promise

    @property
    def available(self) -> bool:
        # A face is linked once its URL exists, so the landing page needs no edit when one ships.
        try:
            resolve(self.path)
        except Resolver404:
            return False
        return True


FACES = [
    Face("/map/", _("网格地图"), _("区界与单元网格")),
    Face("/wall/", _("指挥大屏"), _("实时案件、超时预警与考核")),
    Face("/dispatch/", _("派遣台"), _("立案、派遣、核查与结案")),
    Face("/stats/", _("统计分析"), _("考评指标、趋势、热力与月度考评")),
    Face("/patrol/", _("巡查终端"), _("巡查队员上报与处置(手机)")),
    Face("/report/", _("居民上报"), _("随手拍,查看处理进度")),
    Face("/admin/", _("后台管理"), _("网格、部门、类别与用户")),
]


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"faces": FACES})
