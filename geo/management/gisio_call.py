"""What gis_import and gis_export share: call a geo.gisio function with the command's options."""

from collections.abc import Callable, Iterable

from django.core.management.base import CommandError

from geo.gisio import GisIOError


def gisio_call(fn: Callable, opts: dict, names: Iterable[str]):
    """`fn(name=opts[name], …)` for each of `names`; a GisIOError becomes the command's error."""
    try:
        return fn(**{name: opts[name] for name in names})
    except GisIOError as exc:
        raise CommandError(str(exc)) from exc
