"""Stand-ins for what the product posts to (street loudspeakers, the SMS gateway, group robots): a real HTTP
server on 127.0.0.1 each, in a thread of the test process (the live server of the browser tests posts
to it too). The `receivers` fixture (tests/conftest.py) starts them and stops them after the test."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple


class Heard(NamedTuple):
    """One request a receiver got."""

    method: str
    path: str
    headers: dict
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


@dataclass
class Receiver:
    """A device or service on 127.0.0.1 (an IP speaker, the SMS gateway, a group robot): answers `status` with
    `answer` (after `delay` seconds) and keeps what it was sent. Change the fields to make it fail or slow."""

    status: int = 200
    delay: float = 0.0
    answer: bytes = b"{}"
    heard: list[Heard] = field(default_factory=list)
    url: str = ""

    def bodies(self) -> list[dict]:
        return [json.loads(h.body) for h in self.heard]


def _serve(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver.heard.append(Heard(self.command, self.path, dict(self.headers), body))
            if receiver.delay:
                time.sleep(receiver.delay)
            try:
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(receiver.answer)))
                self.end_headers()
                self.wfile.write(receiver.answer)
            except OSError:  # the caller gave up waiting
                pass

        do_GET = do_POST

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


def receivers_running():
    """A factory `make(n, status=…, delay=…) -> [Receiver]` and the servers it started (to stop afterwards)."""
    servers: list[ThreadingHTTPServer] = []

    def make(n: int = 1, **kw) -> list[Receiver]:
        made = [Receiver(**kw) for _ in range(n)]
        servers.extend(_serve(r) for r in made)
        return made

    return make, servers
