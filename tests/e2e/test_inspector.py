"""An inspector (监督员) checks a case on site with the phone (issue 10, item 4), on a 390×844 viewport: the check
queue (待核查) on the map and in the list, the case's detail, 核查通过 with a photo and the phone's location, and
their own reports; then the shift leader closes it at the desk's API (the desk's close button is covered by
tests/e2e/test_faces.py)."""

from __future__ import annotations

import pytest

from gridmgmt import services
from gridmgmt.models import Case, CaseEvent, User
from tests.e2e.conftest import screenshot
from tests.e2e.test_faces import jpeg_file, open_face, person
from tests.world import jpeg, world_build

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
R = User.Role


@pytest.fixture
def world():
    return world_build()


def handled_case(world) -> Case:
    lon, lat = world.centre(2)
    case, _ = services.case_report(
        source="resident",
        category_code=world.category.code,
        lon=lon,
        lat=lat,
        description="人行道上堆了十几袋装修垃圾",
        address="锦绣路 1500 号东侧人行道",
    )
    services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER])
    services.case_dispatch(case_id=case.pk, actor=world.users[R.DISPATCHER], team_id=world.team.pk)
    services.case_accept(case_id=case.pk, actor=world.users[R.PATROL])
    services.case_handle(case_id=case.pk, actor=world.users[R.PATROL], note="已清运", photos=[jpeg("after.jpg")])
    case.refresh_from_db()
    assert case.status == Case.Status.HANDLED
    return case


def test_an_inspector_checks_on_the_phone_and_the_shift_leader_closes(browser, live_server_url, world):
    case = handled_case(world)
    lon, lat = world.centre(6)
    own, _ = services.case_report(
        source="inspector", category_code=world.category.code, lon=lon, lat=lat, reporter=world.users[R.INSPECTOR]
    )
    phone = person(browser, live_server_url, world, user="inspector", viewport=(390, 844), at_cell=2)
    page, log = open_face(phone, f"{live_server_url}/patrol/")

    # Their own reports, with the status now.
    page.locator(f'#mine-list li[data-case="{own.code}"]').wait_for()
    assert "已上报" in page.locator(f'#mine-list li[data-case="{own.code}"]').inner_text()

    # The check queue: the tab says 待核查, the case is listed and on the map.
    assert page.locator("#tab-tasks").inner_text().startswith("待核查")
    page.click("#tab-tasks")
    line = page.locator(f'#tasks li[data-case="{case.code}"]')
    line.wait_for()
    assert "锦绣路 1500 号东侧人行道" in line.inner_text()
    assert page.locator("#tasks li[data-case]").count() == 1  # only handled cases: not the own report
    screenshot(page, "inspector_queue")

    # The detail: the handler's after photo in the timeline, the two check actions the server allows.
    line.locator("button.gm-task-open").click()
    page.wait_for_selector("#task-timeline ol li")
    actions = page.eval_on_selector_all("#task-actions button", "bs => bs.map((b) => b.dataset.action)")
    assert actions == ["check_pass", "check_fail"]
    page.click('#task-actions button[data-action="check_pass"]')
    form = page.locator('#task-form form[data-action="check_pass"]')
    labels = [label.split("\n")[0].strip() for label in form.locator("label").all_inner_texts()]
    assert labels == ["核查照片", "说明"]
    form.get_by_label("核查照片").set_input_files(jpeg_file("check.jpg", (200, 90, 40)))
    form.get_by_label("说明").fill("现场已清理干净")
    screenshot(page, "inspector_check_form")
    form.locator("button[type=submit]").click()
    page.wait_for_selector('#task-done:has-text("核查通过,等待结案")')
    assert "案件状态:待结案" in page.locator("#task-done").inner_text()
    screenshot(page, "inspector_checked")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    case.refresh_from_db()
    assert case.status == Case.Status.CHECKED
    assert list(case.photos.values_list("kind", flat=True)) == ["after", "check"]
    check = case.events.get(type=CaseEvent.Type.CHECK_PASSED)
    assert check.note == "现场已清理干净" and check.actor_id == world.users[R.INSPECTOR].pk
    x, y = world.centre(2)
    assert check.location is not None and abs(check.location.x - x) < 1e-6 and abs(check.location.y - y) < 1e-6
    assert log.outside() == [] and log.page_errors == []

    # The shift leader closes it (the desk's API, with the session and CSRF as the desk sends them).
    desk = person(browser, live_server_url, world, user="shift_leader")
    desk.request.get(f"{live_server_url}/dispatch/")
    token = next(c["value"] for c in desk.cookies() if c["name"] == "csrftoken")
    answer = desk.request.post(
        f"{live_server_url}/api/cases/{case.pk}/close/",
        headers={"X-CSRFToken": token, "Referer": f"{live_server_url}/dispatch/"},
        form={"note": "核查通过,结案"},
    )
    assert answer.status == 200, answer.text()
    case.refresh_from_db()
    assert case.status == Case.Status.CLOSED
    # The inspector's queue is empty again.
    page.click("#tab-report")
    page.click("#tab-tasks")
    page.wait_for_function(f"!document.querySelector('#tasks li[data-case=\"{case.code}\"]')")
    desk.close()
    phone.close()
