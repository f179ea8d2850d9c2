"""One sender per channel: e-mail, the SMS gateway, and the work-chat robots (企业微信, 钉钉, 飞书).

Each sender makes one network call with a timeout (settings.NOTIFY_TIMEOUT_SECONDS), returns a short
description of the answer ("HTTP 200", "250 OK") when the message was accepted, and raises `SendFailed` when it
was not (an error answer, a timeout, a refused connection): the outbox (gridmgmt.outbox) logs the attempt and
retries later. `SendRefused` means retrying cannot help (the channel is no longer configured, the robot was
switched off): the delivery is marked failed at once.

Why not apprise for the robots: apprise 2.2's `wecombot`, `dingtalk` and `feishu` plugins build the URL from a
key or token on the vendor's fixed host (qyapi.weixin.qq.com, oapi.dingtalk.com, open.feishu.cn), so they
can neither post to the webhook URL the operator pastes (an intranet relay or a private deployment such as
政务微信/专有钉钉 has another host) nor to a test receiver on 127.0.0.1. Each robot's message is a small
JSON document, so a formatter per vendor posting with `requests` (already pinned) does the job; the signing
of 钉钉 and 飞书 「加签」 follows the vendors' published recipes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from urllib.parse import quote, quote_plus

import requests
from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from gridmgmt.models import Channel


class SendFailed(Exception):
    """The message was not accepted this time; a later attempt may succeed."""


class SendRefused(SendFailed):
    """The message cannot be sent at all (not configured, robot switched off): do not retry."""


def _timeout() -> float:
    return float(settings.NOTIFY_TIMEOUT_SECONDS)


def channels_configured() -> frozenset[str]:
    """The personal channels the operator has set up (robots are configured one by one, as `Robot` rows)."""
    found = set()
    if settings.EMAIL_HOST:
        found.add(Channel.EMAIL.value)
    if settings.SMS_GATEWAY_URL:
        found.add(Channel.SMS.value)
    return frozenset(found)


# --- e-mail ------------------------------------------------------------------------------------------------


def email_send(*, to: str, subject: str, body: str) -> str:
    """One plain-text e-mail through Django's mail framework (EMAIL_* settings), within the timeout."""
    if not settings.EMAIL_HOST:
        raise SendRefused("e-mail is not configured (EMAIL_HOST)")
    try:
        connection = get_connection(timeout=_timeout())
        EmailMessage(subject=subject, body=body, to=[to], connection=connection).send(fail_silently=False)
    except (OSError, ValueError) as exc:  # smtplib's errors are OSErrors; so are timeouts and refusals
        raise SendFailed(f"{type(exc).__name__}: {exc}") from exc
    return "accepted"


# --- HTTP (SMS gateway, robots) ------------------------------------------------------------------------------


def _http(method: str, url: str, **kwargs) -> requests.Response:
    try:
        return requests.request(method, url, timeout=_timeout(), allow_redirects=False, **kwargs)
    except requests.Timeout as exc:
        raise SendFailed(f"timeout after {_timeout():g} s") from exc
    except requests.ConnectionError as exc:
        raise SendFailed(f"connection failed: {exc}") from exc
    except requests.RequestException as exc:
        raise SendFailed(f"{type(exc).__name__}: {exc}") from exc


def _excerpt(response: requests.Response) -> str:
    return response.text[:200]


def _fill(template: str, *, escape, phone: str, text: str) -> str:
    return template.replace("{phone}", escape(phone)).replace("{text}", escape(text))


def _json_escape(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


def sms_send(*, phone: str, text: str) -> str:
    """One SMS through the gateway: SMS_GATEWAY_URL / _METHOD / _CONTENT_TYPE / _BODY / _HEADERS, accepted on a
    2xx answer whose body matches SMS_GATEWAY_SUCCESS (when set)."""
    url = settings.SMS_GATEWAY_URL
    if not url:
        raise SendRefused("SMS is not configured (SMS_GATEWAY_URL)")
    text = f"{settings.SMS_SIGNATURE}{text}"
    headers = json.loads(settings.SMS_GATEWAY_HEADERS) if settings.SMS_GATEWAY_HEADERS else {}
    url = _fill(url, escape=lambda v: quote(v, safe=""), phone=phone, text=text)
    method = settings.SMS_GATEWAY_METHOD
    data = None
    if method != "GET":
        content_type = settings.SMS_GATEWAY_CONTENT_TYPE
        escape = _json_escape if "json" in content_type else quote_plus if "form" in content_type else str
        data = _fill(settings.SMS_GATEWAY_BODY, escape=escape, phone=phone, text=text).encode()
        headers = {"Content-Type": f"{content_type}; charset=utf-8", **headers}
    response = _http(method, url, data=data, headers=headers)
    if not 200 <= response.status_code < 300:
        raise SendFailed(f"HTTP {response.status_code}: {_excerpt(response)}")
    if settings.SMS_GATEWAY_SUCCESS and not re.search(settings.SMS_GATEWAY_SUCCESS, response.text):
        raise SendFailed(f"HTTP {response.status_code}, not a success answer: {_excerpt(response)}")
    return f"HTTP {response.status_code}"


# --- work-chat robots -------------------------------------------------------------------------------------------


def _hmac_b64(key: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def wecom_payload(*, text: str) -> dict:
    """企业微信群机器人: a text message (the key is part of the webhook URL; no signing)."""
    return {"msgtype": "text", "text": {"content": text}}


def dingtalk_request(*, url: str, text: str, secret: str, now: float) -> tuple[str, dict]:
    """钉钉自定义机器人: a text message; with 「加签」, `timestamp` (ms) and `sign` = base64(HMAC-SHA256 of
    "timestamp\\nsecret" keyed by the secret) are added to the URL."""
    if secret:
        timestamp = str(int(now * 1000))
        sign = _hmac_b64(secret.encode(), f"{timestamp}\n{secret}".encode())
        url = f"{url}{'&' if '?' in url else '?'}timestamp={timestamp}&sign={quote_plus(sign)}"
    return url, {"msgtype": "text", "text": {"content": text}}


def feishu_payload(*, text: str, secret: str, now: float) -> dict:
    """飞书自定义机器人: a text message; with 「签名校验」, `timestamp` (s) and `sign` = base64(HMAC-SHA256 of an
    empty message keyed by "timestamp\\nsecret") go in the body."""
    payload: dict = {"msg_type": "text", "content": {"text": text}}
    if secret:
        timestamp = str(int(now))
        payload = {"timestamp": timestamp, "sign": _hmac_b64(f"{timestamp}\n{secret}".encode(), b""), **payload}
    return payload


def robot_send(*, vendor: str, url: str, secret: str, text: str) -> str:
    """Post `text` to a group robot's webhook. Accepted on HTTP 2xx with the vendor's success code in the JSON
    answer (企业微信/钉钉 `errcode` 0, 飞书 `code` 0 — older 飞书 answers say `StatusCode` 0)."""
    now = time.time()
    if vendor == Channel.WECOM:
        payload = wecom_payload(text=text)
    elif vendor == Channel.DINGTALK:
        url, payload = dingtalk_request(url=url, text=text, secret=secret, now=now)
    elif vendor == Channel.FEISHU:
        payload = feishu_payload(text=text, secret=secret, now=now)
    else:
        raise SendRefused(f"unknown robot type {vendor!r}")
    body = json.dumps(payload, ensure_ascii=False).encode()
    response = _http("POST", url, data=body, headers={"Content-Type": "application/json; charset=utf-8"})
    if not 200 <= response.status_code < 300:
        raise SendFailed(f"HTTP {response.status_code}: {_excerpt(response)}")
    try:
        answer = response.json()
    except ValueError:
        raise SendFailed(f"HTTP {response.status_code}, not JSON: {_excerpt(response)}") from None
    code = answer.get("errcode", answer.get("code", answer.get("StatusCode"))) if isinstance(answer, dict) else None
    if code != 0:
        raise SendFailed(f"HTTP {response.status_code}, robot refused: {_excerpt(response)}")
    return f"HTTP {response.status_code}"
