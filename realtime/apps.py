from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = _("实时推送")

    def ready(self) -> None:
        from gridmgmt.events import events_subscribe
        from realtime.services import case_events_published

        events_subscribe(case_events_published)
