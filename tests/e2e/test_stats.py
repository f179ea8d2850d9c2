"""/stats/ in Chromium at desk size (1600×900): tiles, trend and comparison charts, the table and the heat map
from the live server, offline, in Chinese; the export link asks /api/kpis/ for the same figures as Excel."""

from __future__ import annotations

import pytest

from gridmgmt import services
from gridmgmt.models import Case, User
from tests.e2e.conftest import login, record, screenshot
from tests.world import world_build

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_stats_page_at_desk_size(browser, live_server_url):
    w = world_build()
    for cell in (4, 4, 0):
        lon, lat = w.centre(cell)
        case, *_ = services.case_report(source=Case.Source.PATROL, category_code="E0404", lon=lon, lat=lat)
    services.case_file(case_id=case.pk, actor=w.users[User.Role.DISPATCHER])

    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1600, "height": 900})
    context.set_default_timeout(15_000)
    first = context.new_page()
    login(first, live_server_url, "shift_leader")
    first.close()  # the login lands on the desk: its requests are not this page's
    page = context.new_page()
    log = record(page)
    page.goto(f"{live_server_url}/stats/", wait_until="networkidle")
    page.wait_for_selector("#table tbody tr")
    page.wait_for_function("document.querySelectorAll('.leaflet-heatmap-layer').length === 1")
    assert page.locator("#tiles [data-key=received] b").inner_text() == "3"
    assert page.locator("#tiles [data-key=filed] b").inner_text() == "1"
    assert page.locator("#trend canvas").count() == 1 and page.locator("#compare canvas").count() == 1
    assert "按街道/镇" in page.locator("#table-title").inner_text()
    href = page.locator("#export-xlsx").get_attribute("href")
    assert href.startswith("/api/kpis/?") and "format=xlsx" in href and "group_by=street" in href
    # Nothing wider than the screen at desk size.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1600
    screenshot(page, "stats_1600x900")
    problems = log.problems()
    assert problems == {"outside": [], "failed": [], "http_errors": [], "console_errors": [], "page_errors": []}
    context.close()
