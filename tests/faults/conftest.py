"""Faults survived (issue 13, README "Faults"): PostgreSQL restarted, Redis down, a worker killed with
kill -9, the media disk full — each against the real thing. Every module here is marked `faults`; they run
in `make test` by default, and `pytest -m "not faults"` leaves them out."""

from tests.realtime.conftest import hub_reader_released, streets  # noqa: F401 (fixtures used here)
