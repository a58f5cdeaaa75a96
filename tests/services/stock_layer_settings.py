"""`local` settings with channels-redis's stock layer, for showing the burst it cannot take."""

from config.settings.local import *  # noqa: F403
from config.settings.local import CHANNEL_LAYERS

_STOCK_OPTIONS = ("hosts", "prefix", "expiry", "group_expiry")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            name: value
            for name, value in CHANNEL_LAYERS["default"]["CONFIG"].items()
            if name in _STOCK_OPTIONS
        },
    }
}
