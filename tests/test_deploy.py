"""deploy/ stays in step with the code: the environment file lists every variable the settings read, and
nginx's body cap admits the largest report the app accepts."""

import re
from pathlib import Path

from django.conf import settings

from gridmgmt.photos import MAX_BYTES, MAX_PHOTOS

ROOT = Path(__file__).resolve().parents[1]
READS = re.compile(r"""(?:os\.environ\.get|os\.environ\[|env_bool|env_list|_knob)\(?\s*["']([A-Z][A-Z0-9_]+)["']""")


def test_environment_file_lists_every_setting_read():
    read = set()
    for source in ("gridmgmt/settings.py", "realtime/conf.py"):
        read |= set(READS.findall((ROOT / source).read_text()))
    assert {"SECRET_KEY", "RT_BATCH_MS", "THROTTLE_LOGIN"} <= read  # the pattern still finds them
    listed = set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", (ROOT / "deploy/gridmgmt.env").read_text(), re.M))
    assert read - listed == set()


def test_nginx_body_cap_admits_the_largest_report():
    conf = (ROOT / "deploy/nginx/gridmgmt.conf").read_text()
    cap = int(re.search(r"client_max_body_size (\d+)m;", conf).group(1)) * 2**20
    assert cap >= MAX_BYTES * MAX_PHOTOS + settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert cap <= 2 * (MAX_BYTES * MAX_PHOTOS + settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def test_the_prune_timer_runs_the_retention_of_the_feed_log_and_the_positions():
    """deploy/systemd: the daily timer starts the service, whose command is realtime_prune — which deletes old
    feed rows and maintains the position partitions (both exercised in tests/realtime/test_tracking.py)."""
    unit = (ROOT / "deploy/systemd/gridmgmt-prune.service").read_text()
    timer = (ROOT / "deploy/systemd/gridmgmt-prune.timer").read_text()
    assert re.search(r"^ExecStart=\S+/python manage\.py realtime_prune --days \d+$", unit, re.M)
    assert re.search(r"^OnCalendar=\*-\*-\* \d\d:\d\d:\d\d$", timer, re.M)  # daily
    assert "WantedBy=gridmgmt.target" in timer
    command = (ROOT / "realtime/management/commands/realtime_prune.py").read_text()
    assert "DELETE FROM realtime_feedevent" in command and "partitions_maintain()" in command


def test_the_kpi_timer_keeps_the_summary_up_to_date():
    """deploy/systemd: every few minutes the KPI timer starts kpi_summarize (gridmgmt.kpi.kpi_summary_refresh,
    exercised in tests/gridmgmt/test_kpi_summary.py)."""
    unit = (ROOT / "deploy/systemd/gridmgmt-kpi.service").read_text()
    timer = (ROOT / "deploy/systemd/gridmgmt-kpi.timer").read_text()
    assert re.search(r"^ExecStart=\S+/python manage\.py kpi_summarize$", unit, re.M)
    assert re.search(r"^OnUnitActiveSec=\d+min$", timer, re.M)
    assert "WantedBy=gridmgmt.target" in timer
    command = (ROOT / "gridmgmt/management/commands/kpi_summarize.py").read_text()
    assert "kpi_summary_refresh(" in command
