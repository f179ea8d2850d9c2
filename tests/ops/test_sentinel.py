"""Redis Sentinel (gridmgmt/redissentinel.py, settings REDIS_SENTINELS): a real redis-server and a real
sentinel monitoring it on free 127.0.0.1 ports; a Django process configured only by the environment finds
the master through the sentinel for both the cache and the channel layer."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"

PROBE = textwrap.dedent(
    """
    import asyncio, django
    django.setup()
    from channels.layers import get_channel_layer
    from django.conf import settings
    from django.core.cache import cache

    cache.set("sentinel-probe", 41, 30)
    assert cache.incr("sentinel-probe") == 42
    pool = cache._cache._get_connection_pool(True)
    print("cache", type(pool).__name__, pool.get_master_address())

    async def roundtrip():
        layer = get_channel_layer()
        name = await layer.new_channel()
        await layer.send(name, {"type": "probe", "n": 7})
        return await asyncio.wait_for(layer.receive(name), 5)

    print("layer", asyncio.run(roundtrip())["n"])
    """
)


def ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wait(port: int) -> None:
    deadline = time.monotonic() + 10
    while not ping(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing answers on {port}")
        time.sleep(0.05)


@pytest.fixture
def sentinel(tmp_path):
    master, sentinel_port = free_port(), free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor gridmgmt 127.0.0.1 {master} 1\nsentinel down-after-milliseconds gridmgmt 2000\n"
    )
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    server = [REDIS, "--port", str(master), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)]
    procs = [subprocess.Popen(server, **quiet)]
    try:
        wait(master)
        procs.append(subprocess.Popen([REDIS, str(conf), "--sentinel"], **quiet))
        wait(sentinel_port)
        yield master, sentinel_port
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


def test_cache_and_channel_layer_find_the_master_through_sentinel(sentinel):
    master, sentinel_port = sentinel
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CACHE_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="gridmgmt.settings",
        DEBUG="true",
        REDIS_URL="redis://127.0.0.1:1/0",  # nothing there: only the sentinel path can work
        REDIS_SENTINELS=f"127.0.0.1:{sentinel_port}",
        REDIS_SENTINEL_MASTER="gridmgmt",
    )
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[:2] == [f"cache SentinelConnectionPool ('127.0.0.1', {master})", "layer 7"]
