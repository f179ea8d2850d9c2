from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GridmgmtConfig(AppConfig):
    name = "gridmgmt"
    verbose_name = _("网格化管理")
