"""The Supabase JWKS: fetched with httpx2, cached, refetched single-flight and at a bounded rate.

Only asymmetric signing keys are kept (`RSA` → RS256, `EC` P-256 → ES256), each bound to exactly
one algorithm, so a key published here can never be used as an HMAC secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx2
import jwt
import structlog

from shared.http import make_async_client

log = structlog.get_logger()

# Supabase publishes these; anything else in the set (notably `oct`) is ignored.
KEY_ALGORITHMS = {"RSA": "RS256", "EC": "ES256"}
MIN_REFETCH_INTERVAL_S = 30.0
# With no keys at all every token fails, so retry sooner, still at a bounded rate.
EMPTY_REFETCH_INTERVAL_S = 1.0
FETCH_TIMEOUT_S = 5.0


def parse_jwks(document: Any) -> dict[str, jwt.PyJWK]:
    """The usable signing keys of a JWKS document, by `kid`; unusable entries are skipped."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return {}
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        kid, alg = entry.get("kid"), KEY_ALGORITHMS.get(entry.get("kty", ""))
        if not isinstance(kid, str) or not kid or alg is None:
            continue
        # A key whose own `alg`, curve or use disagrees with its type is not one we can trust.
        if entry.get("alg", alg) != alg or entry.get("use", "sig") != "sig":
            continue
        if alg == "ES256" and entry.get("crv") != "P-256":
            continue
        try:
            keys[kid] = jwt.PyJWK(entry, algorithm=alg)
        except jwt.PyJWTError:
            continue
    return keys


class JwksCache:
    """Signing keys from one JWKS URL, cached for `ttl_s` and refreshed one fetch at a time."""

    def __init__(
        self,
        url: str,
        *,
        http: httpx2.AsyncClient | None,
        ttl_s: float,
        clock: Callable[[], float],
    ) -> None:
        self._url = url
        self._owns_http = http is None
        self._http = http or make_async_client("", FETCH_TIMEOUT_S)
        self._ttl_s = ttl_s
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._fetches_done = 0
        self._lock = asyncio.Lock()

    @property
    def is_empty(self) -> bool:
        """True while no key set has ever been fetched successfully."""
        return not self._keys

    async def get_key(self, kid: str) -> jwt.PyJWK | None:
        """The key with `kid`, refreshing the set when it is stale or lacks `kid`."""
        stale = (
            self._fetched_at is None or self._clock() - self._fetched_at >= self._ttl_s
        )
        # A new kid usually means rotation; the rate bound in `_may_fetch` stops forged kids
        # from turning every request into a fetch.
        if stale or kid not in self._keys:
            await self._refresh()
        return self._keys.get(kid)

    async def aclose(self) -> None:
        """Close the HTTP client if this cache made it."""
        if self._owns_http:
            await self._http.aclose()

    async def _refresh(self) -> None:
        seen = self._fetches_done
        async with self._lock:
            # A caller who arrived while a fetch ran shares its outcome (single-flight).
            if self._fetches_done != seen or not self._may_fetch():
                return
            self._attempted_at = self._clock()
            keys = await self._fetch()
            self._fetches_done += 1
            if keys:
                self._keys = keys
                self._fetched_at = self._clock()

    def _may_fetch(self) -> bool:
        if self._attempted_at is None:
            return True
        interval = EMPTY_REFETCH_INTERVAL_S if self.is_empty else MIN_REFETCH_INTERVAL_S
        return self._clock() - self._attempted_at >= interval

    async def _fetch(self) -> dict[str, jwt.PyJWK] | None:
        try:
            async with asyncio.timeout(FETCH_TIMEOUT_S):
                response = await self._http.get(self._url)
            document = response.json() if response.status_code == 200 else None
        except (httpx2.HTTPError, TimeoutError, ValueError) as exc:
            log.warning("auth.jwks_fetch_failed", reason=type(exc).__name__)
            return None
        if document is None:
            log.warning("auth.jwks_fetch_failed", status=response.status_code)
            return None
        keys = parse_jwks(document)
        if not keys:
            log.warning("auth.jwks_fetch_failed", reason="no_usable_keys")
            return None
        log.info("auth.jwks_refreshed", key_count=len(keys), kids=sorted(keys))
        return keys
