"""Real-time knobs, from Django settings or the environment (settings win). Defaults are the documented ones."""

import os

from django.conf import settings


def _num(name: str, default: float) -> float:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, default)
    return float(value)


def batch_seconds() -> float:
    """At most one frame per scope per this interval (default 250 ms)."""
    return _num("RT_BATCH_MS", 250) / 1000


def poll_seconds() -> float:
    """Each scope also reads the log this often without a notification (Redis down, admin edits)."""
    return _num("RT_POLL_SECONDS", 5)


def replay_max() -> int:
    """A reconnect that missed more events than this is told to reload its snapshot instead."""
    return int(_num("RT_REPLAY_MAX", 1000))


def batch_max() -> int:
    """Events per live frame; a bigger backlog goes out in several frames, one per interval."""
    return int(_num("RT_BATCH_MAX", 500))


def heartbeat_seconds() -> float:
    return _num("RT_HEARTBEAT_SECONDS", 25)


def max_scopes() -> int:
    return int(_num("RT_MAX_SCOPES", 8))


def max_frame_bytes() -> int:
    return int(_num("RT_MAX_FRAME_BYTES", 64 * 1024))


def max_inbound_per_second() -> int:
    return int(_num("RT_MAX_INBOUND_PER_SECOND", 10))


def send_queue_frames() -> int:
    """Frames waiting for one slow socket before it is closed (it reconnects and catches up)."""
    return int(_num("RT_SEND_QUEUE", 200))


def position_interval_seconds() -> float:
    """At most one stored position per team per this interval."""
    return _num("RT_POSITION_SECONDS", 5)


def notify_group() -> str:
    """One channel-layer group per database: servers on other databases (tests, other sites) never mix."""
    from django.db import connection

    name = connection.settings_dict["NAME"]
    return "rt.notify." + "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))[:80]
