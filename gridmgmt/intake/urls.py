from django.urls import path

from gridmgmt.intake import views

urlpatterns = [
    path("camera-alarms/", views.CameraAlarmView.as_view(), name="camera-alarms"),
    path("camera-heartbeats/", views.CameraHeartbeatView.as_view(), name="camera-heartbeats"),
    path("hotline-orders/", views.HotlineOrderView.as_view(), name="hotline-orders"),
    path("hotline-orders/<str:order_no>/", views.HotlineOrderDetailView.as_view(), name="hotline-order"),
]
