"""The desk's queue in a real Chromium (1600×900) with more cases than one page: a case found by a fragment of
its description and by its code, "overdue first" with the oldest red case on top, and a new report in the
queue within a second, without a reload (the feed, not polling)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from gridmgmt import services
from gridmgmt.models import Case
from tests.e2e.conftest import screenshot
from tests.e2e.test_faces import NO_PROBLEMS, clean, open_face, person
from tests.factories import CaseFactory
from tests.world import world_build

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAGE = 50  # the desk's page (static/js/faces/dispatch.js QUEUE_PAGE)


def test_desk_finds_orders_and_follows_the_queue(browser, live_server_url):
    world = world_build()
    now = timezone.now()
    common = {"category": world.category, "district": world.district, "status": Case.Status.HANDLING}
    cases = [
        CaseFactory.build(
            code=f"20261127{i:07d}",
            cell=world.cells[i % 9],
            point=world.cells[i % 9].center,
            deadline_at=now + timedelta(hours=1 + i),
            reported_at=now - timedelta(hours=i),
            description=f"第{i}号 路边堆放杂物",
            **common,
        )
        for i in range(PAGE + 10)
    ]
    Case.objects.bulk_create(cases)  # one statement: 60 saves take seconds
    # Two red cases deep in the newest-first order; the one overdue longest must lead "overdue first".
    oldest_red = CaseFactory(
        code="202611200000001",
        cell=world.cells[0],
        point=world.cells[0].center,
        deadline_at=now - timedelta(days=3),
        reported_at=now - timedelta(days=5),
        description="桥下井盖缺失 多日无人处理",
        **common,
    )
    CaseFactory(
        code="202611250000002",
        cell=world.cells[1],
        point=world.cells[1].center,
        deadline_at=now - timedelta(hours=2),
        reported_at=now - timedelta(days=2),
        **common,
    )
    desk = person(browser, live_server_url, world, user="dispatcher", viewport=(1600, 900))
    page, log = open_face(desk, f"{live_server_url}/dispatch/")
    page.click('#queues [role=tab][data-label="处置中"]')
    page.wait_for_function(f"document.querySelectorAll('#queue li[data-case]').length === {PAGE}")
    assert page.locator('#queues [data-label="处置中"] [data-count]').inner_text() == str(len(cases) + 2)
    assert "共 62 件" in page.locator("#queue-count").inner_text()
    assert page.locator("#queue-more").is_visible()  # more than one page: "load more" says how many

    # A fragment of a description on the second page, then a code: the server searches the whole queue.
    page.fill("#q", "第57号")
    page.wait_for_function("document.querySelectorAll('#queue li[data-case]').length === 1")
    assert page.locator("#queue li[data-case]").get_attribute("data-case") == cases[57].code
    page.fill("#q", "井盖缺失")
    page.wait_for_selector(f'#queue li[data-case="{oldest_red.code}"]')
    page.fill("#q", cases[55].code)
    page.wait_for_function(
        "[...document.querySelectorAll('#queue li[data-case]')].map((li) => li.dataset.case).join() === "
        f"'{cases[55].code}'"
    )
    page.fill("#q", "")
    page.wait_for_function(f"document.querySelectorAll('#queue li[data-case]').length === {PAGE}")

    # "Overdue first": red on top, the longest overdue first.
    page.click("#overdue-first")
    page.wait_for_function(f"document.querySelector('#queue li[data-case]').dataset.case === '{oldest_red.code}'")
    assert page.locator("#queue li[data-case]").nth(1).get_attribute("data-light") == "red"
    assert page.locator("#overdue-first").get_attribute("aria-pressed") == "true"
    screenshot(page, "desk_queue_overdue_first")

    # A new report appears in the queue within a second, without a reload.
    page.click('#queues [role=tab][data-label="全部在办"]')
    page.wait_for_function(f"document.querySelectorAll('#queue li[data-case]').length === {PAGE}")
    # The desk's scope is live (its snapshot taken): what follows comes from the feed.
    page.wait_for_function(
        "Object.keys(sessionStorage).some((k) => k.startsWith('gridmgmt.rt.last.') && !k.includes('user:'))"
    )
    page.evaluate("window.deskNotReloaded = true")
    lon, lat = world.centre(4)
    new, _ = services.case_report(
        source=Case.Source.HOTLINE, category_code="E0404", lon=lon, lat=lat, description="刚来的热线工单"
    )
    # Within 1 s of the commit (the wait's own timeout): feed frame, one read of the case, drawn.
    page.wait_for_selector(f'#queue li[data-case="{new.code}"][data-new="true"]', timeout=1_000)
    assert page.evaluate("window.deskNotReloaded === true")  # the same page: no reload
    page.wait_for_function("document.querySelector('#queues [data-label=\"待立案\"] [data-count]').textContent === '1'")
    assert clean(log) == NO_PROBLEMS
    desk.close()
