"""One factory for the shared outbound HTTP clients: one per upstream, built in the lifespan.

httpx2 timeouts are per phase; callers wrap each call in `asyncio.timeout()` for an end-to-end
bound.
"""

from __future__ import annotations

import httpx2

USER_AGENT = "health-backend/0.1 (+python-httpx2)"


def make_async_client(
    base_url: str,
    timeout_s: float,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
    headers: dict[str, str] | None = None,
    max_connections: int = 100,
) -> httpx2.AsyncClient:
    """A pooled client with a User-Agent (WHOOP's edge blocks requests without one) and timeouts."""
    return httpx2.AsyncClient(
        base_url=base_url,
        timeout=httpx2.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        limits=httpx2.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        headers={"User-Agent": USER_AGENT, **(headers or {})},
        transport=transport,
        follow_redirects=False,
    )
