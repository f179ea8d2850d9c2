"""The inbox on the staff faces (issue 12 item 1, issue 10 item 2): a dispatch made through the API by a
dispatcher reaches the team member's phone — the task and a badge — within a second, without reload; a
send-back reaches the dispatcher's desk and wall badges the same way. Each face subscribes to its user's scope
on /ws/feed/ (realtime/PROTOCOL.md) through static/js/faces/inbox.js."""

from __future__ import annotations

import time

import pytest

from gridmgmt import services
from gridmgmt.models import Case, Notification, User
from tests.e2e.conftest import screenshot
from tests.e2e.test_faces import person
from tests.world import world_build

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

R = User.Role
LIVE_S = 1.0  # the acceptance bound: event → on screen


@pytest.fixture
def world():
    return world_build()


def filed(world) -> Case:
    lon, lat = world.centre()
    case, _ = services.case_report(source=Case.Source.PATROL, category_code=world.category.code, lon=lon, lat=lat)
    return services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER])


def live_face(context, url: str, scopes: int):
    """Open a face and wait until its feed holds `scopes` scopes (so what follows is live, not a snapshot)."""
    frames: list[str] = []
    page = context.new_page()
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    page.goto(url, wait_until="networkidle")
    page.wait_for_function("window.gridmgmtMap !== undefined")
    deadline = time.monotonic() + 10
    while sum('"subscribed"' in f for f in frames) < scopes and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert sum('"subscribed"' in f for f in frames) >= scopes, frames
    page.wait_for_load_state("networkidle")  # the inbox's list has been read
    return page


def post(page, path: str, body: dict) -> dict:
    """A POST through the page's own session (CSRF token from its cookie), as the faces make them."""
    return page.evaluate(
        """async ([path, body]) => {
            const csrf = (document.cookie.match(/(?:^|; )csrftoken=([^;]*)/) || [])[1] || "";
            const r = await fetch(path, {method: "POST", credentials: "same-origin",
                headers: {"Content-Type": "application/json", "X-CSRFToken": decodeURIComponent(csrf)},
                body: JSON.stringify(body)});
            return {status: r.status, data: await r.json()};
        }""",
        [path, body],
    )


def badge_within(page, n: int, seconds: float = LIVE_S) -> None:
    shown = f"(b => b && !b.hidden && b.textContent === '{n}')(document.getElementById('inbox-count'))"
    page.wait_for_function(shown, timeout=seconds * 1000)


def assert_badge_clear_of(page, selectors: list[str]) -> None:
    """The badge is on screen, readable, and covers no control of the bar."""
    box = page.locator("#inbox-count").bounding_box()
    view = page.viewport_size
    assert box and box["width"] >= 14 and box["height"] >= 14, box
    assert 0 <= box["x"] and box["x"] + box["width"] <= view["width"] and 0 <= box["y"], (box, view)
    for sel in selectors:
        for other in page.locator(sel).all():
            o = other.bounding_box()
            if not o:
                continue
            overlap = not (
                box["x"] + box["width"] <= o["x"]
                or o["x"] + o["width"] <= box["x"]
                or box["y"] + box["height"] <= o["y"]
                or o["y"] + o["height"] <= box["y"]
            )
            assert not overlap, (sel, box, o)


BAR_CONTROLS = [".gm-bar-home", ".gm-logout button", ".gm-lang button", ".gm-bar h1"]


def test_a_dispatch_reaches_the_members_phone_and_a_send_back_the_dispatchers_faces(browser, live_server_url, world):
    url = live_server_url
    case = filed(world)

    phone = person(browser, url, world, user="patrol", viewport=(390, 844))
    phone_page = live_face(phone, f"{url}/patrol/", scopes=2)  # team:<id> and user:<id>
    phone_page.click("#tab-report")  # a tap: the page may now beep and vibrate
    assert phone_page.locator("#inbox-count").is_hidden()
    assert phone_page.locator(f'#tasks li[data-case="{case.code}"]').count() == 0

    desk = person(browser, url, world, user="dispatcher", viewport=(1600, 900))
    desk_page = live_face(desk, f"{url}/dispatch/", scopes=1)
    wall_page = live_face(desk, f"{url}/wall/", scopes=2)  # the same dispatcher's second face

    # (a) The dispatcher dispatches through the API: task and badge on the phone within a second.
    answer = post(desk_page, f"/api/cases/{case.pk}/dispatch/", {"team": world.team.pk})
    assert answer["status"] == 200, answer
    sent = time.monotonic()
    phone_page.wait_for_selector(f'#tasks li[data-case="{case.code}"]', state="attached", timeout=LIVE_S * 1000)
    badge_within(phone_page, 1)
    assert time.monotonic() - sent <= LIVE_S + 0.2  # both, not each
    assert phone_page.locator("#inbox").get_attribute("data-beeps") == "1"
    assert_badge_clear_of(phone_page, BAR_CONTROLS)
    screenshot(phone_page, "inbox_patrol_badge")
    phone_page.click("#inbox-toggle")
    line = phone_page.locator(f'#inbox-list li[data-case="{case.code}"]')
    assert line.get_attribute("data-read") == "false"
    assert "新任务" in line.inner_text()
    screenshot(phone_page, "inbox_patrol_list")

    # Clicking the line marks it read and opens the task in the list.
    line.locator("a").click()
    phone_page.wait_for_selector("#inbox-count", state="hidden")
    phone_page.wait_for_selector(f'#tasks li[data-case="{case.code}"][aria-current="true"]')
    assert phone_page.locator("#panel-tasks").is_visible()
    screenshot(phone_page, "inbox_patrol_task")
    note = Notification.objects.get(case=case, user=world.users[R.PATROL])
    assert note.read_at is not None

    # (b) The member sends it back: the dispatcher's desk and wall badges within a second.
    answer = post(phone_page, f"/api/cases/{case.pk}/send-back/", {"reason": "不归我队管"})
    assert answer["status"] == 200, answer
    sent = time.monotonic()
    badge_within(desk_page, 1)
    badge_within(wall_page, 1)
    assert time.monotonic() - sent <= LIVE_S + 0.2
    assert_badge_clear_of(desk_page, BAR_CONTROLS)
    screenshot(desk_page, "inbox_dispatch_badge")
    screenshot(wall_page, "inbox_wall_badge")
    desk_page.click("#inbox-toggle")
    screenshot(desk_page, "inbox_dispatch_list")
    desk_page.locator(f'#inbox-list li[data-case="{case.code}"] a').click()
    desk_page.wait_for_selector("#inbox-count", state="hidden")
    desk_page.wait_for_function(f"document.getElementById('d-title').textContent.includes('{case.code}')")

    # Read on the desk: the wall's badge shows it at its next read of the list (marking read sends no feed row).
    wall_page.reload(wait_until="networkidle")
    wall_page.wait_for_function("document.getElementById('inbox-toggle').dataset.unread === '0'")
    assert wall_page.locator("#inbox-count").is_hidden()


def test_mark_all_read_and_english(browser, live_server_url, world):
    url = live_server_url
    case = filed(world)
    services.case_dispatch(case_id=case.pk, actor=world.users[R.DISPATCHER], team_id=world.team.pk)
    phone = person(browser, url, world, user="patrol", viewport=(390, 844))
    phone.add_cookies([{"name": "django_language", "value": "en", "url": url}])
    page = live_face(phone, f"{url}/patrol/", scopes=2)
    badge_within(page, 1, seconds=5)
    assert page.locator("#inbox-toggle").get_attribute("aria-label") == "1 unread notifications"
    page.click("#inbox-toggle")
    assert page.locator("#inbox-read-all").inner_text() == "Mark all read"
    screenshot(page, "inbox_patrol_list_en")
    page.click("#inbox-read-all")
    page.wait_for_selector("#inbox-count", state="hidden")
    assert page.locator('#inbox-list li[data-read="false"]').count() == 0
    assert not Notification.objects.filter(user=world.users[R.PATROL], read_at__isnull=True).exists()


def test_a_camera_offline_notice_reaches_the_desk_live_and_links_nowhere(browser, live_server_url, world, settings):
    from datetime import timedelta

    from django.utils import timezone

    from geo.models import Camera
    from realtime.services import cameras_offline_timeout
    from tests.factories import CameraFactory

    settings.CAMERA_OFFLINE_AFTER = 180
    url = live_server_url
    cameras = [
        CameraFactory(code=f"CAM-{i}", name=f"路口{i}", cell=world.cells[i], district=world.district) for i in (1, 2)
    ]
    Camera.objects.filter(pk__in=[c.pk for c in cameras]).update(
        status=Camera.Status.ONLINE, last_seen_at=timezone.now() - timedelta(minutes=10)
    )
    desk = person(browser, url, world, user="dispatcher", viewport=(1600, 900))
    page = live_face(desk, f"{url}/dispatch/", scopes=1)
    before = page.url

    assert cameras_offline_timeout().offline == ["CAM-1", "CAM-2"]
    badge_within(page, 1)
    page.click("#inbox-toggle")
    line = page.locator('#inbox-list li[data-kind="cameras_offline"]')
    assert line.get_attribute("data-read") == "false" and line.locator("a").count() == 0
    assert "2 个摄像头离线" in line.inner_text()
    assert "CAM-1 路口1、CAM-2 路口2" in line.inner_text()  # the live row carries the text
    screenshot(page, "inbox_dispatch_cameras_offline")
    line.locator("button").click()
    page.wait_for_selector("#inbox-count", state="hidden")
    assert page.url == before  # nothing to open
    assert page.locator('#inbox-list li[data-kind="cameras_offline"]').get_attribute("data-read") == "true"
    assert Notification.objects.get(user=world.users[R.DISPATCHER]).read_at is not None
