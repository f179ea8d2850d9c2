"""Channel layer comparison behind the README's choice of layer: channels_redis' core layer vs its pub/sub layer,
carrying the hub's after-commit notices.

    .venv/bin/python bench/layers.py [--notices 500] [--rate 50] [--members 1 1000]

One sender (this process) `group_send`s small notices at `--rate`/s to a group; one receiver process holds
`members` channels in that group and receives on all of them. `members 1` is our design (one channel per
server process, the hub fans out); `members 1000` is a channel per socket (1,000 screens on one process).
Per layer and size: notice latency (send → received, every delivery), deliveries lost, and CPU seconds of
sender and receiver per notice and per delivery. Results: bench/results/layers.json.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LAYERS = {"core": "channels_redis.core.RedisChannelLayer", "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer"}


def _redis_url() -> str:
    env_file = ROOT / "var" / "local.env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            os.environ.setdefault(key.strip(), value.strip())
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def _layer(kind: str):
    import importlib

    module, _, name = LAYERS[kind].rpartition(".")
    return getattr(importlib.import_module(module), name)(hosts=[_redis_url()])


def _receiver(kind: str, group: str, members: int, expected: int, ready, out) -> None:
    import uvloop

    async def run():
        layer = _layer(kind)
        channels = [await layer.new_channel("bench.") for _ in range(members)]
        for ch in channels:
            await layer.group_add(group, ch)
        latencies: list[float] = []
        done = asyncio.Event()

        async def listen(ch):
            while True:
                message = await layer.receive(ch)
                latencies.append(time.time() - message["at"])
                if len(latencies) == expected:
                    done.set()

        listeners = [asyncio.create_task(listen(ch)) for ch in channels]  # noqa: F841 (kept referenced)
        await asyncio.sleep(0.5)  # subscriptions settle (pub/sub)
        cpu = time.process_time()
        ready.set()
        try:
            await asyncio.wait_for(done.wait(), 60)
        except TimeoutError:
            pass
        out.put({"cpu": time.process_time() - cpu, "latencies": latencies})
        out.close()
        out.join_thread()
        os._exit(0)  # no orderly unsubscribe of 1,000 channels

    uvloop.run(run())


def measure(kind: str, members: int, notices: int, rate: float) -> dict:
    import uvloop

    ctx = multiprocessing.get_context("spawn")
    ready, out = ctx.Event(), ctx.Queue()
    group = f"bench.layers.{kind}.{members}.{os.getpid()}"
    proc = ctx.Process(target=_receiver, args=(kind, group, members, notices * members, ready, out))
    proc.start()
    ready.wait(120)

    async def send():
        layer = _layer(kind)
        start = time.monotonic()
        cpu = time.process_time()
        for i in range(notices):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await layer.group_send(group, {"type": "rt.notify", "keys": ["all", "district:1"], "at": time.time()})
        return time.process_time() - cpu

    sender_cpu = uvloop.run(send())
    result = out.get(timeout=120)
    proc.join(10)
    lat = sorted(result["latencies"])

    def pct(p):
        return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000, 2) if lat else None

    deliveries = len(lat)
    return {
        "layer": kind,
        "members": members,
        "notices": notices,
        "deliveries": deliveries,
        "lost": notices * members - deliveries,
        "latency_ms": {"p50": pct(50), "p99": pct(99), "max": pct(100)},
        "sender_cpu_ms_per_notice": round(sender_cpu / notices * 1000, 3),
        "receiver_cpu_us_per_delivery": round(result["cpu"] / max(deliveries, 1) * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--notices", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--members", type=int, nargs="+", default=[1, 1000])
    args = parser.parse_args()
    runs = []
    for members in args.members:
        for kind in LAYERS:
            runs.append(measure(kind, members, args.notices, args.rate))
            print(runs[-1], flush=True)
    from bench._setup import results_write

    path = results_write("layers", {"args": vars(args), "runs": runs, "load_average_at_end": os.getloadavg()})
    print("written", path)


if __name__ == "__main__":
    main()
