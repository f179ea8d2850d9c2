"""The resident's loop on a 390×844 phone (issue 12, item 3): submit a report and see the case number
without scrolling, find it again under "my reports" after a reload, follow the tracking page (closing words,
after-photo, map on the case, refresh) once staff close it through the services, and rate with the token the
device kept. Screenshots: tests/e2e/screenshots/resident_*.png."""

from __future__ import annotations

import os

import pytest

from gridmgmt import services
from gridmgmt.models import Case
from tests.e2e.conftest import ROOT, record, screenshot
from tests.e2e.test_faces import NO_PROBLEMS, clean, jpeg_file
from tests.factories import CaseFactory
from tests.world import jpeg, world_build

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def world():
    return world_build()


def in_viewport(page, selector: str) -> bool:
    """The element is wholly inside the visual viewport as the page stands (no scrolling by the test)."""
    return page.eval_on_selector(
        selector,
        """(n) => { const r = n.getBoundingClientRect();
                   return r.height > 0 && r.top >= 0 && r.left >= 0 &&
                          r.bottom <= window.innerHeight && r.right <= window.innerWidth; }""",
    )


def close_through_services(case: Case, world) -> Case:
    """From filed to closed, as the desk and the phone would (dispatch, accept, handle with an after-photo,
    check, close with a hotline reply that must stay private)."""
    u = world.users
    services.case_dispatch(case_id=case.pk, actor=u["dispatcher"], team_id=world.team.pk)
    services.case_accept(case_id=case.pk, actor=u["patrol"])
    services.case_handle(case_id=case.pk, actor=u["patrol"], note="已清理", photos=[jpeg("after.jpg")])
    services.case_check(case_id=case.pk, actor=u["inspector"], passed=True)
    return services.case_close(case_id=case.pk, actor=u["shift_leader"], hotline_reply="内部答复,不公开")


def test_resident_loop_on_a_phone(browser, live_server_url, world, settings):
    url = live_server_url
    # The after-photo saved here through the services is served by the live server: same media directory.
    settings.MEDIA_ROOT = os.environ.get("MEDIA_ROOT") or ROOT / "var" / "media"
    lon, lat = world.centre(4)
    context = browser.new_context(
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        geolocation={"latitude": lat, "longitude": lon, "accuracy": 8},
        permissions=["geolocation", "clipboard-read", "clipboard-write"],
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    log = record(page)
    page.goto(f"{url}/report/", wait_until="networkidle")
    page.wait_for_function("window.gridmgmtMap !== undefined")
    assert page.locator("#mine").is_hidden()  # nothing reported from this device yet
    screenshot(page, "resident_report_before")

    page.set_input_files("#photo", jpeg_file())
    page.click("#locate")
    page.wait_for_function("document.getElementById('loc-status').textContent.includes('手机定位')")
    page.select_option("#category", "E0404")
    page.fill("#description", "人行道上堆满了建筑垃圾")
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])")
    case = Case.objects.get(source=Case.Source.RESIDENT)

    # The result is on screen without the resident scrolling: number, the words about the link, the buttons.
    assert page.locator("#result-code").inner_text() == case.code
    for selector in ("#result-code", "#result-copy", "#result-share"):
        assert in_viewport(page, selector), selector
    assert page.evaluate("document.activeElement.id") == "result"
    assert "评价" in page.locator("#result .gm-keep").inner_text()  # keep this link to rate later
    link = page.locator("#result-link").input_value()
    assert link.startswith(f"{url}/report/track/{case.code}?token=")
    assert page.locator("#report-form").is_hidden()
    # Copy puts the link (with its token) on the clipboard and says so under the buttons.
    page.click("#result-copy")
    page.wait_for_selector('#result .gm-msg:has-text("已复制")')
    assert page.evaluate("navigator.clipboard.readText()") == link
    screenshot(page, "resident_report_done")

    # The device remembers it: after a reload, "my reports" lists it with its category.
    page.reload(wait_until="networkidle")
    item = page.locator(f'#mine-list li[data-case="{case.code}"]')
    assert item.is_visible() and "乱堆物堆料" in item.inner_text()
    assert page.locator("#mine-jump").is_visible() and in_viewport(page, "#mine-jump")  # a way down to it
    screenshot(page, "resident_report_mine")
    stored = page.evaluate(f"localStorage.getItem('gm-track-{case.code}')")
    assert stored and link.endswith(stored)

    # The tracking page, reached from "my reports", once filed: a countdown to the promised deadline.
    services.case_file(case_id=case.pk, actor=world.users["dispatcher"])
    item.locator("a").click()
    page.wait_for_url(f"**/report/track/{case.code}")
    page.wait_for_selector("#facts:not([hidden])")
    assert "剩余" in page.locator("#due").inner_text() or "超时" in page.locator("#due").inner_text()
    assert page.locator("#feedback").is_hidden()
    # The map is on the case's cell centre, zoomed in.
    centre = case.cell.center
    view = page.evaluate(
        "(() => { const c = gridmgmtMap.getCenter(); return [c.lng, c.lat, gridmgmtMap.getZoom()]; })()"
    )
    assert abs(view[0] - centre.x) < 1e-4 and abs(view[1] - centre.y) < 1e-4 and view[2] >= 16

    # Staff close it; the page refreshes itself (a poll every 20 s while visible, and when shown again).
    close_through_services(case, world)
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    page.wait_for_selector("#feedback:not([hidden])")
    assert page.locator("#status").inner_text() == "已结案"
    reply = page.locator("#reply").inner_text()
    assert "办结" in reply and "内部答复" not in page.content()  # the hotline reply is not public
    after = page.locator('#photos figure[data-kind="after"] img')
    after.wait_for()
    page.wait_for_function("document.querySelector('#photos figure[data-kind=\"after\"] img').naturalWidth > 0")
    screenshot(page, "resident_track_closed")

    # Messages appear beside the buttons that caused them.
    page.click("#rate")
    assert page.locator("#feedback-msg").inner_text() == "请选择 1–5 星"
    assert in_viewport(page, "#feedback-msg") and in_viewport(page, "#rate")
    page.locator('.gm-star[data-score="4"]').click()
    page.fill("#feedback-note", "处理得很快")
    page.click("#rate")
    page.wait_for_selector('#feedback-done:has-text("感谢")')
    assert in_viewport(page, "#feedback-done")
    assert page.locator("#feedback").is_hidden()
    assert page.locator("#satisfaction").inner_text() == "★★★★ 4/5"
    case.refresh_from_db()
    assert case.satisfaction == 4
    screenshot(page, "resident_track_rated")

    assert clean(log) == NO_PROBLEMS
    context.close()


@pytest.mark.parametrize("path", ["/report/", "/report/track/20260101-0000001"])
def test_phone_pages_allow_pinch_zoom(browser, live_server_url, world, path):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{live_server_url}{path}", wait_until="networkidle")
    contents = page.eval_on_selector_all('meta[name="viewport"]', "ns => ns.map((n) => n.content)")
    assert len(contents) == 1
    assert "user-scalable=no" not in contents[0].replace(" ", "") and "maximum-scale" not in contents[0]
    context.close()


def test_english_phone_sees_english_category_names(browser, live_server_url, world):
    from gridmgmt.models import Category

    Category.objects.filter(code="E0404").update(name_en="Piled materials", plain_name="路边乱堆东西")
    Category.objects.filter(code="E04").update(name_en="Street order")
    case = CaseFactory(code="202601010000009", cell=world.cells[4], category=Category.objects.get(code="E0404"))
    context = browser.new_context(locale="en-GB", viewport=PHONE, is_mobile=True, has_touch=True)
    context.add_cookies([{"name": "django_language", "value": "en", "url": live_server_url}])
    page = context.new_page()
    page.goto(f"{live_server_url}/report/", wait_until="networkidle")
    assert page.locator('#category optgroup[label="Street order"] option[value="E0404"]').inner_text() == (
        "Piled materials"
    )
    page.goto(f"{live_server_url}/report/track/{case.code}", wait_until="networkidle")
    page.wait_for_selector("#facts:not([hidden])")
    assert page.locator("#category").inner_text() == "Piled materials"
    assert "In progress" in page.locator("#reply").inner_text()
    screenshot(page, "resident_track_english")
    context.close()
