"""The street loudspeakers' gateway (街头语音呼叫喇叭): how a message reaches an IP speaker.

Each speaker says how it is spoken to (`geo.models.Speaker.Gateway`):
- `text_json` / `text_form`: the speaker reads the text aloud with its own TTS (most IP speakers do). We POST
  `{"text", "repeat", "speaker"}` to its URL as JSON (UTF-8) or as an urlencoded form.
- `audio_wav`: the speaker plays a file. We synthesise the text offline with espeak-ng's Mandarin voice
  (`espeak-ng -v cmn`, Debian package espeak-ng), repeat it `repeat` times with a short pause, and POST the
  WAV (`Content-Type: audio/wav`). One synthesis per call, whatever the number of speakers.

A 2xx answer is "delivered"; anything else (an HTTP error, a refused connection, no answer within
`SPEAKER_TIMEOUT_SECONDS`) is a failure with its reason. Speakers are sent to in parallel and the whole
delivery is bounded by the timeout: the dispatcher's request waits for the answer (they need to know at once
whether the street heard them, and a speaker on the intranet answers in milliseconds), but never longer than
about SPEAKER_TIMEOUT_SECONDS + the synthesis (~0.1 s). No proxy from the environment is used (speakers are on
the intranet) and redirects are not followed.

Results are language-neutral (`error` code + numbers); `delivery_message` words them in the request's
language.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import wave
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import asdict, dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from geo.models import Speaker

G = Speaker.Gateway
PAUSE_SECONDS = 0.8  # silence between two plays of the message in a synthesised file
MAX_WORKERS = 8
SYNTH_TIMEOUT = 10.0


class SynthesisFailed(Exception):
    pass


@dataclass(frozen=True)
class Delivery:
    """What one speaker answered. `error`: None, "timeout", "http" (with `status`), "connect", "synthesis"."""

    speaker: str  # the speaker's code
    name: str
    ok: bool
    error: str | None = None
    status: int | None = None
    ms: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def audio_synthesize(*, text: str, repeat: int = 1) -> bytes:
    """A WAV of `text` read by espeak-ng's Mandarin voice, `repeat` times with PAUSE_SECONDS between."""
    binary = shutil.which(settings.SPEAKER_ESPEAK)
    if binary is None:
        raise SynthesisFailed(f"{settings.SPEAKER_ESPEAK} not installed")
    try:
        # The text goes in on stdin: never read as an option, whatever it starts with.
        done = subprocess.run(
            [binary, "-v", settings.SPEAKER_VOICE, "--stdout"],
            input=text.encode(),
            capture_output=True,
            timeout=SYNTH_TIMEOUT,
            check=True,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        raise SynthesisFailed(str(exc)) from exc
    with wave.open(io.BytesIO(done.stdout)) as src:
        params = src.getparams()
        frames = src.readframes(src.getnframes())
    silence = b"\x00" * (int(params.framerate * PAUSE_SECONDS) * params.sampwidth * params.nchannels)
    out = io.BytesIO()
    with wave.open(out, "wb") as dst:
        dst.setnchannels(params.nchannels)
        dst.setsampwidth(params.sampwidth)
        dst.setframerate(params.framerate)
        dst.writeframes(silence.join([frames] * repeat))
    return out.getvalue()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 3xx is the speaker's answer, not somewhere else to post the message


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def _request(*, speaker: Speaker, text: str, repeat: int, audio: bytes | None) -> urllib.request.Request:
    fields = {"text": text, "repeat": repeat, "speaker": speaker.code}
    if speaker.gateway == G.AUDIO_WAV:
        body, content_type = audio, "audio/wav"
    elif speaker.gateway == G.TEXT_FORM:
        body, content_type = urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded; charset=utf-8"
    else:
        body, content_type = json.dumps(fields, ensure_ascii=False).encode(), "application/json; charset=utf-8"
    headers = {"Content-Type": content_type, "X-Speaker-Code": speaker.code, "User-Agent": "gridmgmt-speaker/1"}
    return urllib.request.Request(speaker.url, data=body, headers=headers, method="POST")


def _send(*, speaker: Speaker, text: str, repeat: int, audio: bytes | None, timeout: float) -> Delivery:
    started = time.monotonic()

    def result(ok: bool, error: str | None = None, status: int | None = None) -> Delivery:
        ms = round((time.monotonic() - started) * 1000)
        return Delivery(speaker=speaker.code, name=speaker.name, ok=ok, error=error, status=status, ms=ms)

    try:
        with _OPENER.open(_request(speaker=speaker, text=text, repeat=repeat, audio=audio), timeout=timeout) as r:
            r.read(4096)
            return result(200 <= r.status < 300, None if 200 <= r.status < 300 else "http", r.status)
    except urllib.error.HTTPError as exc:
        return result(False, "http", exc.code)
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return result(False, "timeout" if isinstance(reason, TimeoutError) else "connect")


def speakers_deliver(*, speakers: list[Speaker], text: str, repeat: int) -> list[Delivery]:
    """Send the message to every speaker at once; one Delivery each, in the order given. Returns within about
    SPEAKER_TIMEOUT_SECONDS (+ the synthesis): a speaker still busy then counts as timed out."""
    timeout = float(settings.SPEAKER_TIMEOUT_SECONDS)
    audio, synthesis_failed = None, False
    if any(s.gateway == G.AUDIO_WAV for s in speakers):
        try:
            audio = audio_synthesize(text=text, repeat=repeat)
        except SynthesisFailed:
            synthesis_failed = True
    results: dict[int, Delivery] = {}
    pool = ThreadPoolExecutor(max_workers=min(MAX_WORKERS, max(1, len(speakers))), thread_name_prefix="speaker")
    futures = {}
    for i, s in enumerate(speakers):
        if s.gateway == G.AUDIO_WAV and synthesis_failed:
            results[i] = Delivery(speaker=s.code, name=s.name, ok=False, error="synthesis")
        else:
            futures[pool.submit(_send, speaker=s, text=text, repeat=repeat, audio=audio, timeout=timeout)] = i
    futures_wait(futures, timeout=timeout + 1.0)
    pool.shutdown(wait=False, cancel_futures=True)
    for future, i in futures.items():
        if future.done() and not future.cancelled():
            results[i] = future.result()
        else:
            s = speakers[i]
            results[i] = Delivery(speaker=s.code, name=s.name, ok=False, error="timeout", ms=round(timeout * 1000))
    return [results[i] for i in range(len(speakers))]


def delivery_message(result: dict) -> str:
    """One speaker's outcome in the request's language (a stored result, Delivery.as_dict)."""
    if result.get("ok"):
        return _("已送达")
    error = result.get("error")
    if error == "timeout":
        return _("喇叭在 %(s)s 秒内没有应答") % {"s": f"{float(settings.SPEAKER_TIMEOUT_SECONDS):g}"}
    if error == "http":
        return _("喇叭返回错误 HTTP %(status)s") % {"status": result.get("status")}
    if error == "synthesis":
        return _("语音合成失败(espeak-ng 不可用)")
    return _("无法连接喇叭")
