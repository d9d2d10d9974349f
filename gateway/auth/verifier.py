"""Verification of Supabase access tokens: HS256 with the project secret, or RS256/ES256 via JWKS.

One verifier runs in exactly one of the two modes, so a token can never pick between a symmetric
and an asymmetric check (the algorithm-confusion attack). With an issuer configured, a token's
`iss` must equal it, so a token another Supabase project signed is refused. Rejections carry a
fixed detail: never the token, the key or PyJWT's message.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx2
import jwt
import structlog

from gateway.auth.jwks import JwksCache
from shared.contracts import USER_ID_PATTERN
from shared.errors import Unauthorized

log = structlog.get_logger()

BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}
HS_ALGORITHMS = frozenset({"HS256"})
JWKS_ALGORITHMS = frozenset({"RS256", "ES256"})

_USER_ID = re.compile(USER_ID_PATTERN)
# Expiry is checked against the injected clock below, so PyJWT's wall-clock checks are off;
# it still verifies the signature, the audience and that the required claims are present.
_DECODE_OPTIONS: jwt.types.Options = {
    "require": ["exp", "sub", "aud"],
    "verify_signature": True,
    "verify_aud": True,
    "verify_sub": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_iss": False,
}


@dataclass(frozen=True)
class Caller:
    """Who sent a request, as proven by their access token."""

    user_id: str
    role: str | None
    is_service: bool


def _reject(reason: str, *, expired: bool = False) -> NoReturn:
    log.info("auth.token_rejected", reason=reason)
    code, detail = (
        ("token_expired", "The access token has expired.")
        if expired
        else ("invalid_token", "The access token is invalid.")
    )
    # `from None`: PyJWT's exception, whose text may quote the token, stays out of tracebacks.
    raise Unauthorized(detail, code=code, headers=BEARER_CHALLENGE) from None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class TokenVerifier:
    """Checks a Supabase access token's signature, `exp`, `aud`, `sub` and, if set, `iss`."""

    def __init__(
        self,
        *,
        audience: str,
        issuer: str | None = None,
        hs256_secret: str | None = None,
        jwks_url: str | None = None,
        http: httpx2.AsyncClient | None = None,
        leeway_s: float = 30.0,
        jwks_ttl_s: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not audience:
            raise ValueError("TokenVerifier needs an audience")
        self._audience = audience
        # A blank issuer is no issuer: the check is on only when one is configured.
        self._issuer = (issuer or "").strip() or None
        self._options = _DECODE_OPTIONS
        if self._issuer is not None:
            self._options = {
                **_DECODE_OPTIONS,
                "require": [*_DECODE_OPTIONS["require"], "iss"],
                "verify_iss": True,
            }
        self._leeway_s = leeway_s
        self._clock = clock
        self._secret: str | None = None
        self._jwks: JwksCache | None = None
        if jwks_url:
            # The JWKS wins when both are configured: asymmetric only, never a mix.
            self._jwks = JwksCache(jwks_url, http=http, ttl_s=jwks_ttl_s, clock=clock)
        elif hs256_secret:
            self._secret = hs256_secret
        else:
            raise ValueError("TokenVerifier needs hs256_secret or jwks_url")

    @property
    def algorithms(self) -> frozenset[str]:
        """The only `alg` values this verifier accepts."""
        return HS_ALGORITHMS if self._jwks is None else JWKS_ALGORITHMS

    async def verify(self, token: str) -> Caller:
        """The caller a valid token proves; raises `Unauthorized` for any other token."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            _reject("malformed")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            _reject("algorithm_not_allowed")
        key = await self._key_for(alg, header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                options=self._options,
            )
        except jwt.PyJWTError as exc:
            # The class name says enough; PyJWT's text may quote claims or keys.
            _reject(type(exc).__name__)
        self._check_time(claims)
        return self._to_caller(claims)

    async def aclose(self) -> None:
        """Release the JWKS HTTP client when the verifier made it."""
        if self._jwks is not None:
            await self._jwks.aclose()

    async def _key_for(self, alg: str, kid: object) -> str | jwt.PyJWK:
        if self._jwks is None:
            assert self._secret is not None
            return self._secret
        if not isinstance(kid, str) or not kid:
            _reject("missing_kid")
        key = await self._jwks.get_key(kid)
        if key is None:
            if self._jwks.is_empty:
                log.warning("auth.jwks_unavailable")
                _reject("jwks_unavailable")
            _reject("unknown_kid")
        if key.algorithm_name != alg:
            _reject("algorithm_key_mismatch")
        return key

    def _check_time(self, claims: Mapping[str, Any]) -> None:
        exp, nbf = claims["exp"], claims.get("nbf")
        if not _is_number(exp) or (nbf is not None and not _is_number(nbf)):
            _reject("bad_time_claim")
        now = self._clock()
        if exp <= now - self._leeway_s:
            _reject("expired", expired=True)
        if nbf is not None and nbf > now + self._leeway_s:
            _reject("not_yet_valid")

    @staticmethod
    def _to_caller(claims: Mapping[str, Any]) -> Caller:
        sub = claims.get("sub")
        if not isinstance(sub, str) or _USER_ID.fullmatch(sub) is None:
            _reject("bad_subject")
        role = claims.get("role")
        role = role if isinstance(role, str) else None
        return Caller(user_id=sub, role=role, is_service=role == "service_role")
