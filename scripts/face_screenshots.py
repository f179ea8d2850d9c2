"""Screenshots of each face for the README: `make screenshots`.

    .venv/bin/python scripts/face_screenshots.py [--base http://127.0.0.1:8000] [--out docs]

Without --base it starts its own uvicorn on a free port on the configured database (the demo data).

Logs in as the demo users (password demo1234), opens each face in Debian's Chromium with outside hosts
blocked, waits until it has drawn, and writes docs/face-<name>.png. Console errors are printed and make the
script exit non-zero, so a broken face does not end up in the README unnoticed.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
# (name, user or None, path, viewport, wait-for JS expression)
FACES = [
    ("report", None, "/report/", (1280, 800), "window.gridmgmtMap !== undefined"),
    ("patrol", "patrol", "/patrol/", (412, 880), "document.querySelectorAll('#category option').length > 0"),
    ("wall", "wall", "/wall/", (1920, 1080), "window.gridmgmtWall && window.gridmgmtWall.rendered === true"),
    ("dispatch", "dispatcher", "/dispatch/", (1600, 900), "document.querySelectorAll('#queue li').length > 0"),
    ("login", None, "/accounts/login/", (1280, 800), "true"),
]


def login(context, base: str, user: str, password: str) -> None:
    page = context.new_page()
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    page.close()


@contextmanager
def server(base: str | None):
    """The given server, or our own uvicorn on a free port for the duration."""
    if base:
        yield base
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "uvicorn", "gridmgmt.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--ws-max-size", "65536"]  # the protocol's 64 KiB frame limit, before buffering
    env = {**os.environ, "SERVE_STATIC": "1"}
    proc = subprocess.Popen([*cmd, "--log-level", "warning", "--no-access-log"], cwd=root, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/accounts/login/", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("uvicorn did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default=None, help="a running server; default: start one")
    parser.add_argument("--out", default="docs")
    parser.add_argument("--password", default="demo1234")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    problems = 0
    with server(args.base) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        for name, user, path, (w, h), ready in FACES:
            if args.only and name not in args.only.split(","):
                continue
            context = browser.new_context(
                locale="zh-CN",
                timezone_id="Asia/Shanghai",
                viewport={"width": w, "height": h},
                geolocation={"latitude": 31.2235, "longitude": 121.5440},
                permissions=["geolocation"],
            )
            if user:
                login(context, base, user, args.password)
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m, errors=errors: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            page.goto(base + path, wait_until="networkidle")
            page.wait_for_function(ready, timeout=30_000)
            page.wait_for_timeout(800)  # tiles and the pulse animation settle
            if name == "dispatch":  # show a case with its photos, ranking and timeline
                page.locator("#queue li").first.click()
                page.wait_for_selector("#detail-body:not([hidden])")
                page.wait_for_timeout(800)
            target = out / f"face-{name}.png"
            page.screenshot(path=str(target))
            print(f"{target}: {'; '.join(errors) or 'ok'}")
            problems += len(errors)
            context.close()
        browser.close()
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
