"""Real servers for tests: uvicorn processes on the test database, and throwaway redis-servers.

Tests that talk to these servers must commit their data (`django_db(transaction=True)`), because the
servers are other processes on other connections.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
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


def wait_until_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not answer {url} within {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Uvicorn:
    url: str
    proc: subprocess.Popen
    log: Path

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[4:]

    def stop(self) -> None:
        stop(self.proc)


def uvicorn_start(*, settings_dict: dict, log_dir: Path, env: dict | None = None) -> Uvicorn:
    """uvicorn serving gridmgmt.asgi on a free 127.0.0.1 port, on the database of `settings_dict`."""
    port = free_port()
    full_env = {
        **os.environ,
        "DATABASE_URL": database_url(settings_dict),
        "DJANGO_SETTINGS_MODULE": "gridmgmt.settings",
        "DEBUG": "1",
        "SERVE_STATIC": "1",
        # tests replace the grid version stamp between tests: read it on every tile request
        "TILE_VERSION_SECONDS": "0",
        "PYTHONUNBUFFERED": "1",
        # Rate limits count in the shared Redis: a server of its own counts under a prefix of its own.
        "CACHE_KEY_PREFIX": f"test-{uuid.uuid4().hex}",
        **(env or {}),
    }
    full_env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the server keeps Django's async-safety guard
    log = log_dir / f"uvicorn-{port}.log"
    cmd = [sys.executable, "-m", "uvicorn", "gridmgmt.asgi:application", "--host", "127.0.0.1"]
    cmd += ["--ws-max-size", "65536"]  # the protocol's 64 KiB frame limit, before buffering
    cmd += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    server = Uvicorn(f"http://127.0.0.1:{port}", proc, log)
    try:
        wait_until_up(server.url + "/realtime/position/", proc, log)
    except Exception:
        server.stop()
        raise
    return server


@dataclass
class RedisServer:
    """A throwaway redis-server on its own unix socket (never the shared one)."""

    socket_path: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.socket_path.unlink(missing_ok=True)
        cmd = [binary, "--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        cmd += ["--save", "", "--appendonly", "no", "--dir", str(self.socket_path.parent)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(self.socket_path))
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("throwaway redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None
