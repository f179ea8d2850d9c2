"""What operations watch: health and readiness (health.py), per-request log context (requestlog.py), the
/healthz, /readyz and /metrics endpoints (views.py). The domain's metrics are declared in gridmgmt.metrics."""
