"""Argument types shared by the management commands."""

import argparse
import math


def positive_seconds(value: str) -> float:
    """argparse `type=` for a duration: a positive, finite number of seconds (a bad one is a CommandError)."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (0 < seconds < math.inf):
        raise argparse.ArgumentTypeError("须为正数秒 (must be a positive number of seconds)")
    return seconds


def seconds_option(parser: argparse.ArgumentParser, flag: str, *, help: str) -> None:
    """An optional duration in seconds (None when not given), refused unless positive."""
    parser.add_argument(flag, type=positive_seconds, metavar="SECONDS", help=help)
