"""A Redis cache that degrades instead of failing (issue 12, finding 3).

The cache holds login rate-limit counters, used TOTP codes and the stuck report's slow
parts. When Redis is down, every operation falls back to this process's own memory cache:
pages render (the report computes what it would have read), logins work with rate limits
counted per process (see docs/decisions.md), and the outage is logged once when it starts
and once when it ends, not on every request.
"""

import logging

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

OUTAGE_ERRORS = (RedisError, OSError)


class ResilientRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._fallback = LocMemCache("portal-cache-fallback", {"TIMEOUT": params.get("TIMEOUT")})
        self._down = False

    def _either(self, name: str, *args, **kwargs):
        try:
            result = getattr(super(), name)(*args, **kwargs)
        except OUTAGE_ERRORS as exc:
            if not self._down:
                self._down = True
                logger.warning(
                    "cache unavailable (%s); using this process's memory until it answers",
                    type(exc).__name__,
                )
            return getattr(self._fallback, name)(*args, **kwargs)
        if self._down:
            self._down = False
            logger.warning("cache available again")
        return result

    def add(self, *args, **kwargs):
        return self._either("add", *args, **kwargs)

    def get(self, *args, **kwargs):
        return self._either("get", *args, **kwargs)

    def set(self, *args, **kwargs):
        return self._either("set", *args, **kwargs)

    def touch(self, *args, **kwargs):
        return self._either("touch", *args, **kwargs)

    def delete(self, *args, **kwargs):
        return self._either("delete", *args, **kwargs)

    def get_many(self, *args, **kwargs):
        return self._either("get_many", *args, **kwargs)

    def has_key(self, *args, **kwargs):
        return self._either("has_key", *args, **kwargs)

    def incr(self, *args, **kwargs):
        return self._either("incr", *args, **kwargs)

    def set_many(self, *args, **kwargs):
        return self._either("set_many", *args, **kwargs)

    def delete_many(self, *args, **kwargs):
        return self._either("delete_many", *args, **kwargs)

    def clear(self):
        return self._either("clear")
