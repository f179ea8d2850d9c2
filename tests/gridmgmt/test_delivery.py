"""Notifications outside the browser (gridmgmt.outbox, gridmgmt.senders) against real servers on 127.0.0.1: an
SMTP server (aiosmtpd) and HTTP receivers standing in for the SMS gateway and the group robots — answering,
failing with 500, too slow, or not listening. The clock is moved by passing `now` (and time_machine for the
case writes), never by sleeping."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import io
import json
import re
import socket
import time
from datetime import datetime, timedelta
from datetime import time as dtime
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import time_machine
from aiosmtpd.controller import Controller
from django.core.management import call_command

from gridmgmt import notify, outbox, services
from gridmgmt.models import Case, CaseEvent, Delivery, DeliveryAttempt, Notification, NotifyPreference, Robot, User
from tests.factories import UserFactory
from tests.locks import row_locked_elsewhere
from tests.world import jpeg, world_build, world_with_levels_build

S, E, R, K = Case.Status, CaseEvent.Type, User.Role, Notification.Kind
TZ = ZoneInfo("Asia/Shanghai")
PHONE = "13800138000"
WHAT = "乱堆物堆料 · 浦东大道100号"  # category · address, as staff read it


def at(hour: int, minute: int = 0, day: int = 24, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=TZ)  # 2026-11-24 is a Tuesday


# --- the servers ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


@pytest.fixture
def gateway(receivers):
    (r,) = receivers(1, answer=b'{"code": "0", "msg": "success"}')
    return r


@pytest.fixture
def robots_http(receivers):
    (r,) = receivers(1, answer=b'{"errcode": 0, "errmsg": "ok"}')
    return r


@pytest.fixture
def channels(settings, smtp, gateway):
    """E-mail and SMS configured, pointing at the local servers."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.DEFAULT_FROM_EMAIL = "grid@example.org"
    settings.SMS_GATEWAY_URL = f"{gateway.url}/sms/send"
    settings.SMS_GATEWAY_SUCCESS = r'"code":\s*"0"'
    settings.NOTIFY_TIMEOUT_SECONDS = 2
    settings.NOTIFY_DEFAULT_CHANNELS = ["email", "sms"]
    settings.NOTIFY_REPORTER_QUIET = "21:00-08:00"
    settings.PUBLIC_BASE_URL = "https://grid.example.org"
    return settings


@pytest.fixture
def world(db):
    w = world_with_levels_build()
    w.supervisor = UserFactory(username="c_insp", role=R.INSPECTOR, area=w.community, email="c_insp@example.org")
    return w


def reported(world, *, phone: str = "", when: datetime | None = None) -> Case:
    with time_machine.travel(when or at(10), tick=False):
        lon, lat = world.centre()
        case, _ = services.case_report(
            source=Case.Source.RESIDENT,
            category_code=world.category.code,
            lon=lon,
            lat=lat,
            description="3号楼门口堆了装修垃圾",
            address="浦东大道100号",
            reporter_name="王女士",
            reporter_phone=phone,
            photos=[jpeg()],
        )
        return case


def dispatched(world, case: Case, *, when: datetime | None = None) -> Case:
    with time_machine.travel(when or at(10), tick=False):
        services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER])
        return services.case_dispatch(case_id=case.pk, actor=world.users[R.DISPATCHER], team_id=world.team.pk)


def attempts(delivery: Delivery) -> list[tuple[bool, str, str]]:
    return list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("id").values_list("ok", "detail", "error"))


# --- personal channels -----------------------------------------------------------------------------------------


def test_a_new_task_goes_to_the_team_member_by_email_and_sms_once(world, channels, smtp, gateway):
    User.objects.filter(pk=world.users[R.PATROL].pk).update(email="patrol@example.org", phone="13900001111")
    case = dispatched(world, reported(world))
    rows = Delivery.objects.filter(kind=K.DISPATCHED).order_by("channel")
    assert [(d.channel, d.target, d.status) for d in rows] == [
        ("email", "patrol@example.org", "pending"),
        ("sms", "13900001111", "pending"),
    ]
    assert smtp.messages == [] and gateway.heard == []  # nothing is sent on the request path

    report = outbox.deliveries_send(now=at(10, 1))
    assert (report.sent, report.retried, report.failed) == (2, 0, 0)
    (mail,) = smtp.messages
    assert mail.rcpt_tos == ["patrol@example.org"] and mail.mail_from == "grid@example.org"
    message = email.message_from_bytes(mail.content, policy=email.policy.default)
    assert message["Subject"] == f"新任务 {case.code}"
    assert message.get_content().strip() == f"{WHAT}:已派遣给你的队伍甲队,请签收"  # staff see the address
    ((method, path, headers, body),) = gateway.heard
    assert (method, path, headers["Content-Type"]) == ("POST", "/sms/send", "application/json; charset=utf-8")
    assert json.loads(body) == {
        "mobile": "13900001111",
        "content": f"新任务 {case.code}:{WHAT}:已派遣给你的队伍甲队,请签收",
    }
    for d in rows:
        d.refresh_from_db()
        assert d.status == Delivery.Status.SENT and d.attempts == 1 and d.sent_at == at(10, 1)
    assert attempts(rows[1]) == [(True, "HTTP 200", "")]

    # A replayed event and a second pass send nothing again.
    event = case.events.get(type=E.DISPATCHED)
    assert notify.notifications_replay(event_ids=[event.pk]) == 0
    assert outbox.deliveries_send(now=at(10, 2)).count == 0
    assert Delivery.objects.count() == 2 and len(smtp.messages) == 1 and len(gateway.heard) == 1


def test_in_app_only_without_configured_channels_or_addresses(world, settings):
    settings.EMAIL_HOST, settings.SMS_GATEWAY_URL = "", ""
    User.objects.filter(pk=world.users[R.PATROL].pk).update(email="patrol@example.org", phone="13900001111")
    dispatched(world, reported(world, phone=PHONE))
    assert Notification.objects.filter(kind=K.DISPATCHED).count() == 1
    assert not Delivery.objects.exists()


def test_no_address_no_delivery_and_preferences_choose_channels(world, channels):
    patrol = world.users[R.PATROL]
    # No address: nothing besides the inbox.
    dispatched(world, reported(world))
    assert not Delivery.objects.filter(kind=K.DISPATCHED).exists()
    # The team's preference says SMS only for new tasks; the member's own says e-mail for send-backs only.
    User.objects.filter(pk=patrol.pk).update(email="patrol@example.org", phone="13900001111")
    NotifyPreference.objects.create(team=world.team, channels={"dispatched": ["sms"]})
    dispatched(world, reported(world))
    assert list(Delivery.objects.filter(kind=K.DISPATCHED).values_list("channel", flat=True)) == ["sms"]
    NotifyPreference.objects.create(user=patrol, channels={"dispatched": []})
    dispatched(world, reported(world))
    assert Delivery.objects.filter(kind=K.DISPATCHED).count() == 1  # the user's own preference wins


def test_quiet_hours_hold_a_message_until_they_end(world, channels, gateway):
    User.objects.filter(pk=world.users[R.PATROL].pk).update(phone="13900001111")
    NotifyPreference.objects.create(team=world.team, quiet_from="22:00", quiet_to="07:00")
    dispatched(world, reported(world, when=at(23)), when=at(23, 10))
    (row,) = Delivery.objects.filter(kind=K.DISPATCHED)
    assert row.next_at == at(7, 0, day=25)
    assert outbox.deliveries_send(now=at(23, 11)).count == 0
    assert outbox.deliveries_send(now=at(6, 59, day=25)).count == 0
    assert outbox.deliveries_send(now=at(7, 0, day=25)).sent == 1 and len(gateway.heard) == 1


def test_quiet_until_spans_midnight_and_same_day():
    q = {"quiet_from": dtime(22), "quiet_to": dtime(7)}
    assert outbox.quiet_until(at=at(21, 59), **q) == at(21, 59)
    assert outbox.quiet_until(at=at(22, 0), **q) == at(7, 0, day=25)
    assert outbox.quiet_until(at=at(3, 0, day=25), **q) == at(7, 0, day=25)
    assert outbox.quiet_until(at=at(7, 0, day=25), **q) == at(7, 0, day=25)
    lunch = dict(
        quiet_from=datetime.strptime("12:00", "%H:%M").time(), quiet_to=datetime.strptime("13:30", "%H:%M").time()
    )
    assert outbox.quiet_until(at=at(12, 15), **lunch) == at(13, 30)
    assert outbox.quiet_until(at=at(13, 30), **lunch) == at(13, 30)


# --- the reporter's SMS ----------------------------------------------------------------------------------------


def test_reporter_gets_sms_when_filed_closed_and_reopened_with_nothing_private(world, channels, gateway):
    case = reported(world, phone=PHONE)
    u = world.users
    with time_machine.travel(at(10), tick=False):
        services.case_file(case_id=case.pk, actor=u[R.DISPATCHER])
        services.case_dispatch(case_id=case.pk, actor=u[R.DISPATCHER], team_id=world.team.pk)
        services.case_accept(case_id=case.pk, actor=u[R.PATROL])
        services.case_handle(case_id=case.pk, actor=u[R.PATROL], photos=[jpeg()])
        services.case_check(case_id=case.pk, actor=u[R.INSPECTOR], passed=True)
        services.case_close(case_id=case.pk, actor=u[R.SHIFT_LEADER])
        services.case_reopen(case_id=case.pk, actor=u[R.SHIFT_LEADER], reason="居民反映仍未清理")
    outbox.deliveries_send(now=at(10, 1))  # the reopen also e-mails the community's inspector
    texts = [b["content"] for b in gateway.bodies()]
    link = f"https://grid.example.org/report/track/{case.code}?token="
    assert texts[1].startswith(f"您反映的问题(编号{case.code},乱堆物堆料)已办结。查看结果并评价:{link}")
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", texts[1].removeprefix(texts[1][: texts[1].index(link) + len(link)]))
    assert texts[::2] == [
        f"您反映的问题(编号{case.code},乱堆物堆料)已立案受理,我们将尽快处置。",
        f"您反映的问题(编号{case.code},乱堆物堆料)已重新打开,我们将再次处置。",
    ]
    assert {b["mobile"] for b in gateway.bodies()} == {PHONE}
    for private in ("浦东大道", "3号楼", "王女士", "甲队", "居民反映仍未清理"):
        assert not any(private in t for t in texts)


def test_reporter_sms_waits_for_morning_and_none_without_sms(world, channels, gateway, settings):
    case = reported(world, phone=PHONE, when=at(22))
    with time_machine.travel(at(22, 5), tick=False):
        services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER])
    (row,) = Delivery.objects.filter(kind="reporter_filed")
    assert row.next_at == at(8, 0, day=25)

    settings.SMS_GATEWAY_URL = ""
    other = reported(world, phone=PHONE)
    with time_machine.travel(at(10), tick=False):
        services.case_file(case_id=other.pk, actor=world.users[R.DISPATCHER])
    assert not Delivery.objects.filter(case=other).exists()


# --- failures: retries with backoff, timeouts, refusals ---------------------------------------------------------


def test_gateway_down_case_write_succeeds_then_retries_with_backoff_until_it_comes_back(world, channels, gateway):
    gateway.status, gateway.answer = 500, b"gateway error"
    case = reported(world, phone=PHONE)
    with time_machine.travel(at(10), tick=False):
        filed = services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER])
    assert filed.status == S.FILED  # the write does not wait for, or fail on, the gateway
    (row,) = Delivery.objects.all()

    assert outbox.deliveries_send(now=at(10)).retried == 1
    row.refresh_from_db()
    assert (row.status, row.attempts, row.next_at) == ("pending", 1, at(10, 1))  # 60 s
    assert row.last_error == "HTTP 500: gateway error"
    assert outbox.deliveries_send(now=at(10, 0, second=59)).count == 0  # not due yet
    assert outbox.deliveries_send(now=at(10, 1)).retried == 1
    row.refresh_from_db()
    assert (row.attempts, row.next_at) == (2, at(10, 3))  # 120 s

    gateway.status, gateway.answer = 200, b'{"code": "0", "msg": "success"}'
    assert outbox.deliveries_send(now=at(10, 2)).count == 0
    assert outbox.deliveries_send(now=at(10, 3)).sent == 1
    row.refresh_from_db()
    assert (row.status, row.attempts, row.sent_at) == ("sent", 3, at(10, 3))
    assert attempts(row) == [
        (False, "", "HTTP 500: gateway error"),
        (False, "", "HTTP 500: gateway error"),
        (True, "HTTP 200", ""),
    ]
    assert [a.at for a in row.tries.all()] == [at(10), at(10, 1), at(10, 3)]
    assert len({body for _m, _p, _h, body in gateway.heard}) == 1 and len(gateway.heard) == 3


def test_a_gateway_answer_that_is_not_success_is_retried(world, channels, gateway):
    gateway.answer = b'{"code": "1001", "msg": "quota exceeded"}'
    case = reported(world, phone=PHONE)
    with time_machine.travel(at(10), tick=False):
        services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER])
    assert outbox.deliveries_send(now=at(10)).retried == 1
    (row,) = Delivery.objects.all()
    assert row.last_error == 'HTTP 200, not a success answer: {"code": "1001", "msg": "quota exceeded"}'


def test_a_slow_gateway_times_out(world, channels, gateway):
    channels.NOTIFY_TIMEOUT_SECONDS = 0.3
    gateway.delay = 2
    case = reported(world, phone=PHONE)
    with time_machine.travel(at(10), tick=False):
        services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER])
    started = time.monotonic()
    assert outbox.deliveries_send(now=at(10)).retried == 1
    assert time.monotonic() - started < 1.5
    (attempt,) = DeliveryAttempt.objects.all()
    assert (attempt.ok, attempt.error) == (False, "timeout after 0.3 s")
    assert 250 <= attempt.duration_ms < 1500


def test_a_refused_connection_is_retried_then_marked_failed(world, channels):
    channels.SMS_GATEWAY_URL = f"http://127.0.0.1:{free_port()}/sms"  # nothing listens there
    channels.NOTIFY_MAX_ATTEMPTS = 3
    case = reported(world, phone=PHONE)
    with time_machine.travel(at(10), tick=False):
        services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER])
    moments = [at(10), at(10, 1), at(10, 3)]
    assert [outbox.deliveries_send(now=m).retried for m in moments[:2]] == [1, 1]
    assert outbox.deliveries_send(now=moments[2]).failed == 1
    (row,) = Delivery.objects.all()
    assert (row.status, row.attempts) == ("failed", 3)
    assert all(e.startswith("connection failed:") and "refused" in e for _ok, _d, e in attempts(row))
    assert outbox.deliveries_send(now=at(12)).count == 0  # given up


def test_retry_delay_doubles_and_is_capped(settings):
    settings.NOTIFY_RETRY_SECONDS, settings.NOTIFY_RETRY_MAX_SECONDS = 60, 600
    assert [outbox.retry_delay(attempts=n).total_seconds() for n in range(1, 7)] == [60, 120, 240, 480, 600, 600]


# --- group robots -----------------------------------------------------------------------------------------------


def handling(world) -> Case:
    case = dispatched(world, reported(world))
    with time_machine.travel(at(10), tick=False):
        return services.case_accept(case_id=case.pk, actor=world.users[R.PATROL])


def test_an_escalation_posts_once_to_the_robot_of_that_levels_area_from_the_escalation_loop(
    world, robots_http, settings
):
    settings.EMAIL_HOST, settings.SMS_GATEWAY_URL = "", ""
    Robot.objects.create(
        name="梅园社区群",
        vendor="wecom",
        webhook_url=f"{robots_http.url}/cgi-bin/webhook/send?key=k1",
        area=world.community,
    )
    Robot.objects.create(name="街道群", vendor="wecom", webhook_url=f"{robots_http.url}/street", area=world.street)
    case = handling(world)
    out = io.StringIO()
    with time_machine.travel(at(15, 1), tick=False):
        call_command("cases_escalate", stdout=out)  # the loop's pass: escalate, then send
    assert "escalated 1" in out.getvalue() and "sent 1" in out.getvalue()
    ((method, path, _headers, _body),) = robots_http.heard
    assert (method, path) == ("POST", "/cgi-bin/webhook/send?key=k1")
    assert robots_http.bodies() == [
        {
            "msgtype": "text",
            "text": {"content": f"{case.code} 已升级至社区督办\n{WHAT}:超过处置时限,请督办"},
        }
    ]
    for minute in (2, 3):
        with time_machine.travel(at(15, minute), tick=False):
            call_command("cases_escalate", stdout=io.StringIO())
    assert len(robots_http.heard) == 1 and Delivery.objects.count() == 1
    # The next level (one span later) goes to the street's robot.
    with time_machine.travel(at(20, 1), tick=False):
        call_command("cases_escalate", stdout=io.StringIO())
    assert [p for _m, p, _h, _b in robots_http.heard] == ["/cgi-bin/webhook/send?key=k1", "/street"]


def test_escalation_to_a_supervisor_ignores_quiet_hours(world, channels, smtp):
    NotifyPreference.objects.create(user=world.supervisor, quiet_from="00:00", quiet_to="23:59")
    handling(world)
    with time_machine.travel(at(15, 1), tick=False):
        call_command("cases_escalate", stdout=io.StringIO())
    (row,) = Delivery.objects.filter(kind=K.ESCALATED, channel="email")
    assert (row.target, row.status, row.sent_at) == ("c_insp@example.org", "sent", at(15, 1))
    assert [m.rcpt_tos for m in smtp.messages] == [["c_insp@example.org"]]


def test_dingtalk_and_feishu_team_robots_sign_their_messages(world, robots_http, settings):
    settings.EMAIL_HOST, settings.SMS_GATEWAY_URL = "", ""
    Robot.objects.create(
        name="甲队钉钉", vendor="dingtalk", webhook_url=f"{robots_http.url}/robot/send?access_token=t1",
        secret="SECdd", team=world.team,
    )  # fmt: skip
    Robot.objects.create(
        name="甲队飞书", vendor="feishu", webhook_url=f"{robots_http.url}/open-apis/bot/v2/hook/h1",
        secret="fs-secret", team=world.team,
    )  # fmt: skip
    Robot.objects.create(name="乙队", vendor="wecom", webhook_url=f"{robots_http.url}/other", team=world.other_team)
    case = dispatched(world, reported(world))
    assert outbox.deliveries_send(now=at(10, 1)).sent == 2
    text = f"新任务 {case.code}\n{WHAT}:已派遣给你的队伍甲队,请签收"
    by_path = {urlsplit(p).path: (urlsplit(p).query, json.loads(b)) for _m, p, _h, b in robots_http.heard}
    assert set(by_path) == {"/robot/send", "/open-apis/bot/v2/hook/h1"}

    query, body = by_path["/robot/send"]
    assert body == {"msgtype": "text", "text": {"content": text}}
    q = parse_qs(query)
    expected = hmac.new(b"SECdd", f"{q['timestamp'][0]}\nSECdd".encode(), hashlib.sha256).digest()
    assert q["access_token"] == ["t1"] and base64.b64decode(q["sign"][0]) == expected

    _query, body = by_path["/open-apis/bot/v2/hook/h1"]
    expected = hmac.new(f"{body['timestamp']}\nfs-secret".encode(), b"", hashlib.sha256).digest()
    assert base64.b64decode(body.pop("sign")) == expected
    assert body == {"timestamp": body["timestamp"], "msg_type": "text", "content": {"text": text}}


def test_a_robot_that_refuses_is_retried_and_a_switched_off_one_fails_at_once(world, robots_http, settings):
    settings.EMAIL_HOST, settings.SMS_GATEWAY_URL = "", ""
    robots_http.answer = b'{"errcode": 93000, "errmsg": "invalid webhook url"}'
    robot = Robot.objects.create(name="甲队", vendor="wecom", webhook_url=f"{robots_http.url}/w", team=world.team)
    dispatched(world, reported(world))
    assert outbox.deliveries_send(now=at(10)).retried == 1
    (row,) = Delivery.objects.all()
    assert row.last_error == 'HTTP 200, robot refused: {"errcode": 93000, "errmsg": "invalid webhook url"}'
    Robot.objects.filter(pk=robot.pk).update(is_active=False)
    assert outbox.deliveries_send(now=at(10, 1)).failed == 1
    assert attempts(row)[-1] == (False, "", "the robot was removed or switched off")


# --- the command and the admin ----------------------------------------------------------------------------------


def test_deliveries_send_command_and_admin_pages(world, channels, gateway, client):
    case = reported(world, phone=PHONE)
    with time_machine.travel(at(10), tick=False):
        services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER])
    out = io.StringIO()
    with time_machine.travel(at(10, 1), tick=False):
        call_command("deliveries_send", stdout=out)
    assert out.getvalue().endswith(" 投递 sent 1, 重试 retry 0, 失败 failed 0\n")
    Robot.objects.create(name="梅园社区群", vendor="feishu", webhook_url="http://127.0.0.1:9/x", area=world.community)

    admin = UserFactory(username="root", role=R.ADMIN, is_staff=True, is_superuser=True)
    client.force_login(admin)
    row = Delivery.objects.get()
    for url in (
        "/admin/gridmgmt/delivery/",
        f"/admin/gridmgmt/delivery/{row.pk}/change/",
        "/admin/gridmgmt/robot/",
        "/admin/gridmgmt/robot/add/",
        "/admin/gridmgmt/notifypreference/",
    ):
        assert client.get(url).status_code == 200, url
    page = client.get(f"/admin/gridmgmt/delivery/{row.pk}/change/").content.decode()
    assert "HTTP 200" in page and PHONE in page

    Delivery.objects.filter(pk=row.pk).update(status=Delivery.Status.FAILED)
    response = client.post("/admin/gridmgmt/delivery/", {"action": "retry_now", "_selected_action": [row.pk]})
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 0)
    assert timedelta(0) <= row.next_at - row.created_at


@pytest.mark.django_db(transaction=True)
def test_a_row_another_sender_holds_is_skipped_not_waited_for(settings, gateway):
    settings.SMS_GATEWAY_URL, settings.EMAIL_HOST = f"{gateway.url}/sms", ""
    settings.NOTIFY_REPORTER_QUIET = ""
    world = world_build()
    case = reported(world, phone=PHONE)
    with time_machine.travel(at(10), tick=False):
        services.case_file(case_id=case.pk, actor=world.users[R.DISPATCHER])
    (row,) = Delivery.objects.all()
    with row_locked_elsewhere(Delivery.objects.all(), row.pk):
        started = time.monotonic()
        assert outbox.deliveries_send(now=at(10, 1)).count == 0  # skipped at once, not waited for
        assert time.monotonic() - started < 2 and gateway.heard == []
    assert outbox.deliveries_send(now=at(10, 2)).sent == 1 and len(gateway.heard) == 1


# --- the reporter rates from the "closed" SMS ------------------------------------------------------------------


def test_the_closed_sms_link_lets_the_reporter_rate_and_the_original_token_still_works(world, channels, gateway):
    from rest_framework.test import APIClient

    from gridmgmt.tokens import tracking_token_check

    anonymous = APIClient()
    lon, lat = world.centre()
    answer = anonymous.post(
        "/api/public/reports/",
        {"category": world.category.code, "lon": lon, "lat": lat, "description": "垃圾", "reporter_phone": PHONE},
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    code, original = answer.json()["code"], answer.json()["tracking_token"]
    case = Case.objects.get(code=code)
    u = world.users
    with time_machine.travel(at(10), tick=False):
        services.case_file(case_id=case.pk, actor=u[R.DISPATCHER])
        services.case_dispatch(case_id=case.pk, actor=u[R.DISPATCHER], team_id=world.team.pk)
        services.case_accept(case_id=case.pk, actor=u[R.PATROL])
        services.case_handle(case_id=case.pk, actor=u[R.PATROL], photos=[jpeg()])
        services.case_check(case_id=case.pk, actor=u[R.INSPECTOR], passed=True)
        services.case_close(case_id=case.pk, actor=u[R.SHIFT_LEADER])
    # A replay of the close's deliveries writes no second SMS and keeps the token that SMS carries.
    closed = case.events.get(type=E.CLOSED)
    outbox.event_deliveries_write([closed], [{}])
    assert Delivery.objects.filter(kind="reporter_closed").count() == 1
    outbox.deliveries_send(now=at(10, 1))

    (text,) = [b["content"] for b in gateway.bodies() if "已办结" in b["content"]]
    url = urlsplit(re.search(r"https://\S+", text).group(0))
    assert (url.netloc, url.path) == ("grid.example.org", f"/report/track/{code}")
    (sms_token,) = parse_qs(url.query)["token"]
    assert sms_token != original
    case.refresh_from_db()
    assert case.sms_token_hash == hashlib.sha256(sms_token.encode()).hexdigest()
    assert case.sms_token_hash != case.tracking_token_hash  # the original is kept, not replaced

    # The page the link opens works with it (the tracking page reads ?token=).
    assert anonymous.get(f"/report/track/{code}?token={sms_token}").status_code == 200
    rate = f"/api/public/cases/{code}/rate/"
    wrong = anonymous.post(rate, {"token": sms_token[:-1] + ("A" if sms_token[-1] != "A" else "B"), "satisfaction": 5})
    assert wrong.status_code == 403 and wrong.json()["code"] == "bad_token"
    rated = anonymous.post(rate, {"token": sms_token, "satisfaction": 5, "note": "很快"}, format="json")
    assert rated.status_code == 200, rated.json()
    case.refresh_from_db()
    assert case.satisfaction == 5 and case.events.filter(type=E.RATED).count() == 1

    # The reporter's original token still works: it says "not fixed".
    assert tracking_token_check(case=case, token=original) and tracking_token_check(case=case, token=sms_token)
    reopened = anonymous.post(f"/api/public/cases/{code}/reopen/", {"token": original, "reason": "又堆上了"})
    assert reopened.status_code == 200, reopened.json()
    assert Case.objects.get(pk=case.pk).status == S.FILED
