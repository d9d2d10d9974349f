"""The FastAPI side of user auth: the bearer-token dependency and the per-user access rule."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from gateway.auth.verifier import BEARER_CHALLENGE, Caller, TokenVerifier
from shared.errors import Forbidden, Unauthorized


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
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Caller:
    """The verified caller of a public endpoint (401 without a valid bearer token)."""
    token = bearer_token(authorization)
    if token is None:
        raise Unauthorized(
            "A bearer access token is required.",
            code="missing_token",
            headers=BEARER_CHALLENGE,
        )
    verifier = getattr(request.app.state, "verifier", None)
    if not isinstance(verifier, TokenVerifier):
        raise RuntimeError("app.state.verifier is not set: build it in the lifespan")
    return await verifier.verify(token)


CallerDep = Annotated[Caller, Depends(current_caller)]
