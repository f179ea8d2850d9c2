"""Real-time knobs, from Django settings or the environment (settings win). Defaults are the documented ones."""

import os
from collections.abc import Callable

from django.conf import settings


def _knob(name: str, default: float, *, cast: Callable[[float], float] = float, doc: str) -> Callable[[], float]:
    """A reader for one knob: Django setting `name`, else environment variable `name`, else `default`."""

    def read():
        value = getattr(settings, name, None)
        if value is None:
            value = os.environ.get(name, default)
        return cast(float(value))

    read.__doc__ = f"{doc} ({name}, default {default})"
    return read


batch_seconds = _knob(
    "RT_BATCH_MS", 250, cast=lambda ms: ms / 1000, doc="At most one frame per scope per this interval"
)
poll_seconds = _knob(
    "RT_POLL_SECONDS",
    5,
    doc="Each scope also reads the log this often without a notification (Redis down, admin edits)",
)
replay_max = _knob(
    "RT_REPLAY_MAX", 1000, cast=int, doc="A reconnect that missed more events than this reloads its snapshot instead"
)
batch_max = _knob(
    "RT_BATCH_MAX", 500, cast=int, doc="Events per live frame; a bigger backlog goes out in several, one per interval"
)
heartbeat_seconds = _knob("RT_HEARTBEAT_SECONDS", 25, doc="Seconds between server heartbeats on an idle socket")
max_scopes = _knob("RT_MAX_SCOPES", 8, cast=int, doc="Scopes one socket may subscribe to")
max_frame_bytes = _knob("RT_MAX_FRAME_BYTES", 64 * 1024, cast=int, doc="Largest frame a client may send")
max_inbound_per_second = _knob("RT_MAX_INBOUND_PER_SECOND", 10, cast=int, doc="Client frames per second per socket")
send_queue_frames = _knob(
    "RT_SEND_QUEUE", 200, cast=int, doc="Frames waiting for one slow socket before it is closed (it reconnects)"
)
position_interval_seconds = _knob(
    "RT_POSITION_SECONDS", 5, doc="At most one stored position per team per this interval"
)


def notify_group() -> str:
    """One channel-layer group per database: servers on other databases (tests, other sites) never mix."""
    from django.db import connection

    name = connection.settings_dict["NAME"]
    return "rt.notify." + "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))[:80]
