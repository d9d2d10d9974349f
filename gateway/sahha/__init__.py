"""The gateway's Sahha side: an account-token client, day attribution and a short cache."""

from gateway.sahha.cache import (
    CachedDays,
    CacheKey,
    MemorySahhaCache,
    RedisSahhaCache,
    SahhaCache,
)
from gateway.sahha.client import SahhaClient, SahhaProfile, SahhaResult
from gateway.sahha.days import SahhaDay
from gateway.sahha.errors import SahhaError, SahhaStatus

__all__ = [
    "CacheKey",
    "CachedDays",
    "MemorySahhaCache",
    "RedisSahhaCache",
    "SahhaCache",
    "SahhaClient",
    "SahhaDay",
    "SahhaError",
    "SahhaProfile",
    "SahhaResult",
    "SahhaStatus",
]
