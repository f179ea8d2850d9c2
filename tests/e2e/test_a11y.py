"""axe-core on every face at its real size, in Chinese and in English (issue 12: "axe-core: 0 serious/critical
on /report/, /report/track/…, /patrol/, /dispatch/, /wall/").

axe-core is vendored for the tests only (tests/e2e/vendor/axe-core/, see tests/e2e/vendor/README.md) and
injected from that file: nothing is downloaded and nothing is served to users. Each face is checked once it
has drawn its data (the readiness each face's script exposes, or the rows it renders), with cases in
several states (lights red/yellow/green, a dispatched task, a closed case with photos the resident may rate).

Rules: axe's default set (WCAG 2.0–2.2 A/AA and best practices), none disabled and nothing excluded: the
maps (Leaflet's zoom buttons, attribution, scale, and the labels and markers drawn on the map) are checked like
the rest of the page. Only serious and critical violations fail the test; every result, "incomplete" ones
(what axe cannot decide, e.g. text over a map or a wrapped line) included, is written next to each
screenshot in AXE_SHOTS for a person to look at.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from gridmgmt import services
from gridmgmt.api.public import tracking_token_issue
from gridmgmt.models import Case
from tests.e2e.conftest import ROOT, login, record
from tests.e2e.test_faces import jpeg_file
from tests.world import jpeg, world_build

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
SHOTS = Path(os.environ.get("AXE_SHOTS", "/tmp/axe-shots"))
PHONE, DESK, WALL = (390, 844), (1600, 900), (1920, 1080)
BLOCKING = {"serious", "critical"}


def run_axe(page) -> dict[str, list[dict]]:
    """axe's results on the page as it stands (the vendored axe injected once per document):
    {"violations": […], "incomplete": […]} ("incomplete": what axe could not decide, for a person to look at)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate(
        """async () => {
            const result = await axe.run(document, { resultTypes: ["violations", "incomplete"] });
            const brief = (list) => list.map((v) => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map((n) => ({ target: n.target, impact: n.impact, summary: n.failureSummary,
                                             html: n.html.slice(0, 200) })),
            }));
            return { violations: brief(result.violations), incomplete: brief(result.incomplete) };
        }"""
    )


def blocking(violations: list[dict]) -> list[dict]:
    return [v for v in violations if v["impact"] in BLOCKING]


def report(where: str, violations: list[dict]) -> str:
    lines = [f"{where}: {len(violations)} serious/critical axe violation(s)"]
    for v in violations:
        lines.append(f"- {v['id']} [{v['impact']}] {v['help']} ({v['helpUrl']})")
        for n in v["nodes"][:8]:
            lines.append(f"    {json.dumps(n['target'], ensure_ascii=False)}: {n['html']}")
            lines.append("      " + (n["summary"] or "").replace("\n", "\n      "))
        if len(v["nodes"]) > 8:
            lines.append(f"    … and {len(v['nodes']) - 8} more")
    return "\n".join(lines)


class Checks:
    """The axe runs of one test: each step's screenshot and results go to SHOTS (<name>.png, <name>.json);
    the test fails at the end with every step's serious/critical violations, not only the first step's."""

    def __init__(self):
        self.failures: list[str] = []

    def __call__(self, page, where: str, name: str) -> None:
        page.evaluate("document.fonts.ready.then(() => true)")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"))
        results = run_axe(page)
        (SHOTS / f"{name}.json").write_text(json.dumps(results, ensure_ascii=False, indent=1))
        found = blocking(results["violations"])
        if found:
            self.failures.append(report(where, found))

    def assert_none(self):
        assert not self.failures, "\n\n".join(self.failures)


@pytest.fixture
def check():
    return Checks()


# --- data: one case per state a face shows differently ------------------------------------------------


def cases_build(world) -> dict[str, Case]:
    """A reported case with a photo; filed ones with a green, a yellow and a red light; one dispatched to the
    patrol user's team (their task list); one closed with an after-photo, its tracking token issued."""
    u = world.users
    made = {}
    # The team has a position: the desk draws the ranked teams on the map, the wall shows its label.
    lon, lat = world.centre(6)
    world.team.last_position = f"SRID=4326;POINT({lon} {lat})"
    world.team.save()

    def report_one(cell: int, text: str, **kw) -> Case:
        lon, lat = world.centre(cell)
        case, _ = services.case_report(
            source=Case.Source.RESIDENT, category_code="E0404", lon=lon, lat=lat, description=text, **kw
        )
        return case

    made["reported"] = report_one(0, "路口堆放建筑垃圾", photos=[jpeg("before.jpg")])
    for light, cell in (("green", 1), ("yellow", 2), ("red", 3)):
        case = report_one(cell, f"人行道乱堆物({light})")
        services.case_file(case_id=case.pk, actor=u["dispatcher"])
        made[light] = case
    now = timezone.now()
    Case.objects.filter(pk=made["yellow"].pk).update(warn_at=now - timedelta(minutes=5))
    Case.objects.filter(pk=made["red"].pk).update(
        warn_at=now - timedelta(hours=2), deadline_at=now - timedelta(hours=1)
    )
    task = report_one(5, "绿化带内垃圾")
    services.case_file(case_id=task.pk, actor=u["dispatcher"])
    services.case_dispatch(case_id=task.pk, actor=u["dispatcher"], team_id=world.team.pk)
    made["task"] = task

    closed = report_one(4, "井盖缺失", photos=[jpeg("before2.jpg")])
    made["token"] = tracking_token_issue(case=closed)
    services.case_file(case_id=closed.pk, actor=u["dispatcher"])
    services.case_dispatch(case_id=closed.pk, actor=u["dispatcher"], team_id=world.team.pk)
    services.case_accept(case_id=closed.pk, actor=u["patrol"])
    services.case_handle(case_id=closed.pk, actor=u["patrol"], note="已修复", photos=[jpeg("after.jpg")])
    services.case_check(case_id=closed.pk, actor=u["inspector"], passed=True)
    made["closed"] = services.case_close(case_id=closed.pk, actor=u["shift_leader"])
    return made


@pytest.fixture
def world(settings):
    # Photos saved here through the services are served by the live server: the same media directory.
    settings.MEDIA_ROOT = os.environ.get("MEDIA_ROOT") or ROOT / "var" / "media"
    w = world_build()
    w.cases = cases_build(w)
    return w


# --- the faces ---------------------------------------------------------------------------------------


def context_for(browser, url: str, world, lang: str, size: tuple[int, int], user: str | None):
    lon, lat = world.centre(4)
    phone = size == PHONE
    context = browser.new_context(
        locale="zh-CN" if lang == "zh-hans" else "en-GB",
        timezone_id="Asia/Shanghai",
        viewport={"width": size[0], "height": size[1]},
        is_mobile=phone,
        has_touch=phone,
        geolocation={"latitude": lat, "longitude": lon, "accuracy": 8},
        permissions=["geolocation"],
    )
    context.set_default_timeout(20_000)
    context.add_cookies([{"name": "django_language", "value": lang, "url": url}])
    if user:
        page = context.new_page()
        login(page, url, user)
        page.close()
    return context


def open_face(context, url: str, lang: str):
    page = context.new_page()
    log = record(page)
    page.goto(url)
    page.wait_for_function("window.gridmgmtMap !== undefined")
    assert page.locator("html").get_attribute("lang") == lang
    return page, log


def open_inbox(page):
    """The bell's list, once loaded (its lines, or the "no notifications" line)."""
    page.click("#inbox-toggle")
    page.wait_for_selector("#inbox-panel:not([hidden]) #inbox-list li")


LANGS = ["zh-hans", "en"]


@pytest.mark.parametrize("lang", LANGS)
def test_axe_report(browser, live_server_url, world, lang, check):
    context = context_for(browser, live_server_url, world, lang, PHONE, None)
    page, log = open_face(context, f"{live_server_url}/report/", lang)
    page.wait_for_selector("#category option[value=E0404]", state="attached")
    page.click("#locate")  # the located state: the pin on the map and the status text
    page.wait_for_selector(".leaflet-marker-icon")
    check(page, f"/report/ ({lang})", f"report_{lang}")
    # Submitted beside open cases of the same category: the possible duplicates, then the result.
    page.set_input_files("#photo", jpeg_file())
    page.select_option("#category", "E0404")
    page.fill("#description", "路边堆放杂物")
    page.click("#submit")
    page.wait_for_selector("#dups:not([hidden]) button[data-code]")
    check(page, f"/report/ duplicates ({lang})", f"report_dups_{lang}")
    page.locator("#dups > button").click()
    page.wait_for_selector("#result:not([hidden]) #result-code")
    check(page, f"/report/ result ({lang})", f"report_result_{lang}")
    check.assert_none()
    assert log.page_errors == []
    context.close()


@pytest.mark.parametrize("lang", LANGS)
def test_axe_track(browser, live_server_url, world, lang, check):
    """The tracking link a resident keeps (with its token): a closed case, its photos and the rating form."""
    case, token = world.cases["closed"], world.cases["token"]
    context = context_for(browser, live_server_url, world, lang, PHONE, None)
    page, log = open_face(context, f"{live_server_url}/report/track/{case.code}?token={token}", lang)
    page.wait_for_selector("#facts:not([hidden])")
    page.wait_for_selector("#feedback:not([hidden])")
    page.wait_for_selector("#timeline li")
    page.wait_for_function(
        "[...document.querySelectorAll('#photos img')].length >= 2 &&"
        " [...document.querySelectorAll('#photos img')].every((i) => i.complete && i.naturalWidth > 0)"
    )
    check(page, f"/report/track/ ({lang})", f"track_{lang}")
    check.assert_none()
    assert log.page_errors == []
    context.close()


@pytest.mark.parametrize("lang", LANGS)
def test_axe_patrol(browser, live_server_url, world, lang, check):
    code = world.cases["task"].code
    context = context_for(browser, live_server_url, world, lang, PHONE, "patrol")
    page, log = open_face(context, f"{live_server_url}/patrol/", lang)
    page.wait_for_selector("#category option[value=E0404]", state="attached")
    page.wait_for_function("document.getElementById('loc-status').textContent.trim().length > 0")
    page.wait_for_selector("#task-count:not([hidden])")
    check(page, f"/patrol/ report tab ({lang})", f"patrol_{lang}")
    # The task list with the dispatched task; then the task opened (its detail, actions and timeline).
    page.click("#tab-tasks")
    page.wait_for_selector(f'#tasks li[data-case="{code}"] button.gm-task-open')
    check(page, f"/patrol/ tasks tab ({lang})", f"patrol_tasks_{lang}")
    page.locator(f'#tasks li[data-case="{code}"] button.gm-task-open').click()
    page.wait_for_selector("#task-timeline ol li")
    page.wait_for_selector("#task-actions button[data-action]")
    check(page, f"/patrol/ task detail ({lang})", f"patrol_task_{lang}")
    page.click("#tab-queue")
    page.wait_for_selector("#panel-queue:not([hidden])")
    check(page, f"/patrol/ queue tab ({lang})", f"patrol_queue_{lang}")
    open_inbox(page)
    check(page, f"/patrol/ notifications ({lang})", f"patrol_inbox_{lang}")
    check.assert_none()
    assert log.page_errors == []
    context.close()


@pytest.mark.parametrize("lang", LANGS)
def test_axe_dispatch(browser, live_server_url, world, lang, check):
    cases = world.cases
    context = context_for(browser, live_server_url, world, lang, DESK, "dispatcher")
    page, log = open_face(context, f"{live_server_url}/dispatch/", lang)
    page.wait_for_selector("#queue li[data-case]")
    check(page, f"/dispatch/ queue ({lang})", f"dispatch_{lang}")
    # "All open" (the last queue): every light; then a case opened with its ranked teams, duplicates and timeline.
    page.locator("#queues [role=tab]").last.click()
    for light in ("red", "yellow", "green"):
        page.wait_for_selector(f'#queue li[data-light="{light}"]')
    page.locator(f'#queue li[data-case="{cases["red"].code}"]').click()
    page.wait_for_selector(f'#d-title:has-text("{cases["red"].code}")')
    page.wait_for_selector("#d-cands li [data-action]")
    page.wait_for_selector("#d-timeline li")
    page.wait_for_selector("#d-dups li")
    check(page, f"/dispatch/ case open ({lang})", f"dispatch_case_{lang}")
    # An action's form (its input and the cancel button): merge asks for the other case.
    page.click('#d-actions [data-action="merge"]')
    page.wait_for_selector("#d-form:not([hidden]) form")
    check(page, f"/dispatch/ action form ({lang})", f"dispatch_form_{lang}")
    check.assert_none()
    assert log.page_errors == []
    context.close()


@pytest.mark.parametrize("lang", LANGS)
def test_axe_wall(browser, live_server_url, world, lang, check):
    context = context_for(browser, live_server_url, world, lang, WALL, "wall")
    page, log = open_face(context, f"{live_server_url}/wall/", lang)
    page.wait_for_function("window.gridmgmtWall && window.gridmgmtWall.ready === true")
    page.wait_for_selector("#ticker li")
    page.wait_for_function("document.querySelector('.gm-kpi[data-key=open] b').textContent !== '–'")
    page.wait_for_function("document.getElementById('clock').textContent.length > 0")
    check(page, f"/wall/ ({lang})", f"wall_{lang}")
    open_inbox(page)
    check(page, f"/wall/ notifications ({lang})", f"wall_inbox_{lang}")
    check.assert_none()
    assert log.page_errors == []
    context.close()
