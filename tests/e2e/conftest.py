"""Browser tests: a real uvicorn server on pytest-django's test database, driven by Debian's Chromium.

- `live_server_url` (session): uvicorn in a subprocess on a free 127.0.0.1 port, its DATABASE_URL pointing
  at the test database. It sees only committed rows: create data in `@pytest.mark.django_db(transaction=True)`
  tests, or in a session fixture under `django_db_blocker.unblock()`.
- `browser` (module): Chromium with outside hosts unresolvable, so any request that leaves 127.0.0.1 fails
  and is recorded.
- `page` + `page_log`: a fresh context per test; `page_log` holds every request, failed request, HTTP error,
  console error and uncaught exception of that page.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Every host but 127.0.0.1 fails to resolve: a page that needs the internet shows it at once.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
LOCAL_HOSTS = {"127.0.0.1"}

# --- server ----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL (as dj_database_url reads it) for a Django connection's settings."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    host = quote(settings_dict.get("HOST") or "", safe="")  # a socket directory becomes %2Ftmp%2F…
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgis://{auth}{host}{port}/{quote(settings_dict['NAME'], safe='')}"


def _wait_until_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"uvicorn did not answer {url} within {timeout:.0f} s:\n{log.read_text()[-4000:]}")


@contextmanager
def uvicorn_serving(tmp_path_factory, *, name: str = "uvicorn", **env_extra: str) -> Iterator[str]:
    """A uvicorn process on the test database and a free port, stopped on exit (before pytest-django drops
    the database it is connected to). `env_extra` adds settings (e.g. another basemap) to this server only."""
    from django.db import connection

    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "DJANGO_SETTINGS_MODULE": "gridmgmt.settings",
        "DEBUG": "1",
        "SERVE_STATIC": "1",  # the vendored assets come from this same server
        # tests replace the grid version stamp between tests: read it on every tile request
        "TILE_VERSION_SECONDS": "0",
        "PYTHONUNBUFFERED": "1",
        # Rate limits count in the shared Redis: this run's server counts under a prefix of its own, so a
        # second run within the hour (or another session's) starts from zero.
        "CACHE_KEY_PREFIX": f"e2e-{uuid.uuid4().hex}",
        **env_extra,
    }
    _SERVER_CACHE_PREFIXES.add(env["CACHE_KEY_PREFIX"])
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the server keeps Django's async-safety guard
    log = tmp_path_factory.mktemp(name) / "uvicorn.log"
    cmd = [sys.executable, "-m", "uvicorn", "gridmgmt.asgi:application", "--host", "127.0.0.1"]
    cmd += ["--ws-max-size", "65536"]  # the protocol's 64 KiB frame limit, before buffering
    cmd += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url + "/", proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# The servers' cache key prefixes. Their cell tiles are cached under the grid's version stamp, which only a
# grid build replaces; tests make their cells with factories, new ids at the same places, so each test starts
# with the stamp gone (a missing stamp is made anew: no tile of an earlier test's cells is served).
_SERVER_CACHE_PREFIXES: set[str] = set()


@pytest.fixture(autouse=True)
def _servers_grid_version_dropped():
    if _SERVER_CACHE_PREFIXES:
        from django.core.cache import cache
        from django.core.cache.backends.base import default_key_func

        from geo.selectors import GRID_VERSION_KEY

        client = cache._cache.get_client(write=True)
        client.delete(*(default_key_func(GRID_VERSION_KEY, prefix, 1) for prefix in _SERVER_CACHE_PREFIXES))


@pytest.fixture(scope="session")
def live_server_url(django_db_setup, tmp_path_factory) -> Iterator[str]:
    with uvicorn_serving(tmp_path_factory) as url:
        yield url


# --- browser ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """Chromium for one test module (~0.5 s to start).

    Not session-wide: sync Playwright runs an asyncio loop in this thread for as long as it lives, which
    would change how every later test (async_to_sync, Django's async-safety guard) behaves.
    """
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium fonts-wqy-microhei)")
    from playwright.sync_api import sync_playwright

    # With Playwright's loop running here, Django would refuse the tests' own ORM calls as "async".
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class PageLog:
    """What one page did on the network and in its console."""

    requests: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (url, error text)
    http_errors: list[tuple[str, int]] = field(default_factory=list)  # (url, status >= 400)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    responses: dict[str, int] = field(default_factory=dict)

    def outside(self) -> list[str]:
        """Requests to anything but the local server (data: and blob: URLs never leave the browser)."""
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme not in {"data", "blob", "about"} and urlsplit(url).hostname not in LOCAL_HOSTS
        ]

    def matching(self, fragment: str) -> list[str]:
        return [url for url in self.requests if fragment in url]

    def problems(self) -> dict[str, list]:
        """Everything that should be empty on a healthy page."""
        return {
            "outside": self.outside(),
            "failed": self.failed,
            "http_errors": self.http_errors,
            "console_errors": self.console_errors,
            "page_errors": self.page_errors,
        }


def login(page, url: str, username: str, password: str = "demo1234") -> None:
    """Log `username` in through the real login form; the session stays with the page's browser context."""
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(lambda u: "/accounts/login/" not in u)


def record(page) -> PageLog:
    """Start recording a page's requests and errors; returns the log that fills up as the page runs."""
    log = PageLog()
    page.on("request", lambda request: log.requests.append(request.url))
    page.on("requestfailed", lambda request: log.failed.append((request.url, request.failure or "")))

    def on_response(response):
        log.responses[response.url] = response.status
        if response.status >= 400:
            log.http_errors.append((response.url, response.status))

    page.on("response", on_response)

    def on_console(msg):
        if msg.type == "error":
            where = (msg.location or {}).get("url", "")
            log.console_errors.append(f"{msg.text} [{where}]" if where else msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: log.page_errors.append(str(exc)))
    return log


@pytest.fixture
def browser_context(browser):
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(browser_context):
    return browser_context.new_page()


@pytest.fixture
def page_log(page) -> PageLog:
    return record(page)


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


@pytest.fixture(autouse=True)
def _contexts_closed(request):
    """Every browser context a test opened is closed before its database is flushed: a page left open keeps
    asking the live server, and such a read once deadlocked with the flush's TRUNCATE (a clean-clone run)."""
    yield
    browser = request.node.funcargs.get("browser")  # only a test that asked for the browser
    if browser is not None:
        for context in list(browser.contexts):
            context.close()
