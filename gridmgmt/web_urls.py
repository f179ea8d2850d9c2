from django.templatetags.static import static
from django.urls import path
from django.views.generic import RedirectView

from gridmgmt import views

urlpatterns = [
    path("", views.home, name="home"),
    # Browsers ask for /favicon.ico on every page (the admin included); answer instead of logging a 404.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.ico"), permanent=True)),
]
