from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from gridmgmt import media
from gridmgmt.observability import views as observability
from realtime import tracking

urlpatterns = [
    path("healthz", observability.healthz, name="healthz"),
    path("readyz", observability.readyz, name="readyz"),
    path("metrics", observability.metrics, name="metrics"),
    # Photos: each request passes the access gate, DEBUG or not (gridmgmt/media.py).
    path(settings.MEDIA_URL.lstrip("/") + "<path:path>", media.media_serve, name="media"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    # Channel intake (camera alarms, 12345 orders) before the generic REST API under the same prefix.
    path("api/", include("gridmgmt.intake.urls")),
    path("api/", include("gridmgmt.api.urls")),
    path("open311/v2/", include("gridmgmt.open311.urls")),
    path("realtime/", include("realtime.urls")),
    path("track/osmand", tracking.osmand, name="track-osmand"),  # OsmAnd / Traccar Client devices
    path("", include("gridmgmt.faces.urls")),
    path("", include("geo.urls")),
    path("", include("gridmgmt.web_urls")),
]

handler404 = "gridmgmt.badinput.not_found"  # JSON under /api/ and /realtime/ (gridmgmt/badinput.py)
