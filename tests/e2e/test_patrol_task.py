"""A patrol member works one task on a 390×844 phone (issue 10): the list says what and where, the detail has
the description, the reporter's photo (full size on a tap), address and cell, the handling standard, the
timeline and navigation links; the map shows the task and the member; a missing photo is explained; the
handling report ends in a plain confirmation before the task leaves the list."""

from __future__ import annotations

import pytest

from gridmgmt import services
from gridmgmt.models import Case, Category, User
from tests.e2e.conftest import screenshot
from tests.e2e.test_faces import jpeg_file, open_face, person
from tests.world import jpeg, world_build

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
R = User.Role


@pytest.fixture
def world():
    return world_build()


def accepted_task(browser, url: str, world) -> Case:
    """A resident's report with a photo, sent through the live server (it stores the photo where it serves it
    from), then filed, dispatched to the member's team and accepted."""
    Category.objects.filter(pk=world.category.pk).update(closing_condition="物料清运完毕,盲道恢复通行,现场清理干净")
    lon, lat = world.centre(2)
    resident = person(browser, url, world, user="resident")
    resident.request.get(f"{url}/report/")
    token = next(c["value"] for c in resident.cookies() if c["name"] == "csrftoken")
    photo = jpeg_file("before.jpg")
    photo["buffer"] = jpeg("before.jpg", size=(640, 480)).read()
    answer = resident.request.post(
        f"{url}/api/cases/",
        headers={"X-CSRFToken": token, "Referer": f"{url}/report/"},
        multipart={
            "category": world.category.code,
            "lon": str(lon),
            "lat": str(lat),
            "description": "人行道上堆了十几袋装修垃圾,挡住盲道",
            "address": "锦绣路 1500 号东侧人行道",
            "photos": photo,
        },
    )
    assert answer.status == 201, answer.text()
    case = Case.objects.get(pk=answer.json()["id"])
    resident.close()
    services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER], note="核实属实")
    services.case_dispatch(case_id=case.pk, actor=world.users[R.DISPATCHER], team_id=world.team.pk, note="请尽快处置")
    services.case_accept(case_id=case.pk, actor=world.users[R.PATROL])
    case.refresh_from_db()
    return case


def test_a_member_opens_a_task_sees_everything_and_handles_it(browser, live_server_url, world):
    case = accepted_task(browser, live_server_url, world)
    phone = person(browser, live_server_url, world, user="patrol", viewport=(390, 844), at_cell=6)
    page, log = open_face(phone, f"{live_server_url}/patrol/")
    page.click("#tab-tasks")

    # The line says what, where, what the reporter said and how much time is left.
    line = page.locator(f'#tasks li[data-case="{case.code}"]')
    line.wait_for()
    text = line.inner_text()
    for expected in ("乱堆物堆料", "锦绣路 1500 号东侧人行道", "人行道上堆了十几袋装修垃圾", "时限内", "剩余"):
        assert expected in text, text
    screenshot(page, "patrol_task_list")

    # The detail: description, photo, address and cell, standard, timeline, navigation.
    line.locator("button.gm-task-open").click()
    page.wait_for_selector("#task-timeline ol li")
    assert page.locator("#task-description").inner_text() == "人行道上堆了十几袋装修垃圾,挡住盲道"
    assert page.locator("#task-address").inner_text() == "锦绣路 1500 号东侧人行道"
    assert page.locator("#task-cell").inner_text() == world.cells[2].code
    assert page.locator("#task-standard").inner_text() == "物料清运完毕,盲道恢复通行,现场清理干净"
    timeline = page.locator("#task-timeline").inner_text()
    for step in ("上报", "立案", "派遣", "签收", "核实属实", "请尽快处置"):
        assert step in timeline, timeline
    nav = page.eval_on_selector_all("#task-nav a", "links => links.map((a) => [a.dataset.nav, a.getAttribute('href')])")
    assert [name for name, _ in nav] == ["geo", "amap", "baidu"]
    assert nav[0][1].startswith(f"geo:{case.point.y:.6f},{case.point.x:.6f}?q=")
    assert "dev=0" in nav[1][1] and "coord_type=gcj02" in nav[2][1]
    # The map shows the task and the member (GPS at cell 6, the task at cell 2), closer than the district.
    view = page.evaluate(
        """([task, me]) => { const m = window.gridmgmtMap, b = m.getBounds();
                             return {zoom: m.getZoom(), task: b.contains(task), me: b.contains(me)}; }""",
        [[case.point.y, case.point.x], [world.centre(6)[1], world.centre(6)[0]]],
    )
    assert view["task"] and view["me"] and view["zoom"] >= 15, view
    screenshot(page, "patrol_task_detail")

    # The reporter's photo opens full size.
    page.locator("#task .gm-task-part .gm-thumb-open").first.click()
    page.wait_for_selector("#photo-view[open]")
    page.wait_for_function("document.getElementById('photo-full').naturalWidth > 0")
    assert page.evaluate("document.getElementById('photo-full').naturalWidth") == 640
    screenshot(page, "patrol_task_photo")
    page.click("#photo-close")

    # Handling: every input labelled in Chinese; a missing photo is explained; then the confirmation.
    page.click('#task-actions button[data-action="handle"]')
    form = page.locator('#task-form form[data-action="handle"]')
    labels = form.locator("label").all_inner_texts()
    assert [label.split("\n")[0].strip() for label in labels] == ["处置后照片 * 必填", "说明"]
    assert form.locator("button[type=submit]").inner_text() == "提交"
    form.locator("button[type=submit]").click()
    assert form.locator(".gm-msg").inner_text() == "请添加「处置后照片」。"
    form.get_by_label("处置后照片").set_input_files(jpeg_file("after.jpg", (30, 30, 200)))
    form.get_by_label("说明").fill("已清运,盲道恢复通行")
    form.locator("button[type=submit]").click()
    page.wait_for_selector('#task-done:has-text("已提交处理,等待核查")')
    assert "案件状态:待核查" in page.locator("#task-done").inner_text()
    screenshot(page, "patrol_task_confirmation")
    case.refresh_from_db()
    assert case.status == Case.Status.HANDLED
    assert list(case.photos.values_list("kind", flat=True)) == ["before", "after"]

    # Back to the list: the task has left it.
    page.locator("#task-done button.gm-primary").click()
    page.wait_for_function(f"!document.querySelector('#tasks li[data-case=\"{case.code}\"]')")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert log.outside() == [] and log.page_errors == [] and log.console_errors == []
    phone.close()


def test_the_task_detail_switches_to_english(browser, live_server_url, world):
    case = accepted_task(browser, live_server_url, world)
    phone = person(browser, live_server_url, world, user="patrol", viewport=(390, 844))
    page, log = open_face(phone, f"{live_server_url}/patrol/")
    page.get_by_role("button", name="English").click()
    page.wait_for_load_state("networkidle")
    page.click("#tab-tasks")
    page.locator(f'#tasks li[data-case="{case.code}"] button.gm-task-open').click()
    page.wait_for_selector("#task-timeline ol li")
    detail = page.locator("#task").inner_text()
    for expected in (
        "Back to my tasks",
        "Handling standard (closing condition)",
        "Navigate:",
        "Phone map app",
        "On time",
    ):
        assert expected in detail, detail
    page.click('#task-actions button[data-action="handle"]')
    assert page.locator('#task-form button[type="submit"]').inner_text() == "Submit"
    assert page.locator("#task-form [data-cancel]").inner_text() == "Cancel"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert log.outside() == [] and log.page_errors == []
    phone.close()
