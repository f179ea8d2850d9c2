"""Schemathesis over the whole OpenAPI schema (/api/schema/): generated requests — valid and invalid — to
every operation, in process through the WSGI app (no network, no server), authenticated as the admin (so
the operations run rather than stop at 401). Every response must be a non-5xx that the schema declares:
its status code, content type and body.

Bounded for `make test`: `MAX_EXAMPLES` per operation and phase, derandomized (the same examples on
every run), a few minutes on the 2-core machine at most."""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gridmgmt.models import User
from tests.gridmgmt.api.conftest import api_world_build, report

MAX_EXAMPLES = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(autouse=True)
def _node_id(request):
    """schemathesis 4.32 names each operation's run through the node's `_nodeid`, which pytest 9 no longer has."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@pytest.fixture
def admin_token(db) -> str:
    world = api_world_build()
    report(world)  # one case, so detail/action operations can find something
    return Token.objects.create(user=world.users[User.Role.ADMIN]).key


@pytest.fixture
def wsgi_app(admin_token):
    """Django's WSGI handler on the test's own connection: a real handler closes the connection around each
    request (which would end the test's transaction). After `admin_token`: the test client its data is made
    with connects that signal again after each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(wsgi_app):
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema_and_never_fails(case, admin_token):
    # Each call in a savepoint rolled back after it: the world stays as built, and a failed statement cannot
    # poison the next calls' transaction.
    savepoint = transaction.savepoint()
    try:
        response = case.call(headers={"Authorization": f"Token {admin_token}"})
    finally:
        transaction.savepoint_rollback(savepoint)
    case.validate_response(response, checks=CHECKS)
