"""The project's settings with the channel layer named by FANOUT_LAYER (`core` or `pubsub`), for
`bench/fanout.py --layer` — the comparison behind the README's choice of layer."""

import os

from gridmgmt.settings import *  # noqa: F403
from gridmgmt.settings import REDIS_URL

LAYERS = {"core": "channels_redis.core.RedisChannelLayer", "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer"}
CHANNEL_LAYERS = {"default": {"BACKEND": LAYERS[os.environ["FANOUT_LAYER"]], "CONFIG": {"hosts": [REDIS_URL]}}}
