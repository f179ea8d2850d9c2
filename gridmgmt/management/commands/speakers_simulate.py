"""Stand in for the street loudspeakers of the demo: `manage.py speakers_simulate [--port 8765]` answers every
POST like an IP speaker (200) and prints what it would have said — the text of a text-mode speaker, the length of
a WAV for an audio-mode one. The demo's speakers point here (gridmgmt.demo.SPEAKER_URL); listens on 127.0.0.1."""

import io
import json
import urllib.parse
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.core.management.base import BaseCommand


def _heard(content_type: str, body: bytes) -> str:
    if content_type.startswith("audio/"):
        with wave.open(io.BytesIO(body)) as w:
            return f"WAV {w.getnframes() / w.getframerate():.1f} s"
    if content_type.startswith("application/json"):
        data = json.loads(body)
    else:
        data = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
    return f"{data.get('text')} ×{data.get('repeat')}"


class Command(BaseCommand):
    help = "Answer the demo's loudspeaker calls on 127.0.0.1 (prints what each speaker would say)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8765)

    def handle(self, *args, port: int, **options):
        out = self.stdout

        class Speaker(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    heard = _heard(self.headers.get("Content-Type", ""), body)
                    status = 200
                except (ValueError, EOFError, wave.Error) as exc:
                    heard, status = f"unreadable: {exc}", 400
                out.write(f"{self.path} {heard}")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}' if status == 200 else b'{"ok": false}')

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", port), Speaker)
        out.write(f"speakers listening on http://127.0.0.1:{port}/speakers/<code> (Ctrl-C stops)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
