"""The desk actions in Chromium at 1600×900 (issue 11): a dispatcher reassigns a dispatched case to another team
(改派, from the team list with a reason), files three reports in one bulk action, and prints a case sheet."""

from __future__ import annotations

import pytest

from gridmgmt import services
from gridmgmt.models import Case, CaseEvent, User
from tests.e2e.conftest import record, screenshot
from tests.e2e.test_faces import NO_PROBLEMS, clean, dispatch_select, open_face, person
from tests.world import world_build

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
R, S, E = User.Role, Case.Status, CaseEvent.Type


def test_reassign_bulk_file_and_print(browser, live_server_url):
    world = world_build()
    lon, lat = world.centre()
    dispatcher = world.users[R.DISPATCHER]

    def report(text):
        case, _ = services.case_report(
            source=Case.Source.HOTLINE, category_code="E0404", lon=lon, lat=lat, description=text
        )
        return case

    held = report("井盖松动")
    services.case_file(case_id=held.pk, actor=dispatcher)
    services.case_dispatch(case_id=held.pk, actor=dispatcher, team_id=world.team.pk)
    fresh = [report(f"堆物 {i}") for i in range(3)]

    desk = person(browser, live_server_url, world, user="dispatcher", viewport=(1600, 900))
    page, log = open_face(desk, f"{live_server_url}/dispatch/")

    # 改派: the dispatched case goes to 乙队, with a reason (the form asks for it).
    dispatch_select(page, held.code, "处置中")
    page.locator(f'#d-cands li[data-team="{world.other_team.code}"] [data-action="reassign"]').click()
    page.fill('#d-form [data-input="reason"] textarea', "甲队今日人手不足")
    page.click("#d-form button[type=submit]")
    page.wait_for_selector("#d-msg:not([hidden])")
    page.wait_for_selector('#d-timeline li[data-type="reassigned"]')
    held.refresh_from_db()
    assert (held.status, held.team_id) == (S.DISPATCHED, world.other_team.pk)
    assert held.events.get(type=E.REASSIGNED).note == "甲队今日人手不足"
    screenshot(page, "desk_reassigned")

    # The printable case sheet of the case shown.
    href = page.get_attribute("#desk-print", "href")
    assert href == f"/dispatch/cases/{held.code}/print/"
    sheet = desk.new_page()
    sheet_log = record(sheet)
    sheet.goto(f"{live_server_url}{href}", wait_until="networkidle")
    assert sheet.inner_text("#sheet-code") == held.code
    assert sheet.locator(".gm-sheet-qr svg").count() == 1
    assert sheet.locator('#sheet-timeline tbody tr:has-text("改派")').count() == 1
    sheet.emulate_media(media="print")
    assert sheet.locator(".gm-sheet-tools").is_hidden()  # the print button is not printed
    screenshot(sheet, "desk_case_sheet")
    assert clean(sheet_log) == NO_PROBLEMS

    # 批量立案: three reports filed in one request, one event each.
    page.click("#desk-bulk")
    for case in fresh:
        page.check(f'#desk-bulk-list input[data-case="{case.code}"]')
    page.click("#desk-bulk-run")
    page.wait_for_selector('#desk-bulk-results li[data-ok="true"]')
    assert page.locator('#desk-bulk-results li[data-ok="true"]').count() == 3
    assert set(Case.objects.filter(pk__in=[c.pk for c in fresh]).values_list("status", flat=True)) == {S.FILED}
    assert CaseEvent.objects.filter(type=E.FILED, case__in=fresh).count() == 3
    screenshot(page, "desk_bulk_filed")

    # 电话登记: a 12345 call about the same spot; the duplicate check lists the open cases there, and the call is
    # merged into one of them (附议) instead of opening a fourth.
    page.click("#desk-new")
    page.select_option('#desk-new-form select[name="category"]', "E0404")
    box = page.locator(".gm-face-map .leaflet-container").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function("document.getElementById('desk-where').textContent.includes(',')")
    page.fill('#desk-new-form textarea[name="description"]', "市民来电:路边堆物")
    page.fill('#desk-new-form input[name="external_id"]', "GD-20261124-001")
    page.click("#desk-new-form button[type=submit]")
    page.wait_for_selector(f'#desk-dups li[data-case="{fresh[0].code}"]')
    screenshot(page, "desk_new_case_duplicates")
    page.locator(f'#desk-dups li[data-case="{fresh[0].code}"] button').click()
    page.wait_for_function("document.querySelector('#desk-new-form .gm-msg').textContent.includes('已合并')")
    fresh[0].refresh_from_db()
    assert fresh[0].supporters == 1 and Case.objects.count() == 4
    assert clean(log) == NO_PROBLEMS


def test_return_visit_call_shows_the_number_and_records_the_answer(browser, live_server_url):
    """回访: the list shows the reporter's number masked; 显示号码 asks the server for it (a tel: link to call);
    the answer is recorded as the case's rating by phone."""
    from tests.world import jpeg

    world = world_build()
    lon, lat = world.centre()
    users = world.users
    case, _ = services.case_report(source=Case.Source.HOTLINE, category_code="E0404", lon=lon, lat=lat)
    services.case_file(case_id=case.pk, actor=users[R.DISPATCHER])
    services.case_dispatch(case_id=case.pk, actor=users[R.DISPATCHER], team_id=world.team.pk)
    services.case_accept(case_id=case.pk, actor=users[R.PATROL])
    services.case_handle(case_id=case.pk, actor=users[R.PATROL], photos=[jpeg()])
    services.case_check(case_id=case.pk, actor=users[R.INSPECTOR], passed=True)
    services.case_close(case_id=case.pk, actor=users[R.SHIFT_LEADER], hotline_reply="已处理")
    Case.objects.filter(pk=case.pk).update(reporter_phone="13812345678", reporter_name="王先生")

    desk = person(browser, live_server_url, world, user="dispatcher", viewport=(1600, 900))
    page, log = open_face(desk, f"{live_server_url}/dispatch/")
    page.click("#desk-visits")
    row = page.locator(f'#desk-visit-list li[data-case="{case.code}"]')
    row.wait_for()
    assert "138****5678" in row.inner_text() and "13812345678" not in row.inner_text()
    row.locator(".gm-visit-phone button").click()
    call = row.locator('.gm-visit-phone a[href="tel:13812345678"]')
    call.wait_for()
    screenshot(page, "desk_return_visit_call")
    row.locator("select").select_option("5")
    row.locator("button.gm-primary").click()
    page.wait_for_selector(f'#desk-visit-list li[data-case="{case.code}"] .gm-msg[data-kind="ok"]')
    assert case.events.get(type=E.RATED).data == {"satisfaction": 5, "via": "phone"}
    assert clean(log) == NO_PROBLEMS
