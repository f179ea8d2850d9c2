"""Probe and scrape endpoints: plain Django views, outside DRF's authentication and rate limits (a load
balancer polls them every few seconds from a fixed address)."""

import ipaddress

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django_prometheus.exports import ExportToDjangoView

from gridmgmt.clients import client_ip
from gridmgmt.observability.health import readiness_check


@never_cache
def healthz(request):
    """The process answers (no database, no Redis: a dependency's outage must not get every worker killed)."""
    return HttpResponse("ok\n", content_type="text/plain")


@never_cache
def readyz(request):
    """200 when the database, its migrations, Redis and the media disk are fine, else 503 with the reasons."""
    checks = readiness_check()
    ready = all(reason is None for reason in checks.values())
    return JsonResponse({"ready": ready, "checks": checks}, status=200 if ready else 503)


def _scraper_allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    if token and request.headers.get("Authorization") == f"Bearer {token}":
        return True
    try:
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net) for net in settings.METRICS_ALLOWED_NETWORKS)


@never_cache
def metrics(request):
    """Prometheus text format, for the configured scrapers only; anyone else gets 404 (it does not exist)."""
    if not _scraper_allowed(request):
        raise Http404
    return ExportToDjangoView(request)
