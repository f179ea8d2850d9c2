"""The project's settings with the naive intake of `bench/intake_naive.py` mounted at /bench/naive/cases/ in
front of the product's URLs, for `bench/intake.py`: one server answers both paths."""

from gridmgmt.settings import *  # noqa: F403

ROOT_URLCONF = "bench.intake_naive"
