"""Shared fixtures. Tests run against the real PostGIS and Redis that `make test` starts."""

import uuid

import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--prod-check", action="store_true", help="run tests/prod_check (nginx + workers over HTTPS: make prod-check)"
    )


def pytest_collection_modifyitems(config, items):
    # The production smoke check runs in `make prod-check` only (make test calls it once, before the suite).
    if config.getoption("--prod-check"):
        return
    skip = pytest.mark.skip(reason="production smoke check: run by `make prod-check` (--prod-check)")
    for item in items:
        if "prod_check" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    # Uploaded photos go to a per-test directory, never into var/media.
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fast_password_hasher(request, settings):
    # PBKDF2 at Django's default cost takes ~0.5 s per user; in-process tests don't need it. Browser and
    # live-server tests keep the default, since their server process only knows the default hashers.
    if not any(part in request.node.nodeid for part in ("e2e/", "realtime/", "prod_check/")):
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _cache_isolated(settings):
    # Limits, lockouts and +1 marks live in the shared Redis (settings.CACHES): each test gets a key prefix of
    # its own, removed afterwards, so no throttle state leaks between tests — nor between parallel runs on
    # the same Redis (a cache.clear() would flush theirs too).
    prefix = f"test-{uuid.uuid4().hex}"
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": prefix}}
    yield
    from django.core.cache import cache

    client = cache._cache.get_client(write=True)
    # SCAN walks the whole keyspace, which grows through the run (the live servers' cached tiles and
    # sessions): at the default 10 keys a call that was ~1 s per test by the end; 10,000 a call, a few ms.
    keys = list(client.scan_iter(match=f"{prefix}:*", count=10_000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def receivers():
    """receivers(n, status=…, delay=…) → n running stand-ins for street loudspeakers (tests/receivers.py)."""
    from tests.receivers import receivers_running

    make, servers = receivers_running()
    yield make
    for server in servers:
        server.shutdown()
        server.server_close()
