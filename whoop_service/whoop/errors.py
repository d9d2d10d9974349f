"""What the WHOOP clients raise; the API layer maps these to problems, never the clients.

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


class WhoopError(Exception):
    """Any failure talking to WHOOP."""


class WhoopTransportError(WhoopError):
    """The request failed in transit or timed out."""


class WhoopServerError(WhoopError):
    """WHOOP answered 5xx."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"WHOOP answered {status_code}")
        self.status_code = status_code


class WhoopRateLimited(WhoopError):
    """WHOOP answered 429."""

    def __init__(self, retry_after_s: float | None) -> None:
        super().__init__("WHOOP rate limit reached")
        self.retry_after_s = retry_after_s


class WhoopAuthError(WhoopError):
    """The data API refused the access token."""


class WhoopForbidden(WhoopError):
    """The data API refused the member (e.g. `deactivated_user`)."""


class WhoopNotFound(WhoopError):
    """No such record or resource."""


class WhoopBadResponse(WhoopError):
    """WHOOP's answer does not have the documented shape."""


class WhoopOAuthError(WhoopError):
    """The OAuth token endpoint refused the request."""

    def __init__(self, error: str, status_code: int) -> None:
        super().__init__(f"WHOOP OAuth error {error!r} ({status_code})")
        self.error = error
        self.status_code = status_code


class WhoopInvalidGrant(WhoopOAuthError):
    """The authorization code or refresh token is not valid (used, expired or revoked)."""
