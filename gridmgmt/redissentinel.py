"""Redis behind Sentinel for the cache (README, "Scale-out"): Django's RedisCache builds its connection pool
with `pool_class.from_url(LOCATION, **OPTIONS)`; this pool class asks the sentinels for the current master
instead, and follows a failover. The channel layer (channels-redis) has the same built in (settings.py gives
it `master_name` and `sentinels`)."""

from __future__ import annotations

from redis.sentinel import Sentinel, SentinelConnectionPool


def sentinels_parse(text: str) -> list[tuple[str, int]]:
    """ "10.0.0.21:26379,10.0.0.22:26379" → [("10.0.0.21", 26379), ("10.0.0.22", 26379)]."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        host, _, port = item.rpartition(":")
        pairs.append((host or item, int(port) if host else 26379))
    return pairs


class SentinelPool:
    @classmethod
    def from_url(cls, url: str, *, master_name: str, sentinels: list, password: str | None = None, db: int = 0,
                 **options) -> SentinelConnectionPool:  # fmt: skip
        sentinel_kwargs = {"password": password} if password else None
        return SentinelConnectionPool(
            master_name,
            Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs),
            db=db,
            password=password,
            **options,
        )
