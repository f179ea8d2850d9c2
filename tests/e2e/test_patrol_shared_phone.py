"""A shared patrol phone (issue 9, integrity): the offline queue belongs to the officer who filled it. Officer
A queues a report offline and leaves without logging out; officer B logs in on the same phone: A's entry is
shown as held and never sent under B's name. B's own unsent entry is shown and cleared when B logs out; A,
back on the phone, sends A's entry under A's name."""

from __future__ import annotations

import pytest

from gridmgmt.models import Case
from tests.e2e.conftest import login
from tests.e2e.test_faces import jpeg_file, open_face, person
from tests.world import world_build

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world():
    return world_build()


def login_in(context, url: str, user: str) -> None:
    page = context.new_page()
    login(page, url, user)
    page.close()


def queue_report(page, note: str, n: int) -> None:
    page.click("#tab-report")
    page.set_input_files("#photo", jpeg_file(f"{note}.jpg"))
    page.fill("#category-search", "乱堆")
    page.select_option("#category", "E0404")
    page.fill("#note", note)
    page.click("#submit")
    page.wait_for_function(f"document.getElementById('queue-count').textContent === '{n}'")


def test_queued_entries_are_sent_only_by_the_officer_who_made_them(browser, live_server_url, world):
    phone = person(browser, live_server_url, world, user="patrol", viewport=(412, 880))
    page, log = open_face(phone, f"{live_server_url}/patrol/")
    page.wait_for_function("document.getElementById('loc-status').textContent.length > 0")

    # Officer A queues a report with no network, then the phone changes hands without a logout.
    phone.set_offline(True)
    page.wait_for_selector('#net[data-online="false"]')
    queue_report(page, "A 的离线上报", 1)
    page.close()
    phone.set_offline(False)
    phone.clear_cookies()  # A's session is gone (expired, or the browser was cleared); IndexedDB is not

    # Officer B on the same phone, online: A's entry is listed as held and nothing is posted.
    login_in(phone, live_server_url, "other_patrol")
    page, log = open_face(phone, f"{live_server_url}/patrol/")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/api/cases/" in r.url else None)
    page.click("#tab-queue")
    page.wait_for_selector('#queue li[data-state="foreign"]:has-text("不会以您的身份发送")')
    page.wait_for_timeout(2500)  # the page flushes on load and when online: give it the chance to misbehave
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_timeout(1500)
    assert posts == []
    assert page.locator("#queue-count").is_hidden()
    assert Case.objects.count() == 0

    # B queues a report while the server is unreachable, then logs out: told what is lost, then cleared.
    page.route("**/api/cases/", lambda route: route.abort() if route.request.method == "POST" else route.continue_())
    queue_report(page, "B 的未发送上报", 1)
    page.click("#tab-queue")
    page.wait_for_function("document.querySelectorAll('#queue li[data-state=queued]').length === 1")
    shown: list[str] = []

    def accept(dialog):
        shown.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    with page.expect_navigation():
        page.click("form.gm-logout button[type=submit]")
    assert len(shown) == 1 and "1 条未发送" in shown[0] and "乱堆物堆料" in shown[0], shown
    entries = page.evaluate(
        """() => new Promise((resolve) => {
            const req = indexedDB.open("gridmgmt-faces", 1);
            req.onsuccess = () => {
                const all = req.result.transaction("queue").objectStore("queue").getAll();
                all.onsuccess = () => resolve(all.result.map((e) => e.fields.description));
            };
        })"""
    )
    assert entries == ["A 的离线上报"]  # B's entry cleared, A's kept for A
    assert Case.objects.count() == 0  # B's entry never reached the server; A's was never sent

    # A is back: A's entry is sent, under A's name.
    page.close()
    login_in(phone, live_server_url, "patrol")
    page, log = open_face(phone, f"{live_server_url}/patrol/")
    page.wait_for_function("document.querySelectorAll('#queue li[data-state=sent]').length === 1", timeout=40_000)
    case = Case.objects.get()
    assert (case.description, case.reporter.username) == ("A 的离线上报", "patrol")
    assert log.outside() == [] and log.page_errors == []
    phone.close()
