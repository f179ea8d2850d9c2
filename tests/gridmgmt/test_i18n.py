"""The English switch: the catalogue is complete and compiled, and key user paths answer in English when asked
(Accept-Language or the language cookie) and in Chinese by default."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from gridmgmt.models import User
from tests.gridmgmt.api.conftest import api_world_build, report

R = User.Role
LOCALE = Path(settings.BASE_DIR) / "locale" / "en" / "LC_MESSAGES"
_STRING = re.compile(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?) "(.*)"$|^"(.*)"$')
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), text)


def po_entries(path: Path) -> list[dict]:
    """Entries of a .po file as {"flags", "msgctxt", "msgid", "msgstr"}; obsolete (#~) entries are skipped."""
    entries, entry, key = [], None, None
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip():
            if entry and "msgid" in entry:
                entries.append(entry)
            entry, key = None, None
            continue
        entry = entry if entry is not None else {"flags": set()}
        if line.startswith("#,"):
            entry["flags"] |= {f.strip() for f in line[2:].split(",")}
        elif not line.startswith("#"):
            match = _STRING.match(line)
            assert match, f"unparsed .po line: {line!r}"
            if match.group(1):
                key = "msgstr" if match.group(1) == "msgstr[0]" else match.group(1)  # a plural's first form
                entry[key] = _unquote(match.group(2))
            else:
                entry[key] += _unquote(match.group(3))
    return entries


@pytest.fixture(scope="module")
def catalogue() -> list[dict]:
    return [e for e in po_entries(LOCALE / "django.po") if e["msgid"]]  # the header has an empty msgid


def _label(entry: dict) -> str:
    return f"{entry.get('msgctxt', '')}|{entry['msgid']}"


def test_every_message_has_english_and_none_is_fuzzy(catalogue):
    assert len(catalogue) > 400
    assert [_label(e) for e in catalogue if not e["msgstr"].strip()] == []
    assert [_label(e) for e in catalogue if "fuzzy" in e["flags"]] == []


def test_placeholders_survive_translation(catalogue):
    placeholder = re.compile(r"%\(\w+\)[sdf]|%[sdf]")
    wrong = [
        _label(e)
        for e in catalogue
        if sorted(placeholder.findall(e["msgid"])) != sorted(placeholder.findall(e["msgstr"]))
    ]
    assert wrong == []


def test_compiled_catalogue_matches_the_po(catalogue):
    # The .mo is committed (no build step compiles it), so it must not lag behind the .po.
    with (LOCALE / "django.mo").open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)._catalog
    key = lambda e: f"{e['msgctxt']}\x04{e['msgid']}" if "msgctxt" in e else e["msgid"]  # noqa: E731
    key_of = lambda e: (key(e), 0) if "msgid_plural" in e else key(e)  # noqa: E731 (plurals: by form)
    assert [_label(e) for e in catalogue if compiled.get(key_of(e)) != e["msgstr"]] == []


# --- user paths ---------------------------------------------------------------------------------------------


@pytest.fixture
def world(db):
    return api_world_build()


def ask(client, how: str | None) -> dict:
    """Ask for English by the Accept-Language header or the language cookie (None: ask for nothing, get Chinese).
    Returns the request kwargs to pass along."""
    if how == "cookie":
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return {"HTTP_ACCEPT_LANGUAGE": "en"} if how == "header" else {}


def both(english, chinese) -> list[tuple]:
    """Parameters: English asked for by header, then by cookie; Chinese when nothing is asked for."""
    return [("header", english), ("cookie", english), (None, chinese)]


@pytest.mark.parametrize(
    ("how", "message"),
    both("The case is “Reported”; you cannot archive it now", "案件当前状态为「已上报」,不能归档"),
)
def test_api_409_transition_error(world, how, message):
    case_id = report(world)["id"]
    client = world.client(R.SHIFT_LEADER)
    response = client.post(f"/api/cases/{case_id}/archive/", **ask(client, how))
    assert response.status_code == 409
    assert response.json()["detail"] == message


@pytest.mark.parametrize(
    ("how", "message"),
    [("header", "The role “Patrol member” cannot file a case"), (None, "角色「巡查队员」不能执行「立案」")],
)
def test_api_403_role_error(world, how, message):
    case_id = report(world)["id"]
    client = world.client(R.PATROL)
    response = client.post(f"/api/cases/{case_id}/file/", **ask(client, how))
    assert response.status_code == 403
    assert response.json()["detail"] == message


@pytest.mark.parametrize(
    ("how", "message"), [("header", "This location is outside the service area"), (None, "该位置不在服务范围内")]
)
def test_api_outside_service_area(world, how, message):
    client = world.client(R.RESIDENT)
    data = {"category": world.category.code, "lon": 121.0, "lat": 31.0}
    response = client.post("/api/cases/", data, format="json", **ask(client, how))
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["detail"]) == ("outside_service_area", message)


@pytest.mark.parametrize(("how", "label"), both("Reported", "已上报"))
def test_api_case_status_label(world, how, label):
    case_id = report(world)["id"]
    client = world.client(R.DISPATCHER)
    response = client.get(f"/api/cases/{case_id}/", **ask(client, how))
    assert response.status_code == 200
    assert response.json()["properties"]["status_label"] == label


@pytest.mark.parametrize(("how", "message"), both("service_code E9999 not found", "service_code E9999 不存在"))
def test_open311_error(db, how, message):
    client = Client()
    response = client.get("/open311/v2/services/E9999.json", **ask(client, how))
    assert response.status_code == 404
    assert response.json() == [{"code": 404, "description": message}]


@pytest.mark.parametrize(("how", "page"), both(("en", "Urban grid management"), ("zh-hans", "城市网格化管理")))
def test_home_page(db, how, page):
    lang, title = page
    client = Client()
    response = client.get("/", **ask(client, how))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<html lang="{lang}">' in html
    assert f"<h1>{title}</h1>" in html
