"""The headers Django's middleware puts on every answer, for the ASGI fast paths that answer before Django
(geo/tile_asgi.py: cached cell tiles; realtime/track_asgi.py: tracker fixes). Read from the same settings as
SecurityMiddleware (nosniff, Referrer-Policy, Cross-Origin-Opener-Policy, HSTS on a secure request),
XFrameOptionsMiddleware and gridmgmt.observability.requestlog (X-Request-ID), so a fast answer carries what
the view's would; tests/geo/test_tiles.py and tests/realtime/test_tracking.py compare the two."""

from __future__ import annotations

from django.conf import settings

from gridmgmt.observability.requestlog import request_id_take


def _secure(scope, headers: dict[bytes, bytes]) -> bool:
    """HttpRequest.is_secure() for an ASGI scope: the proxy's header when SECURE_PROXY_SSL_HEADER names one."""
    if settings.SECURE_PROXY_SSL_HEADER:
        name, expected = settings.SECURE_PROXY_SSL_HEADER
        value = headers.get(name.removeprefix("HTTP_").replace("_", "-").lower().encode())
        if value is not None:
            return value.decode("latin-1").split(",")[0].strip() == expected
    return scope.get("scheme") in ("https", "wss")


def response_headers(scope, headers: dict[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    """For a request with `headers` (lower-case names): what the middleware stack would add to its answer."""
    out = [(b"x-request-id", request_id_take(headers.get(b"x-request-id", b"").decode("latin-1")).encode())]
    if settings.SECURE_HSTS_SECONDS and _secure(scope, headers):
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        out.append((b"strict-transport-security", hsts.encode()))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        out.append((b"x-content-type-options", b"nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        out.append((b"referrer-policy", (policy if isinstance(policy, str) else ",".join(policy)).encode()))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        out.append((b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode()))
    out.append((b"x-frame-options", settings.X_FRAME_OPTIONS.encode()))
    return out
