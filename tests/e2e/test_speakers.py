"""Loudspeakers from the desk (issue 12, item 5), in a real Chromium at desk size against the live server: a
dispatcher opens a case, the speaker beside its camera is on the form with the category's preset chosen, one
click speaks it, the desk shows the outcome and the timeline the call — and the speaker (a real HTTP receiver on
127.0.0.1) heard the literal words."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from django.contrib.gis.geos import Point

from geo.models import Speaker
from geo.services import speaker_locate
from gridmgmt import services
from gridmgmt.models import Case, Category, User
from tests.e2e.conftest import login, record, screenshot
from tests.world import world_build

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PRESET = "请立即驶离,违停将被处罚"
SHOTS = Path("/tmp/speaker-shots")


def test_the_desk_sends_the_preset_to_the_cases_speakers(browser, live_server_url, receivers):
    world = world_build()
    Category.objects.filter(pk=world.category.pk).update(speaker_preset=PRESET)
    (receiver,) = receivers(1)
    c = world.cells[4].center
    speaker = Speaker(code="SPK-E2E", name="东门喇叭", location=Point(c.x + 0.00005, c.y, srid=4326))
    speaker.url = f"{receiver.url}/speakers/SPK-E2E"
    speaker_locate(speaker=speaker).save()
    lon, lat = world.centre(4)
    case, _ = services.case_report(
        source=Case.Source.CAMERA,
        category_code=world.category.code,
        lon=lon,
        lat=lat,
        description="路口违停",
        reporter=world.users[User.Role.DISPATCHER],
    )

    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1600, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    login(page, live_server_url, "dispatcher")
    log = record(page)
    page.goto(f"{live_server_url}/dispatch/?case={case.pk}", wait_until="networkidle")

    page.wait_for_selector("#d-speakers-box:not([hidden]) #sp-form")
    assert page.locator("#sp-preset").input_value() == world.category.code  # the case's category preset
    assert page.locator("#sp-text").input_value() == PRESET
    assert "(1 个)" in page.locator("#sp-target option").first.text_content()
    page.wait_for_selector('.gm-spk[data-speaker="SPK-E2E"]', state="attached")
    page.fill("#sp-repeat", "2")
    page.locator("#d-speakers-box").scroll_into_view_if_needed()
    page.click("#sp-send")
    page.wait_for_selector('#sp-msg[data-kind="ok"]')
    assert page.locator("#sp-msg").text_content() == "已送达 1 个喇叭"
    assert page.locator('#sp-results li[data-speaker="SPK-E2E"][data-ok="true"]').count() == 1
    page.wait_for_selector('#d-timeline li[data-type="speaker_called"]')
    assert PRESET in page.locator('#d-timeline li[data-type="speaker_called"]').text_content()

    (heard,) = receiver.heard
    assert json.loads(heard.body) == {"text": PRESET, "repeat": 2, "speaker": "SPK-E2E"}
    path = screenshot(page, "face_dispatch_speaker_call")
    SHOTS.mkdir(exist_ok=True)
    shutil.copy(path, SHOTS / "e2e-desk-speaker-call.png")
    assert log.outside() == [] and log.page_errors == [] and log.http_errors == [] and log.console_errors == []
    context.close()
