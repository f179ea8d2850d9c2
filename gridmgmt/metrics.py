"""Prometheus metrics of the domain (HTTP latency by view comes from django-prometheus's middleware).

Every process that does work registers here: the uvicorn workers and the `cases_escalate --loop` process.
With several processes on one host, set `PROMETHEUS_MULTIPROC_DIR` (an empty directory, cleared at boot) for
all of them: prometheus_client then sums their files and `/metrics` answers for the whole host (README,
"Observability"). Names follow Prometheus conventions: `_total` counters, `_seconds` histograms.
"""

from collections import Counter as Tally
from collections.abc import Callable, Sequence
from time import perf_counter

from prometheus_client import Counter, Gauge, Histogram

CASE_EVENTS = Counter("gridmgmt_case_events_total", "Case events committed, by type", ["type"])
REPORTS = Counter("gridmgmt_reports_total", "Reports (new cases) committed, by channel", ["source"])
NOTIFICATIONS = Counter("gridmgmt_notifications_total", "In-app notifications committed")
DELIVERY_ATTEMPTS = Counter(
    "gridmgmt_delivery_attempts_total",
    "Tries to send a notification outside the browser, by channel and outcome (sent, retry, failed)",
    ["channel", "outcome"],
)
# Label `task`, not `job`: Prometheus's own `job` label (the scrape job) would overwrite it.
JOB_RUNS = Counter("gridmgmt_job_runs_total", "Background job passes, by task and outcome", ["task", "outcome"])
JOB_SECONDS = Histogram("gridmgmt_job_seconds", "Duration of one background job pass", ["task"])
WS_CONNECTIONS = Gauge(
    "gridmgmt_ws_connections", "Open WebSocket connections on /ws/feed/", multiprocess_mode="livesum"
)
WS_FRAMES = Counter("gridmgmt_ws_frames_total", "Frames sent to WebSocket clients")
FEED_DELIVERY = Histogram(
    "gridmgmt_feed_delivery_seconds",
    "From a commit notice reaching a scope's feed to its frame being handed to the sockets (throttle + read)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)


def events_count(*, types: Sequence[str], report_sources: Sequence[str], notifications: int) -> None:
    """Count what one committed write stored (call it from transaction.on_commit, never before)."""
    for type_, n in Tally(types).items():
        CASE_EVENTS.labels(type=type_).inc(n)
    for source, n in Tally(report_sources).items():
        REPORTS.labels(source=source).inc(n)
    NOTIFICATIONS.inc(notifications)


def job_run(job: Callable, *, name: str):
    """Run one pass of a background job, timing it and counting its outcome; exceptions propagate."""
    started = perf_counter()
    try:
        result = job()
    except Exception:
        JOB_RUNS.labels(task=name, outcome="error").inc()
        raise
    finally:
        JOB_SECONDS.labels(task=name).observe(perf_counter() - started)
    JOB_RUNS.labels(task=name, outcome="ok").inc()
    return result
