"""Who is calling, and how often: the client's address as the trusted proxy reports it, and rate limits
counted in the shared cache (Redis, settings.CACHES), so every server process sees the same counters.

Every limit in the project goes through here — DRF views through `ClientRateThrottle`, plain Django views
(the public map, Open311, the login page) through `limit_hit` — so one rule decides who a client is:

- `NUM_PROXIES = 0` (the default): `X-Forwarded-For` is ignored, the client is the socket's peer
  (`REMOTE_ADDR`). A client can put anything in that header; trusting it lets a new value per request
  escape every limit.
- `NUM_PROXIES = n`: the n-th address from the right of `X-Forwarded-For`, the one the outermost of our
  n proxies saw (nginx: `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;` and
  `NUM_PROXIES=1`). Addresses further left were written by the client and are not read.

Rates are "count/period" strings (`30/hour`) from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], one table for
DRF and non-DRF limits. Counting is a fixed window per (scope, client): one atomic INCR in Redis.

Redis unreachable: limits are not counted (fail open, a warning logged per request) — a report must not be
refused because the counter store is away (README, "Faults"). Everything else that needs Redis degrades as
documented there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.utils.translation import gettext as _
from redis.exceptions import RedisError
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

log = logging.getLogger(__name__)

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or with NUM_PROXIES = n the n-th entry from the right of
    X-Forwarded-For (clamped to the leftmost when the header is shorter)."""
    request = getattr(request, "_request", request)  # a DRF Request wraps the HttpRequest
    remote = request.META.get("REMOTE_ADDR", "") or ""
    num_proxies = int(getattr(settings, "NUM_PROXIES", 0) or 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if num_proxies <= 0 or not forwarded:
        return remote
    addresses = [a.strip() for a in forwarded.split(",") if a.strip()]
    if not addresses:
        return remote
    return addresses[-min(num_proxies, len(addresses))][:64]


def client_ident(request) -> str:
    """The key a per-client limit counts under: the account when logged in, else the address."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"u{user.pk}"
    return f"ip:{client_ip(request)}"


def rate_parse(rate: str) -> tuple[int, int]:
    """'30/hour' → (30, 3600)."""
    count, _sep, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[:1]]


def rate_of(scope: str) -> str | None:
    return api_settings.DEFAULT_THROTTLE_RATES.get(scope)


def limit_hit(*, scope: str, ident: str, rate: str | None = None) -> int | None:
    """Count one request of `ident` in `scope`. None while within the rate; over it, the seconds until the
    window ends (for Retry-After). A scope with no rate is not limited."""
    return limits_hit(checks=[(scope, ident)], rate=rate)[0]


def limits_hit(*, checks: Sequence[tuple[str, str]], rate: str | None = None) -> list[int | None]:
    """limit_hit for several (scope, ident) at once, in one round trip to the shared cache (a pipeline of
    SET NX EX + INCR per key: the window's counter made with its expiry, then counted), answers in order. The
    same counters as Django's cache API reads (an int is stored as a plain Redis integer). The cache
    unreachable: nothing is counted (logged), as a limit must not take the service down with it."""
    now = time.time()
    answers: list[int | None] = [None] * len(checks)
    counted = []  # (index, count, period, window, key)
    for i, (scope, ident) in enumerate(checks):
        scope_rate = rate or rate_of(scope)
        if not scope_rate:
            continue
        count, period = rate_parse(scope_rate)
        window = int(now // period)
        counted.append((i, count, period, window, cache.make_and_validate_key(f"rl:{scope}:{ident}:{window}")))
    if not counted:
        return answers
    try:
        # Django's RedisCache has no pipeline of its own: its client (and pool, Sentinel included) is used directly.
        pipe = cache._cache.get_client(write=True).pipeline(transaction=False)
        for _i, _count, period, _window, key in counted:
            pipe.set(key, 0, nx=True, ex=period + 1)
            pipe.incr(key)
        hits = pipe.execute()[1::2]
    except (RedisError, OSError) as exc:
        log.warning("rate limits %s not counted: cache unreachable (%s)", sorted({s for s, _ in checks}), exc)
        return answers
    for (i, count, period, window, _key), n in zip(counted, hits, strict=True):
        if n > count:
            answers[i] = max(1, int((window + 1) * period - now + 0.999))
    return answers


def once(*, scope: str, ident: str, timeout: int) -> bool:
    """True the first time (scope, ident) is seen within `timeout` seconds, False after (atomic SET NX)."""
    return cache.add(f"once:{scope}:{ident}", 1, timeout=timeout)


def once_forget(*, scope: str, ident: str) -> None:
    cache.delete(f"once:{scope}:{ident}")


def throttled_message(wait: int) -> str:
    """The 429 message in the request's language."""
    return _("请求过于频繁,请在 %(seconds)d 秒后重试") % {"seconds": wait}


class ClientRateThrottle(BaseThrottle):
    """DRF throttle on the view's `throttle_scope`, keyed by `client_ident` (so by `client_ip` for anonymous
    callers), counted in the shared cache."""

    def allow_request(self, request, view) -> bool:
        scope = getattr(view, "throttle_scope", None)
        self._wait = limit_hit(scope=scope, ident=client_ident(request)) if scope else None
        return self._wait is None

    def wait(self):
        return getattr(self, "_wait", None)

    def get_ident(self, request) -> str:
        return client_ip(request)


class AnonRateThrottle(ClientRateThrottle):
    """Limits anonymous callers only (logged-in users are limited by their account elsewhere)."""

    def allow_request(self, request, view) -> bool:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return True
        return super().allow_request(request, view)


def lockout_response(request: HttpRequest, original_response=None, credentials=None):
    """django-axes lockout (AXES_LOCKOUT_CALLABLE): 429 with Retry-After, in the API's error shape under
    /api/, a page elsewhere (the login form)."""
    from django.http import JsonResponse
    from django.shortcuts import render

    cooloff = getattr(settings, "AXES_COOLOFF_TIME", None)
    wait = int(cooloff.total_seconds()) if cooloff else 3600
    message = _("登录失败次数过多,请在 %(minutes)d 分钟后重试") % {"minutes": max(1, (wait + 59) // 60)}
    if request.path.startswith("/api/"):
        response = JsonResponse({"code": "locked_out", "detail": message, "field": None}, status=429)
    else:
        response = render(request, "faces/throttled.html", {"message": message}, status=429)
    response["Retry-After"] = str(wait)
    return response


def throttled_page(request: HttpRequest, wait: int):
    """429 for an HTML form (the login page): a page with Retry-After."""
    from django.shortcuts import render

    response = render(request, "faces/throttled.html", {"message": throttled_message(wait)}, status=429)
    response["Retry-After"] = str(wait)
    return response


def throttled_json(wait: int):
    """429 in the API's error shape for a plain Django JSON view (the public map)."""
    from django.http import JsonResponse

    response = JsonResponse({"code": "throttled", "detail": throttled_message(wait), "field": None}, status=429)
    response["Retry-After"] = str(wait)
    return response
