"""The WHOOP service's problems (subclasses of shared.errors, each with a stable code)."""

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


class AuthorizationDenied(BadRequest):
    code = "access_denied"


class SyncCooldown(TooManyRequests):
    code = "sync_cooldown"


class UserQuotaSpent(TooManyRequests):
    code = "user_quota_exceeded"
