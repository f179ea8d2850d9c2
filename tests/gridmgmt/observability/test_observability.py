"""/healthz, /readyz, /metrics and the request log context, against the real database and Redis."""

import io
import json
import logging

import pytest
from django.db.migrations.recorder import MigrationRecorder
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families
from pythonjsonlogger.json import JsonFormatter

from gridmgmt.models import User
from gridmgmt.observability.requestlog import RequestContextFilter
from tests.gridmgmt.api.conftest import api_world_build, report

R = User.Role


@pytest.fixture
def world(db):
    return api_world_build()


def test_healthz_answers_without_touching_the_database(client):
    response = client.get("/healthz")  # no `db` fixture: any query would raise
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert "no-cache" in response["Cache-Control"]


def test_readyz_is_ready_with_database_migrations_redis_and_disk(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "ready": True,
        "checks": {"database": None, "migrations": None, "redis": None, "media_disk": None},
    }


def test_readyz_503_when_redis_is_unreachable(client, db, settings):
    # A real connection to a port nobody listens on, not a mock.
    with override_settings(CACHES={"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    assert body["checks"]["database"] is None
    assert body["checks"]["redis"].startswith("ConnectionError")


def test_readyz_503_when_a_migration_is_not_applied(client, db):
    latest = MigrationRecorder.Migration.objects.filter(app="gridmgmt").order_by("-id").first()
    latest.delete()  # as if the code was deployed before `migrate` ran (rolled back with the test)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "1 migrations not applied"


def test_readyz_503_when_the_media_disk_is_nearly_full(client, db, settings):
    settings.READY_MEDIA_FREE_BYTES = 2**62
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "MiB free for media" in response.json()["checks"]["media_disk"]


def _sample(text: str, name: str, labels: dict) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_metrics_count_reports_events_and_requests_by_view(world, client, django_capture_on_commit_callbacks):
    before = client.get("/metrics").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        report(world, R.PATROL)
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert _sample(text, "gridmgmt_reports_total", {"source": "patrol"}) == (
        _sample(before, "gridmgmt_reports_total", {"source": "patrol"}) + 1
    )
    assert _sample(text, "gridmgmt_case_events_total", {"type": "reported"}) == (
        _sample(before, "gridmgmt_case_events_total", {"type": "reported"}) + 1
    )
    created = {"view": "api:case-list", "method": "POST"}
    assert _sample(text, "django_http_requests_latency_seconds_by_view_method_count", created) >= 1


def test_metrics_are_not_found_for_other_addresses_unless_the_token_is_given(client, db, settings):
    settings.METRICS_TOKEN = "s3cret-scraper-token"
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 404
    wrong = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 404
    right = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer s3cret-scraper-token")
    assert right.status_code == 200
    settings.METRICS_ALLOWED_NETWORKS = ["10.1.0.0/16"]
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []
        self.addFilter(RequestContextFilter())

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def access_records():
    logger = logging.getLogger("gridmgmt.request")
    handler, level = _Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_each_request_gets_an_id_echoed_and_logged_with_the_user(world, access_records, settings):
    response = world.client(R.DISPATCHER).get("/api/cases/?tracking_token=should-not-be-logged")
    assert response.status_code == 200
    request_id = response["X-Request-ID"]
    assert len(request_id) == 32
    (record,) = [r for r in access_records if r.path == "/api/cases/"]
    assert record.request_id == request_id
    assert record.user_id == world.users[R.DISPATCHER].pk
    assert (record.method, record.status, record.route) == ("GET", 200, "api/cases/$")
    options = {k: v for k, v in settings.LOGGING["formatters"]["json"].items() if k != "()"}
    options["fmt"] = options.pop("format")  # as logging.config.dictConfig passes it
    line = json.loads(JsonFormatter(**options).format(record))
    assert line["level"] == "INFO"
    assert line["logger"] == "gridmgmt.request"
    assert line["message"] == "GET /api/cases/ 200"
    assert line["request_id"] == request_id
    assert line["user_id"] == world.users[R.DISPATCHER].pk
    assert {"time", "ms", "route"} <= line.keys()
    assert "should-not-be-logged" not in json.dumps(line)


@pytest.mark.parametrize(
    ("given", "kept"), [("edge-7f3a9c21d4", True), ("short", False), ("a b\nInjected: x", False), ("x" * 65, False)]
)
def test_a_proxys_request_id_is_kept_only_when_sane(client, db, given, kept):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=given)
    assert (response["X-Request-ID"] == given) is kept
    assert len(response["X-Request-ID"]) >= 8


def test_an_anonymous_request_logs_no_user(client, db, access_records):
    client.get("/healthz")
    (record,) = access_records
    assert record.user_id is None
    assert record.route == "healthz"


def test_each_background_pass_is_counted_by_task(db):
    from django.core.management import call_command
    from prometheus_client import REGISTRY

    def runs(task):
        return REGISTRY.get_sample_value("gridmgmt_job_runs_total", {"task": task, "outcome": "ok"}) or 0

    before = {task: runs(task) for task in ("cases_escalate", "cameras_offline_timeout", "deliveries_send")}
    call_command("cases_escalate", stdout=io.StringIO())
    assert {task: runs(task) - n for task, n in before.items()} == {
        "cases_escalate": 1,
        "cameras_offline_timeout": 1,
        "deliveries_send": 1,
    }
