"""What the WHOOP clients raise; the API layer maps these to problems, never the clients.

Each class carries `code`, the stable snake_case word an answer (a sync's `error`) may show:
class names are internal and never reach a public answer.

WhoopError
├── WhoopTransportError      network failure or timeout: the call may or may not have happened
├── WhoopServerError         5xx
├── WhoopRateLimited         429, with the seconds to wait
├── WhoopAuthError           401 from the data API: the access token is not (or no longer) valid
├── WhoopForbidden           403, e.g. a deactivated membership
├── WhoopNotFound            404
├── WhoopBadResponse         a body that does not parse as WHOOP documents it
└── WhoopOAuthError          the token endpoint refused (`error` holds the RFC 6749 code)
    └── WhoopInvalidGrant    the code or refresh token is used, expired or revoked
"""

from __future__ import annotations

from typing import ClassVar


class WhoopError(Exception):
    """Any failure talking to WHOOP."""

    code: ClassVar[str] = "whoop_error"


class WhoopTransportError(WhoopError):
    """The request failed in transit or timed out."""

    code = "whoop_unreachable"


class WhoopServerError(WhoopError):
    """WHOOP answered 5xx."""

    code = "whoop_server_error"

    def __init__(self, status_code: int) -> None:
        super().__init__(f"WHOOP answered {status_code}")
        self.status_code = status_code


class WhoopRateLimited(WhoopError):
    """WHOOP answered 429."""

    code = "whoop_rate_limited"

    def __init__(self, retry_after_s: float | None) -> None:
        super().__init__("WHOOP rate limit reached")
        self.retry_after_s = retry_after_s


class WhoopAuthError(WhoopError):
    """The data API refused the access token."""

    code = "whoop_token_refused"


class WhoopForbidden(WhoopError):
    """The data API refused the member (e.g. `deactivated_user`)."""

    code = "whoop_forbidden"


class WhoopNotFound(WhoopError):
    """No such record or resource."""

    code = "whoop_not_found"


class WhoopBadResponse(WhoopError):
    """WHOOP's answer does not have the documented shape."""

    code = "whoop_bad_response"


class WhoopOAuthError(WhoopError):
    """The OAuth token endpoint refused the request."""

    code = "whoop_oauth_refused"

    def __init__(self, error: str, status_code: int) -> None:
        super().__init__(f"WHOOP OAuth error {error!r} ({status_code})")
        self.error = error
        self.status_code = status_code


class WhoopInvalidGrant(WhoopOAuthError):
    """The authorization code or refresh token is not valid (used, expired or revoked)."""

    code = "whoop_invalid_grant"
