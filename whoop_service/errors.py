"""The WHOOP service's problems (subclasses of shared.errors, each with a stable code), and the
stable code of any failure (`error_code`), for answers that report one."""

from __future__ import annotations

from shared.errors import (
    AppError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    UpstreamError,
)
from whoop_service.whoop.budget import BudgetExhausted
from whoop_service.whoop.errors import WhoopError
from whoop_service.whoop.user_limits import UserQuotaExceeded


class WhoopNotConnected(NotFound):
    code = "not_connected"


class WhoopNeedsReauth(AppError):
    status_code = 409
    code = "needs_reauth"


class WhoopAccountLinked(Conflict):
    code = "whoop_account_linked"


class InvalidOAuthState(BadRequest):
    code = "invalid_state"


class InvalidCompletion(BadRequest):
    code = "invalid_completion"


class ConnectUserMismatch(Forbidden):
    code = "connect_user_mismatch"


class OAuthCodeRejected(BadRequest):
    code = "invalid_code"


class WhoopNotConfigured(ServiceUnavailable):
    code = "whoop_not_configured"


class WhoopUnavailable(UpstreamError):
    code = "whoop_unavailable"


class TokenRefreshPending(WhoopUnavailable):
    """A token refresh is under way and cannot finish before the caller's deadline.

    The refresh goes on in the background (a refresh token is single-use: abandoning the call
    could lose the new pair), and the caller answers from the database meanwhile.
    """

    code = "token_refresh_pending"


class AuthorizationDenied(BadRequest):
    code = "access_denied"


class SyncCooldown(TooManyRequests):
    code = "sync_cooldown"


class UserQuotaSpent(TooManyRequests):
    code = "user_quota_exceeded"


def error_code(exc: BaseException) -> str:
    """The stable snake_case word for a failure; never a class name (CONTRACT.md §9)."""
    if isinstance(exc, UserQuotaExceeded):
        return "user_quota_exceeded"
    if isinstance(exc, BudgetExhausted):
        return "rate_budget_exhausted"
    if isinstance(exc, AppError):
        return exc.instance_code
    if isinstance(exc, WhoopError):
        return exc.code
    return "internal_error"
