from django.urls import path

from realtime import views

app_name = "realtime"
urlpatterns = [
    path("position/", views.TeamPositionView.as_view(), name="position"),
    path("teams/<int:team_id>/status/", views.TeamStatusView.as_view(), name="team-status"),
]
