"""`make prod-check` (part of `make test`): the stack of stack.py around the smoke scenario. Only with
--prod-check, so the normal suite does not run it a second time."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
from django.conf import settings

from tests.live import database_url
from tests.prod_check.stack import ROOT, Stack


@pytest.fixture(scope="session")
def stack(django_db_setup, django_db_blocker) -> Iterator[Stack]:
    from django.db import connection

    with django_db_blocker.unblock():
        url = database_url(connection.settings_dict)
    stack = Stack(base=ROOT / "var" / "prod-check", database_url=url, redis_url=settings.REDIS_URL)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def tls(stack) -> ssl.SSLContext:
    """Trusts the run's self-signed certificate, and only it."""
    return ssl.create_default_context(cafile=str(stack.cert))
