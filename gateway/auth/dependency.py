"""The FastAPI side of user auth: the bearer-token dependency and the per-user access rule.

A verified caller's request is counted against the per-user public rate limit here (§9): after
authentication, so a request without a valid token spends no one's quota, and once per request
however many dependencies ask for the caller (FastAPI caches it).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.auth.verifier import BEARER_CHALLENGE, Caller, TokenVerifier
from gateway.ratelimit import PublicRateLimiter
from shared.errors import Forbidden, Unauthorized
from shared.problems import problem_responses

# Documents the bearer scheme in OpenAPI; the header is parsed below, more strictly than FastAPI's.
_bearer = HTTPBearer(
    auto_error=False, bearerFormat="JWT", description="A Supabase access token."
)
# For routes taking a caller and a user id: a dependency cannot add responses to OpenAPI.
CALLER_RESPONSES = problem_responses(
    401,
    403,
    429,
    descriptions={
        401: "No valid bearer token (`missing_token`, `invalid_token`, `token_expired`).",
        403: "The token may not act for this user (`forbidden_user`).",
        429: "Over PUBLIC_RATE_LIMIT_PER_MINUTE requests by this user in a minute "
        "(`rate_limited`); `Retry-After` says in how many seconds to try again.",
    },
)


def check_user_access(caller: Caller, user_id: str) -> None:
    """Refuse (403 `forbidden_user`) unless `user_id` is the caller's or the caller is a service."""
    if caller.is_service or caller.user_id == user_id:
        return
    raise Forbidden("This token may not access another user.", code="forbidden_user")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value, or None when it is anything else."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


async def current_caller(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> Caller:
    """The verified caller of a public endpoint (401 without a valid bearer token)."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized(
            "A bearer access token is required.",
            code="missing_token",
            headers=BEARER_CHALLENGE,
        )
    verifier = getattr(request.app.state, "verifier", None)
    if not isinstance(verifier, TokenVerifier):
        raise RuntimeError("app.state.verifier is not set: build it in the lifespan")
    caller = await verifier.verify(token)
    limiter = getattr(request.app.state, "rate_limiter", None)
    if not isinstance(limiter, PublicRateLimiter):
        raise RuntimeError(
            "app.state.rate_limiter is not set: build it in the lifespan"
        )
    await limiter.check(caller.user_id)
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]
