"""User auth of the public gateway: Supabase access tokens, verified in one mode only."""

from gateway.auth.dependency import (
    CALLER_RESPONSES,
    CallerDep,
    check_user_access,
    current_caller,
)
from gateway.auth.verifier import Caller, TokenVerifier

__all__ = [
    "CALLER_RESPONSES",
    "Caller",
    "CallerDep",
    "TokenVerifier",
    "check_user_access",
    "current_caller",
]
