"""The REST API under /api/ (the channel intake in gridmgmt.intake owns camera-alarms/ and hotline-orders/)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from gridmgmt.api import auth, desk, kpis, notifications, public, speakers, views

router = SimpleRouter()
router.register("cases", views.CaseViewSet, basename="case")
router.register("teams", views.TeamViewSet, basename="team")
router.register("cells", views.CellViewSet, basename="cell")
router.register("notifications", notifications.NotificationViewSet, basename="notification")
router.register("speakers", speakers.SpeakerViewSet, basename="speaker")
router.register("speaker-calls", speakers.SpeakerCallViewSet, basename="speaker-call")

app_name = "api"
urlpatterns = [
    *router.urls,
    path("events/", views.EventList.as_view(), name="event-list"),
    path("categories/", views.CategoryList.as_view(), name="category-list"),
    path("me/", views.MeView.as_view(), name="me"),
    path("kpis/", kpis.KpiView.as_view(), name="kpis"),
    path("duplicates/", views.DuplicatesView.as_view(), name="duplicates"),
    path("urges/", desk.UrgeLedger.as_view(), name="urge-ledger"),
    path("return-visits/", desk.ReturnVisitList.as_view(), name="return-visits"),
    path("components/", desk.ComponentList.as_view(), name="component-list"),
    path("token/", auth.TokenLogin.as_view(), name="token"),
    path("public/reports/", public.PublicReportCreate.as_view(), name="public-report"),
    path("public/cases/<str:code>/", public.PublicCaseDetail.as_view(), name="public-case"),
    path("public/cases/<str:code>/support/", public.PublicCaseSupport.as_view(), name="public-case-support"),
    path("public/cases/<str:code>/rate/", public.PublicCaseRate.as_view(), name="public-case-rate"),
    path("public/cases/<str:code>/reopen/", public.PublicCaseReopen.as_view(), name="public-case-reopen"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    # Our template drops the stock one's Google web fonts: nothing may load from outside the intranet.
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema", template_name="api/redoc.html"), name="redoc"),
]
