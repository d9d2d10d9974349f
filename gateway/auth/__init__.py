"""User auth of the public gateway: Supabase access tokens, verified in one mode only."""

from gateway.auth.dependency import CallerDep, check_user_access, current_caller
from gateway.auth.verifier import Caller, TokenVerifier

__all__ = [
    "Caller",
    "CallerDep",
    "TokenVerifier",
    "check_user_access",
    "current_caller",
]
