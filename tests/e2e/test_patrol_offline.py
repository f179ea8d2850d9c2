"""Issue 10's acceptance for the patrol phone (390×844, real Chromium, real server): a dispatch made at the
desk shows on the member's phone within a second without reload, with its description and photo; the
member accepts and handles it with two photos while offline; the phone is reloaded offline from the
home-screen URL and works (the service worker's cache); back online, exactly one event per action exists
and the handling time recorded is the time it was done offline, not the time it was sent — even when the
first answer to the handling was lost and the phone sent it again."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from gridmgmt import services
from gridmgmt.models import Case, CaseEvent, User
from tests.e2e.conftest import screenshot
from tests.e2e.test_faces import jpeg_file, person
from tests.e2e.test_inbox import LIVE_S, live_face
from tests.world import jpeg, world_build

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
R = User.Role
E = CaseEvent.Type
OFFLINE_S = 1  # how long the phone stays offline after handling, before the network comes back


@pytest.fixture
def world():
    return world_build()


def desk_post(desk, url: str, path: str, **kw) -> dict:
    token = next(c["value"] for c in desk.cookies() if c["name"] == "csrftoken")
    answer = desk.request.post(f"{url}{path}", headers={"X-CSRFToken": token, "Referer": f"{url}/dispatch/"}, **kw)
    assert answer.status in (200, 201), answer.text()
    return answer.json()


def test_dispatch_live_then_accept_and_handle_offline_reload_offline_and_sync(browser, live_server_url, world):
    url = live_server_url
    desk = person(browser, url, world, user="dispatcher", viewport=(1600, 900))
    lon, lat = world.centre(2)
    photo = jpeg_file("before.jpg")
    photo["buffer"] = jpeg("before.jpg", size=(640, 480)).read()
    body = desk_post(
        desk,
        url,
        "/api/cases/",
        multipart={
            "category": world.category.code,
            "lon": str(lon),
            "lat": str(lat),
            "description": "人行道上堆了十几袋装修垃圾,挡住盲道",
            "photos": photo,
        },
    )
    case = services.case_file(case_id=body["id"], actor=world.users[R.DISPATCHER])

    # The member's phone, live on its team's and user's scopes; the service worker holds the page's files.
    phone = person(browser, url, world, user="patrol", viewport=(390, 844), at_cell=2)
    page = live_face(phone, f"{url}/patrol/", scopes=2)
    page.wait_for_function(
        """async () => {
            if (!navigator.serviceWorker.controller) return false;
            const names = await caches.keys();
            if (names.length !== 1) return false;
            const cache = await caches.open(names[0]);
            return !!(await cache.match("/patrol/")) && !!(await cache.match("/static/js/faces/patrol.js"))
                && !!(await cache.match("/static/js/faces/common.js"));
        }""",
        polling=100,
    )
    page.click("#tab-tasks")

    # (1) Dispatched at the desk: on the phone within a second, no reload; its description and photo.
    desk_post(desk, url, f"/api/cases/{case.pk}/dispatch/", data={"team": world.team.pk})
    sent = time.monotonic()
    line = page.locator(f'#tasks li[data-case="{case.code}"]')
    line.wait_for(timeout=LIVE_S * 1000)
    assert time.monotonic() - sent <= LIVE_S + 0.2
    line.locator("button.gm-task-open").click()
    page.wait_for_selector("#task-timeline ol li")
    assert page.locator("#task-description").inner_text() == "人行道上堆了十几袋装修垃圾,挡住盲道"
    page.wait_for_function("(i => i && i.naturalWidth === 640)(document.querySelector('#task .gm-thumb-open img'))")

    # (2) Offline: accept, then handle with two photos; the phone offers 处置反馈 after 签收 by itself.
    phone.set_offline(True)
    page.wait_for_selector('#net[data-online="false"]')
    accepted_at = timezone.now()
    page.click('#task-actions button[data-action="accept"]')
    page.wait_for_selector('#task-actions button[data-action="handle"]')
    page.click('#task-actions button[data-action="handle"]')
    form = page.locator('#task-form form[data-action="handle"]')
    big = jpeg_file("a2.jpg", (200, 30, 30))
    big["buffer"] = jpeg("a2.jpg", size=(3200, 1800), color=(200, 30, 30)).read()
    two = [jpeg_file("a1.jpg", (30, 30, 200)), big]
    form.get_by_label("处置后照片").set_input_files(two)
    form.get_by_label("说明").fill("已清运,盲道恢复通行")
    handled_at = timezone.now()
    form.locator("button[type=submit]").click()
    page.wait_for_function("document.querySelectorAll('#queue li[data-state=queued]').length === 2")
    assert page.locator("#queue-count").inner_text() == "2"
    # The photos wait on the phone already shrunk: the 3200×1800 one to 2,560 px on its long edge.
    sizes = page.evaluate(
        """() => new Promise((resolve) => {
            const req = indexedDB.open("gridmgmt-faces", 1);
            req.onsuccess = () => {
                const all = req.result.transaction("queue").objectStore("queue").getAll();
                all.onsuccess = async () => {
                    const entry = all.result.find((e) => e.url.endsWith("/handle/"));
                    const bitmaps = await Promise.all(entry.files.map((f) => createImageBitmap(f.blob)));
                    resolve(bitmaps.map((b) => [b.width, b.height]));
                };
            };
        })"""
    )
    assert sizes == [[96, 64], [2560, 1440]]

    # (3) Reloaded offline from the home-screen URL (the manifest's start_url): the page, its queue and the
    # task as last read all come back; a second 签收 on the same case is not queued twice.
    page.goto(f"{url}/patrol/", wait_until="load")
    page.wait_for_function("window.gridmgmtMap !== undefined")
    page.wait_for_selector('#net[data-online="false"]')
    page.click("#tab-queue")
    page.wait_for_function("document.querySelectorAll('#queue li[data-state=queued]').length === 2")
    queue = page.locator("#queue").inner_text()
    assert "签收 · " + case.code in queue and "处置反馈 · " + case.code in queue, queue
    assert "等待发送" in queue and "位置 " in queue, queue
    screenshot(page, "patrol_offline_queue")
    page.click("#tab-tasks")
    page.locator(f'#tasks li[data-case="{case.code}"] button.gm-task-open').click()
    page.wait_for_selector('#task-actions button[data-action="handle"]')
    assert page.locator("#tasks-msg").inner_text().startswith("当前离线")
    assert page.locator("#task-description").inner_text() == "人行道上堆了十几袋装修垃圾,挡住盲道"
    assert page.locator("#task-waiting").inner_text() == "已在本机完成、等待发送:签收 · 处置反馈"
    page.click('#task-actions button[data-action="handle"]')
    page.locator('#task-form form[data-action="handle"]').get_by_label("处置后照片").set_input_files(two[:1])
    page.locator('#task-form form[data-action="handle"] button[type=submit]').click()
    page.wait_for_selector('#task-msg:has-text("无需再点")')  # a second 处置反馈 of this case: not queued twice
    assert page.locator("#queue li[data-state=queued]").count() == 2
    assert page.locator("#task-form").is_hidden()
    page.locator("#task").scroll_into_view_if_needed()
    page.evaluate("document.getElementById('task').scrollIntoView({block: 'start'})")
    screenshot(page, "patrol_offline_task")
    assert CaseEvent.objects.filter(case=case, type__in=[E.ACCEPTED, E.HANDLED]).count() == 0

    # (4) Back online after a while: both sent, each once, and the handling counts when it was done.
    page.wait_for_timeout(OFFLINE_S * 1000)
    synced_from = timezone.now()
    # The handling reaches the server but its answer is lost: the retry is answered as the first, not refused.
    lost = {"n": 0}

    def lose_first_answer(route):
        if lost["n"] == 0:
            lost["n"] += 1
            route.fetch()  # the server takes it …
            route.abort()  # … and the phone never hears back
        else:
            route.continue_()

    page.route(f"**/api/cases/{case.pk}/handle/", lose_first_answer)
    phone.set_offline(False)
    page.click("#tab-queue")
    page.wait_for_function("document.querySelectorAll('#queue li[data-state=sent]').length === 2", timeout=20_000)
    assert page.locator("#queue li[data-state=failed]").count() == 0
    assert lost["n"] == 1
    screenshot(page, "patrol_offline_synced")
    events = list(CaseEvent.objects.filter(case=case).order_by("id").values_list("type", "at", "recorded_at"))
    assert [e[0] for e in events] == [E.REPORTED, E.FILED, E.DISPATCHED, E.ACCEPTED, E.HANDLED]
    (_, accepted, accepted_recorded), (_, handled, handled_recorded) = events[3:]
    assert accepted_at - timedelta(seconds=1) <= accepted <= accepted_at + timedelta(seconds=1)
    assert handled_at - timedelta(seconds=1) <= handled <= handled_at + timedelta(seconds=1)
    assert accepted_recorded >= synced_from and handled_recorded >= synced_from
    case.refresh_from_db()
    assert case.status == Case.Status.HANDLED
    assert sorted(case.photos.values_list("kind", "width")) == [("after", 96), ("after", 2560), ("before", 640)]
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    phone.close()
    desk.close()
