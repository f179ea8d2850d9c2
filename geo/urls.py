from django.urls import path

from geo import views

app_name = "geo"
urlpatterns = [
    path("map/", views.map_page, name="map"),
    path("tiles/cells/<int:z>/<int:x>/<int:y>.pbf", views.cell_tile, name="cell-tile"),
    path("tiles/basemap/<int:z>/<int:x>/<int:y>.<str:ext>", views.basemap_tile, name="basemap-tile"),
]
