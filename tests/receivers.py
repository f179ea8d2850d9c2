"""Stand-ins for the street loudspeakers: a real HTTP server on 127.0.0.1 per speaker, in a thread of the test
process (the live server of the browser tests posts to it too). The `receivers` fixture (tests/conftest.py)
starts them and stops them after the test."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Heard:
    path: str
    content_type: str
    body: bytes


@dataclass
class Receiver:
    """An IP speaker on 127.0.0.1: answers `status` (after `delay` seconds) and keeps what it was sent."""

    status: int = 200
    delay: float = 0.0
    heard: list[Heard] = field(default_factory=list)
    url: str = ""


def _serve(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver.heard.append(Heard(self.path, self.headers.get("Content-Type", ""), body))
            if receiver.delay:
                time.sleep(receiver.delay)
            try:
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"{}")
            except OSError:  # the caller gave up waiting
                pass

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
