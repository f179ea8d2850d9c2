"""The dispatch map's track replay (issue 10, item 5) at 1600×900: a team's day drawn per device, the slider
moving each device's dot, the team's 巡查覆盖率 and each member's attendance beside it — all from the server."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from geo.models import GridCell, ResponsibilityGrid
from gridmgmt.models import User
from realtime import positions
from realtime.models import Device
from tests.e2e.conftest import screenshot
from tests.e2e.test_faces import open_face, person
from tests.world import world_build

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SH = ZoneInfo("Asia/Shanghai")


def test_a_dispatcher_replays_a_teams_day(browser, live_server_url):
    world = world_build()
    grid = ResponsibilityGrid.objects.create(code="RG-A", name="RG-A", district=world.district, team=world.team)
    GridCell.objects.filter(pk__in=[c.pk for c in world.cells[:6]]).update(responsibility_grid=grid)
    patrol = world.users[User.Role.PATROL]
    device = Device.objects.create(user=patrol, kind=Device.Kind.TRACKER, identifier="demo-patrol")
    day = timezone.localdate() - timedelta(days=1)
    start = datetime.combine(day, time(9, 0), tzinfo=SH)
    walk = [world.centre(0), world.centre(1), world.centre(2), world.centre(5)]
    fixes = [positions.Fix(lon=x, lat=y, at=start + timedelta(minutes=2 * i)) for i, (x, y) in enumerate(walk)]
    positions.partitions_create([day])
    positions.positions_append(device_id=device.pk, user_id=patrol.pk, team_id=world.team.pk, fixes=fixes)

    desk = person(browser, live_server_url, world, user="dispatcher", viewport=(1600, 900))
    page, log = open_face(desk, f"{live_server_url}/dispatch/")
    page.click("#trk-toggle")
    page.wait_for_function("document.querySelectorAll('#trk-team option').length === 2")
    page.select_option("#trk-team", str(world.team.pk))
    page.fill("#trk-day", day.isoformat())
    page.click("#trk-show")
    page.wait_for_selector("#trk-coverage")
    # Cells 0, 1, 2 and 5 of the team's six.
    assert page.locator("#trk-coverage").inner_text() == "巡查覆盖率 66.7% (4/6)"
    assert page.locator("#trk-attendance").inner_text().endswith("上岗 09:00 · 离岗 09:06")
    # The slider at 09:03 puts the dot on the last fix at or before it: 09:02, cell 1.
    page.evaluate(
        """(s) => { const el = document.getElementById('trk-time');
                    el.value = String(s); el.dispatchEvent(new Event('input')); }""",
        int((start + timedelta(minutes=3)).timestamp()),
    )
    assert page.locator("#trk-at").inner_text() == "09:03"
    dot = page.evaluate(
        """() => { let at = null;
                   window.gridmgmtMap.eachLayer((l) => {
                     if (l instanceof L.CircleMarker && l.options.fillColor) at = l.getLatLng(); });
                   return at && [at.lng, at.lat]; }"""
    )
    assert dot == pytest.approx(list(world.centre(1)), abs=1e-6)
    screenshot(page, "dispatch_track_replay")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1600
    assert log.outside() == [] and log.page_errors == [] and log.console_errors == []
    desk.close()
