from django.contrib.auth import views as auth_views
from django.urls import path

from gridmgmt.faces import desk, stats, views

app_name = "faces"
urlpatterns = [
    path("report/", views.report_page, name="report"),
    path("report/map.json", views.report_map, name="report-map"),
    path("report/track/<str:code>", views.report_track, name="report-track"),
    path("patrol/", views.patrol_page, name="patrol"),
    path("patrol/manifest.webmanifest", views.patrol_manifest, name="patrol-manifest"),
    path("patrol/sw.js", views.patrol_service_worker, name="patrol-sw"),
    path("wall/", views.wall_page, name="wall"),
    path("wall/snapshot.json", views.wall_snapshot, name="wall-snapshot"),
    path("dispatch/", views.dispatch_page, name="dispatch"),
    path("stats/", stats.stats_page, name="stats"),
    path("stats/heat.json", stats.stats_heat, name="stats-heat"),
    path("stats/monthly/", stats.monthly_report, name="stats-monthly"),
    path("dispatch/cases/<str:code>/print/", desk.case_print_page, name="case-print"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="/"), name="logout"),
]
