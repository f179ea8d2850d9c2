"""ASGI entry point: HTTP through Django (and /static/ when SERVE_STATIC), WebSocket through Channels.

Run it with any ASGI server, e.g. `uvicorn gridmgmt.asgi:application`. Behind nginx in production, set
SERVE_STATIC=0 and let nginx serve `collectstatic`'s output.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gridmgmt.settings")

from channels.routing import ProtocolTypeRouter
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()
http_app = ASGIStaticFilesHandler(django_asgi_app) if settings.SERVE_STATIC else django_asgi_app

from geo.tile_asgi import CellTileFastPath  # noqa: E402

http_app = CellTileFastPath(http_app)  # cell tiles: cached from Redis, else rendered off Django (geo/tile_asgi.py)

from realtime.track_asgi import TrackFastPath  # noqa: E402

http_app = TrackFastPath(http_app)  # /track/osmand fixes written in batches (realtime/track_asgi.py)

from realtime.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter({"http": http_app, "websocket": websocket_application})
