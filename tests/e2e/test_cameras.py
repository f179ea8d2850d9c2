"""Cameras alive on the wall (issue 12, item 4), in a real Chromium against the live server: a video system's
heartbeats (real HTTP to /api/camera-heartbeats/) keep two cameras online; one camera's heartbeats stop, the
timeout job runs, and the open wall turns that camera red without a reload."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from django.core.management import call_command

from geo.models import Camera
from tests.e2e.conftest import login, record, screenshot
from tests.factories import CameraFactory, CameraSystemFactory
from tests.world import world_build

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TOKEN = "wall-cam-token"


def heartbeat(url: str, online: list[str]) -> dict:
    request = urllib.request.Request(
        f"{url}/api/camera-heartbeats/",
        data=json.dumps({"online": online}).encode(),
        headers={"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def wall_page(browser, url: str):
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1920, "height": 1080})
    context.set_default_timeout(15_000)
    page = context.new_page()
    login(page, url, "wall")
    log = record(page)
    page.goto(f"{url}/wall/", wait_until="networkidle")
    page.wait_for_function("window.gridmgmtWall && window.gridmgmtWall.ready === true")
    page.wait_for_function("window.gridmgmtWall.connected === true")
    return context, page, log


def test_a_camera_whose_heartbeat_stops_turns_offline_on_the_open_wall(browser, live_server_url):
    world = world_build()
    CameraSystemFactory(code="HIK", token=TOKEN, district=world.district)
    kept = CameraFactory(code="CAM-KEPT", name="东门", cell=world.cells[0], status=Camera.Status.OFFLINE)
    lost = CameraFactory(code="CAM-LOST", name="西门", cell=world.cells[8], status=Camera.Status.OFFLINE)
    both = [kept.code, lost.code]
    assert [c["camera"] for c in heartbeat(live_server_url, both)["changed"]] == both

    context, page, log = wall_page(browser, live_server_url)
    for code in both:
        page.wait_for_selector(f'.gm-cam[data-camera="{code}"][data-online="true"]')
    assert page.locator("#cameras-online").text_content() == "2"
    assert page.locator("#cameras-offline").text_content() == "0"
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    # Only CAM-KEPT keeps beating; CAM-LOST's last heartbeat grows older than the (shortened) timeout.
    started = time.monotonic()
    while time.monotonic() - started < 2.5:
        heartbeat(live_server_url, [kept.code])
        time.sleep(0.4)
    call_command("cameras_timeout", after=2)

    page.wait_for_selector(f'.gm-cam[data-camera="{lost.code}"][data-online="false"]', timeout=10_000)
    assert page.locator(f'.gm-cam[data-camera="{kept.code}"]').get_attribute("data-online") == "true"
    page.wait_for_function("document.getElementById('cameras-offline').textContent === '1'")
    assert page.locator("#cameras-online").text_content() == "1"
    assert page.evaluate("window.__sameDocument === true")
    assert dict(Camera.objects.values_list("code", "status")) == {kept.code: "online", lost.code: "offline"}
    screenshot(page, "face_wall_camera_offline")

    # Heartbeats resume: the camera comes back on the wall.
    heartbeat(live_server_url, both)
    page.wait_for_selector(f'.gm-cam[data-camera="{lost.code}"][data-online="true"]', timeout=10_000)
    page.wait_for_function("document.getElementById('cameras-offline').textContent === '0'")
    assert log.outside() == [] and log.page_errors == [] and log.http_errors == []
    context.close()
