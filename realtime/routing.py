"""WebSocket routing: one endpoint, the session cookie authenticates, the Origin must be this server's own."""

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.urls import path

from realtime.consumers import FeedConsumer

websocket_urlpatterns = [path("ws/feed/", FeedConsumer.as_asgi())]


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or ()}


def origin_allowed(scope) -> bool:
    """Django's CSRF origin rule for the handshake: the Origin must be exactly the origin the browser loaded
    the page from — scheme, host and port — i.e. `http(s)://<Host>` of this request (the Host in
    `ALLOWED_HOSTS`), or one of `CSRF_TRUSTED_ORIGINS`. Another port of an allowed host is another origin.
    Behind a TLS proxy the scheme comes from `SECURE_PROXY_SSL_HEADER`, the host from `Host` (or
    `X-Forwarded-Host` with `USE_X_FORWARDED_HOST`), as for HTTP requests."""
    headers = _headers(scope)
    origin = headers.get("origin", "").strip().lower()
    if not origin or origin == "null":
        return False
    if origin in {o.lower() for o in settings.CSRF_TRUSTED_ORIGINS}:
        return True
    host = headers.get("host", "")
    if getattr(settings, "USE_X_FORWARDED_HOST", False) and headers.get("x-forwarded-host"):
        host = headers["x-forwarded-host"].split(",")[0].strip()
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    secure = scope.get("scheme") in ("wss", "https")
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        name, value = proxy
        name = name.removeprefix("HTTP_").lower().replace("_", "-")
        if name in headers:
            secure = headers[name].split(",", 1)[0].strip() == value
    return origin == f"{'https' if secure else 'http'}://{host.lower()}"


class SameOriginValidator:
    """Refuses (HTTP 403 at the handshake) a WebSocket whose Origin is not `origin_allowed`."""

    def __init__(self, application):
        self.application = application
        self.denier = WebsocketDenier.as_asgi()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await self.denier(scope, receive, send)
        return await self.application(scope, receive, send)


websocket_application = SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
