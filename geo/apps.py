from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GeoConfig(AppConfig):
    name = "geo"
    verbose_name = _("空间数据")

    def ready(self) -> None:
        # folium links CDNs by default; point it at static/vendor/ before any map is built.
        from geo import folium_offline

        folium_offline.install()
