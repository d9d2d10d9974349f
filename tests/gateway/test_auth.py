"""Supabase access-token verification: both modes, the JWKS cache, the FastAPI dependency."""

import asyncio
import base64
import hashlib
import hmac
import json
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from structlog.testing import capture_logs

from gateway.auth import (
    Caller,
    CallerDep,
    TokenVerifier,
    check_user_access,
)
from gateway.auth.jwks import parse_jwks
from gateway.ratelimit import PublicRateLimiter
from shared.errors import Forbidden, Unauthorized
from shared.problems import install_error_handlers

AUD = "authenticated"
SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
USER = "8f0c2a5e-7b1d-4c3e-9a6f-2d4b8e1c0f3a"
OTHER_USER = "11111111-2222-3333-4444-555555555555"
JWKS_URL = "https://project.supabase.co/auth/v1/.well-known/jwks.json"
START = 1_800_000_000.0

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_KEY_2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


class Clock:
    """A wall clock (seconds since the epoch) tests move by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def b64url(data: bytes | dict[str, Any]) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(now: float, **overrides: Any) -> dict[str, Any]:
    """Supabase-shaped claims; an override of None drops the claim."""
    base = {
        "sub": USER,
        "aud": AUD,
        "role": "authenticated",
        "iat": int(now),
        "exp": int(now) + 3600,
        "iss": "https://project.supabase.co/auth/v1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def hs_token(payload: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def rs_token(
    payload: dict[str, Any], kid: str = "rsa-1", key: rsa.RSAPrivateKey = RSA_KEY
) -> str:
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


def signed_any(payload: dict[str, Any], alg: str) -> str:
    """Sign claims PyJWT's encoder refuses (e.g. a non-string `iss`), as a forger could."""
    key, headers = (SECRET, None) if alg == "HS256" else (RSA_KEY, {"kid": "rsa-1"})
    return jwt.api_jws.encode(
        json.dumps(payload).encode(), key, algorithm=alg, headers=headers
    )


def es_token(payload: dict[str, Any], kid: str = "ec-1") -> str:
    return jwt.encode(payload, EC_KEY, algorithm="ES256", headers={"kid": kid})


def public_jwk(
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str
) -> dict[str, Any]:
    if isinstance(private_key, rsa.RSAPrivateKey):
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        alg = "RS256"
    else:
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        alg = "ES256"
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


class FakeJwks:
    """The Supabase JWKS endpoint; `mode` makes it fail in the ways the real one can."""

    def __init__(self, *keys: dict[str, Any]) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.mode = "ok"
        self.clock: Clock | None = None
        self.fetch_duration_s = 0.0

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        assert str(request.url) == JWKS_URL
        self.fetches += 1
        # Let concurrent verifications pile up while this fetch is in flight.
        await asyncio.sleep(0.01)
        if self.clock is not None:
            self.clock.now += self.fetch_duration_s
        if self.mode == "down":
            raise httpx2.ConnectError("connection refused", request=request)
        if self.mode == "503":
            return httpx2.Response(503, text="unavailable")
        if self.mode == "garbage":
            return httpx2.Response(200, text="<html>not json</html>")
        if self.mode == "empty":
            return httpx2.Response(200, json={"keys": []})
        return httpx2.Response(200, json={"keys": self.keys})


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def fake():
    return FakeJwks(public_jwk(RSA_KEY, "rsa-1"), public_jwk(EC_KEY, "ec-1"))


@pytest.fixture
async def http(fake):
    async with httpx2.AsyncClient(
        transport=httpx2.MockTransport(fake.handle)
    ) as client:
        yield client


@pytest.fixture
def jwks_verifier(http, clock):
    return TokenVerifier(audience=AUD, jwks_url=JWKS_URL, http=http, clock=clock)


@pytest.fixture
def hs_verifier(clock):
    return TokenVerifier(audience=AUD, hs256_secret=SECRET, clock=clock)


async def assert_rejected(
    verifier: TokenVerifier, token: str, code: str = "invalid_token"
) -> Unauthorized:
    with pytest.raises(Unauthorized) as info:
        await verifier.verify(token)
    assert info.value.instance_code == code
    assert info.value.headers == {"WWW-Authenticate": "Bearer"}
    return info.value


# --- valid tokens -------------------------------------------------------------------------


async def test_accepts_valid_hs256_token(hs_verifier, clock):
    caller = await hs_verifier.verify(hs_token(claims(clock.now)))
    assert caller == Caller(user_id=USER, role="authenticated", is_service=False)


async def test_service_role_token_is_a_service_caller(hs_verifier, clock):
    caller = await hs_verifier.verify(hs_token(claims(clock.now, role="service_role")))
    assert caller.is_service
    assert caller.role == "service_role"


@pytest.mark.parametrize("sign", [rs_token, es_token], ids=["RS256", "ES256"])
async def test_accepts_valid_asymmetric_token_from_jwks(
    jwks_verifier, fake, clock, sign
):
    caller = await jwks_verifier.verify(sign(claims(clock.now)))
    assert caller == Caller(user_id=USER, role="authenticated", is_service=False)
    assert fake.fetches == 1


async def test_audience_list_containing_ours_is_accepted(hs_verifier, clock):
    caller = await hs_verifier.verify(hs_token(claims(clock.now, aud=["other", AUD])))
    assert caller.user_id == USER


# --- time ---------------------------------------------------------------------------------


async def test_rejects_expired_token(hs_verifier, clock):
    await assert_rejected(
        hs_verifier,
        hs_token(claims(clock.now, exp=int(clock.now) - 31)),
        "token_expired",
    )


async def test_leeway_tolerates_small_clock_skew(clock):
    token = hs_token(claims(clock.now, exp=int(clock.now) - 10))
    lenient = TokenVerifier(audience=AUD, hs256_secret=SECRET, clock=clock)
    strict = TokenVerifier(audience=AUD, hs256_secret=SECRET, clock=clock, leeway_s=5)
    assert (await lenient.verify(token)).user_id == USER
    await assert_rejected(strict, token, "token_expired")


async def test_rejects_token_not_yet_valid(hs_verifier, clock):
    await assert_rejected(
        hs_verifier, hs_token(claims(clock.now, nbf=int(clock.now) + 600))
    )


# --- claims -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "anon"},
        {"aud": ["other"]},
        {"aud": None},
        {"exp": None},
        {"exp": "tomorrow"},
        {"sub": None},
        {"sub": ""},
        {"sub": 42},
        {"sub": "a/b"},
        {"sub": "x" * 65},
        {"sub": f"{USER}\n"},
        {"sub": "../../admin"},
    ],
    ids=lambda o: repr(o),
)
async def test_rejects_bad_claims(hs_verifier, clock, overrides):
    await assert_rejected(hs_verifier, hs_token(claims(clock.now, **overrides)))


ISSUER = "https://project.supabase.co/auth/v1"


@pytest.mark.parametrize("mode", ["secret", "jwks"])
async def test_configured_issuer_must_equal_the_tokens_iss(http, clock, mode):
    """CONTRACT §3: with SUPABASE_JWT_ISSUER set, `iss` must equal it, in both modes."""
    if mode == "secret":
        verifier = TokenVerifier(
            audience=AUD, issuer=ISSUER, hs256_secret=SECRET, clock=clock
        )
        alg = "HS256"
    else:
        verifier = TokenVerifier(
            audience=AUD, issuer=ISSUER, jwks_url=JWKS_URL, http=http, clock=clock
        )
        alg = "RS256"
    token = signed_any(claims(clock.now, iss=ISSUER), alg)
    assert (await verifier.verify(token)).user_id == USER
    for iss in [
        "https://other-project.supabase.co/auth/v1",
        f"{ISSUER}/",
        ISSUER.upper(),
        "",
        None,
        [ISSUER],
        42,
    ]:
        await assert_rejected(verifier, signed_any(claims(clock.now, iss=iss), alg))


async def test_issuer_is_not_checked_when_none_is_configured(clock):
    for issuer in (None, "", "  "):
        verifier = TokenVerifier(
            audience=AUD, issuer=issuer, hs256_secret=SECRET, clock=clock
        )
        for iss in ("https://anyone.example/auth/v1", None):
            token = hs_token(claims(clock.now, iss=iss))
            assert (await verifier.verify(token)).user_id == USER


async def test_wrong_issuer_rejection_reveals_neither_issuer_nor_token(clock):
    verifier = TokenVerifier(
        audience=AUD, issuer=ISSUER, hs256_secret=SECRET, clock=clock
    )
    token = hs_token(claims(clock.now, iss="https://attacker.example/auth/v1"))
    with capture_logs() as logs:
        error = await assert_rejected(verifier, token)
    text = f"{logs!r} {error.detail} {error!s} {error.extra!r}"
    assert "attacker.example" not in text
    assert ISSUER not in text
    assert token not in text


# --- forgeries ----------------------------------------------------------------------------


@pytest.mark.parametrize("sign", [hs_token, rs_token], ids=["HS256", "RS256"])
async def test_rejects_tampered_payload(hs_verifier, jwks_verifier, clock, sign):
    verifier = hs_verifier if sign is hs_token else jwks_verifier
    header, _, signature = sign(claims(clock.now)).split(".")
    forged = f"{header}.{b64url(claims(clock.now, sub=OTHER_USER))}.{signature}"
    await assert_rejected(verifier, forged)


async def test_rejects_wrong_hs256_secret(hs_verifier, clock):
    await assert_rejected(
        hs_verifier,
        hs_token(claims(clock.now), secret="another-secret-of-sufficient-length!"),
    )


@pytest.mark.parametrize("mode", ["secret", "jwks"])
async def test_rejects_alg_none(hs_verifier, jwks_verifier, clock, mode):
    verifier = hs_verifier if mode == "secret" else jwks_verifier
    header = {"alg": "none", "typ": "JWT", "kid": "rsa-1"}
    token = f"{b64url(header)}.{b64url(claims(clock.now))}."
    await assert_rejected(verifier, token)


@pytest.mark.parametrize(
    "token", ["", "garbage", "a.b.c", "Bearer x", "e30.e30.", "eyJhbGciOiJIUzI1NiJ9..."]
)
async def test_rejects_what_is_not_a_jwt(hs_verifier, jwks_verifier, token):
    await assert_rejected(hs_verifier, token)
    await assert_rejected(jwks_verifier, token)


@pytest.mark.parametrize(
    "encoding",
    [serialization.Encoding.PEM, serialization.Encoding.DER],
    ids=["PEM", "DER"],
)
async def test_rejects_hs256_signed_with_the_published_public_key(
    jwks_verifier, clock, encoding
):
    """The classic confusion attack: the public key (known to all) used as an HMAC secret."""
    public = RSA_KEY.public_key().public_bytes(
        encoding, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = (
        f"{b64url({'alg': 'HS256', 'typ': 'JWT', 'kid': 'rsa-1'})}."
        f"{b64url(claims(clock.now))}"
    )
    signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    await assert_rejected(jwks_verifier, f"{signing_input}.{b64url(signature)}")


async def test_ignores_symmetric_keys_published_in_the_jwks(http, fake, clock):
    secret = b"a-shared-secret-that-must-never-verify-anything"
    fake.keys.append(
        {"kty": "oct", "kid": "hmac-1", "alg": "HS256", "k": b64url(secret)}
    )
    verifier = TokenVerifier(audience=AUD, jwks_url=JWKS_URL, http=http, clock=clock)
    token = jwt.encode(
        claims(clock.now), secret, algorithm="HS256", headers={"kid": "hmac-1"}
    )
    await assert_rejected(verifier, token)


@pytest.mark.parametrize("sign", [rs_token, es_token], ids=["RS256", "ES256"])
async def test_secret_mode_rejects_asymmetric_tokens(hs_verifier, clock, sign):
    await assert_rejected(hs_verifier, sign(claims(clock.now)))


async def test_jwks_mode_rejects_alg_that_does_not_match_the_key_type(
    jwks_verifier, clock
):
    # Signed correctly with the EC key, but names the RSA key's kid.
    await assert_rejected(jwks_verifier, es_token(claims(clock.now), kid="rsa-1"))


async def test_jwks_mode_rejects_token_without_kid(jwks_verifier, fake, clock):
    token = jwt.encode(claims(clock.now), RSA_KEY, algorithm="RS256")
    await assert_rejected(jwks_verifier, token)
    assert fake.fetches == 0


async def test_jwks_url_wins_over_secret(http, clock):
    verifier = TokenVerifier(
        audience=AUD, hs256_secret=SECRET, jwks_url=JWKS_URL, http=http, clock=clock
    )
    assert verifier.algorithms == {"RS256", "ES256"}
    await assert_rejected(verifier, hs_token(claims(clock.now)))
    assert (await verifier.verify(rs_token(claims(clock.now)))).user_id == USER


def test_needs_a_key_source():
    with pytest.raises(ValueError, match="hs256_secret or jwks_url"):
        TokenVerifier(audience=AUD)


# --- JWKS cache ---------------------------------------------------------------------------


async def test_keys_are_cached_for_their_ttl(jwks_verifier, fake, clock):
    for _ in range(3):
        await jwks_verifier.verify(rs_token(claims(clock.now)))
    assert fake.fetches == 1
    clock.now += 599
    await jwks_verifier.verify(rs_token(claims(clock.now)))
    assert fake.fetches == 1
    clock.now += 2
    await jwks_verifier.verify(rs_token(claims(clock.now)))
    assert fake.fetches == 2


async def test_unknown_kid_refetches_once_per_interval(jwks_verifier, fake, clock):
    await jwks_verifier.verify(rs_token(claims(clock.now)))
    clock.now += 31
    unknown = rs_token(claims(clock.now), kid="nope")
    await assert_rejected(jwks_verifier, unknown)
    assert fake.fetches == 2
    await assert_rejected(jwks_verifier, unknown)
    clock.now += 29
    await assert_rejected(jwks_verifier, unknown)
    assert fake.fetches == 2


async def test_rotated_key_is_picked_up(jwks_verifier, fake, clock):
    await jwks_verifier.verify(rs_token(claims(clock.now)))
    fake.keys = [public_jwk(RSA_KEY_2, "rsa-2")]
    clock.now += 31
    caller = await jwks_verifier.verify(
        rs_token(claims(clock.now), kid="rsa-2", key=RSA_KEY_2)
    )
    assert caller.user_id == USER
    assert fake.fetches == 2


async def test_concurrent_unknown_kids_share_one_fetch(jwks_verifier, fake, clock):
    await jwks_verifier.verify(rs_token(claims(clock.now)))
    clock.now += 31
    unknown = rs_token(claims(clock.now), kid="nope")
    results = await asyncio.gather(
        *(jwks_verifier.verify(unknown) for _ in range(50)), return_exceptions=True
    )
    assert all(isinstance(r, Unauthorized) for r in results)
    assert fake.fetches == 2


async def test_cold_start_concurrent_verifications_share_one_fetch(
    jwks_verifier, fake, clock
):
    token = es_token(claims(clock.now))
    results = await asyncio.gather(*(jwks_verifier.verify(token) for _ in range(50)))
    assert {r.user_id for r in results} == {USER}
    assert fake.fetches == 1


async def test_slow_failing_fetch_is_not_repeated_by_its_waiters(
    jwks_verifier, fake, clock
):
    """Callers who waited on a fetch share its outcome even when it outlasted the retry interval."""
    fake.mode, fake.clock, fake.fetch_duration_s = "down", clock, 5.0
    token = rs_token(claims(clock.now))
    results = await asyncio.gather(
        *(jwks_verifier.verify(token) for _ in range(50)), return_exceptions=True
    )
    assert all(isinstance(r, Unauthorized) for r in results)
    assert fake.fetches == 1


@pytest.mark.parametrize("failure", ["down", "503", "garbage", "empty"])
async def test_failed_refresh_keeps_the_cached_keys(
    jwks_verifier, fake, clock, failure
):
    await jwks_verifier.verify(rs_token(claims(clock.now)))
    fake.mode = failure
    clock.now += 601
    with capture_logs() as logs:
        caller = await jwks_verifier.verify(rs_token(claims(clock.now)))
    assert caller.user_id == USER
    assert fake.fetches == 2
    assert [e["event"] for e in logs] == ["auth.jwks_fetch_failed"]


async def test_no_keys_at_all_is_401_until_the_endpoint_recovers(
    jwks_verifier, fake, clock
):
    fake.mode = "down"
    with capture_logs() as logs:
        await assert_rejected(jwks_verifier, rs_token(claims(clock.now)))
    assert "auth.jwks_unavailable" in [e["event"] for e in logs]
    fake.mode = "ok"
    clock.now += 2
    assert (await jwks_verifier.verify(rs_token(claims(clock.now)))).user_id == USER


def test_parse_jwks_keeps_only_asymmetric_signing_keys():
    rsa_jwk = public_jwk(RSA_KEY, "rsa-1")
    ec_jwk = public_jwk(EC_KEY, "ec-1")
    p384 = jwt.algorithms.ECAlgorithm.to_jwk(
        ec.generate_private_key(ec.SECP384R1()).public_key(), as_dict=True
    )
    document = {
        "keys": [
            rsa_jwk,
            ec_jwk,
            {**rsa_jwk, "kid": "lies", "alg": "HS256"},
            {**rsa_jwk, "kid": "enc", "use": "enc"},
            {**rsa_jwk, "kid": None},
            {**p384, "kid": "p384"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "broken", "n": "AA"},
            "not a key",
        ]
    }
    keys = parse_jwks(document)
    assert {kid: key.algorithm_name for kid, key in keys.items()} == {
        "rsa-1": "RS256",
        "ec-1": "ES256",
    }
    assert parse_jwks(["keys"]) == {}
    assert parse_jwks({"keys": "nope"}) == {}


async def test_aclose_leaves_a_borrowed_client_open(jwks_verifier, http):
    await jwks_verifier.aclose()
    assert not http.is_closed


# --- secrecy ------------------------------------------------------------------------------


async def test_rejections_reveal_neither_token_nor_secret(hs_verifier, clock):
    token = hs_token(claims(clock.now), secret="another-secret-of-sufficient-length!")
    with capture_logs() as logs:
        error = await assert_rejected(hs_verifier, token)
    text = f"{logs!r} {error.detail} {error!s} {error.extra!r}"
    assert token not in text
    assert SECRET not in text
    assert "Signature verification failed" not in text
    assert error.__cause__ is None
    assert error.__suppress_context__


# --- access rule --------------------------------------------------------------------------


def test_check_user_access():
    own = Caller(user_id=USER, role="authenticated", is_service=False)
    service = Caller(user_id=OTHER_USER, role="service_role", is_service=True)
    check_user_access(own, USER)
    check_user_access(service, USER)
    with pytest.raises(Forbidden) as info:
        check_user_access(own, OTHER_USER)
    assert info.value.instance_code == "forbidden_user"
    assert info.value.status_code == 403


# --- the FastAPI dependency ---------------------------------------------------------------


@pytest.fixture
async def client(hs_verifier):
    app = FastAPI()
    install_error_handlers(app)
    app.state.verifier = hs_verifier
    app.state.rate_limiter = PublicRateLimiter(120)

    @app.get("/me")
    async def me(caller: CallerDep) -> dict[str, str]:
        return {"user_id": caller.user_id}

    @app.get("/users/{user_id}")
    async def user(user_id: str, caller: CallerDep) -> dict[str, str]:
        check_user_access(caller, user_id)
        return {"user_id": user_id}

    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://gateway") as c:
        yield c


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "missing_token"),
        ("Basic xyz", "missing_token"),
        ("Bearer", "missing_token"),
        ("Bearer   ", "missing_token"),
        ("Bearer a b", "missing_token"),
        ("Bearer not-a-jwt", "invalid_token"),
    ],
)
async def test_dependency_answers_401_problem(client, authorization, code):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.get("/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["code"] == code
    assert body["status"] == 401


async def test_dependency_answers_401_for_expired_token(client, clock):
    token = hs_token(claims(clock.now, exp=int(clock.now) - 60))
    response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"
    assert token not in response.text


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
async def test_dependency_passes_a_valid_token(client, clock, scheme):
    token = hs_token(claims(clock.now))
    response = await client.get("/me", headers={"Authorization": f"{scheme} {token}"})
    assert response.status_code == 200
    assert response.json() == {"user_id": USER}


async def test_other_users_path_is_403(client, clock):
    headers = {"Authorization": f"Bearer {hs_token(claims(clock.now))}"}
    assert (await client.get(f"/users/{USER}", headers=headers)).status_code == 200
    response = await client.get(f"/users/{OTHER_USER}", headers=headers)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden_user"


def test_openapi_documents_a_bearer_scheme_and_no_authorization_parameter():
    """Found by the fuzzer: the token was an optional `authorization` header parameter."""
    app = FastAPI()

    @app.get("/me")
    async def me(caller: CallerDep) -> dict[str, str]:
        return {"user_id": caller.user_id}

    openapi = app.openapi()
    operation = openapi["paths"]["/me"]["get"]
    assert "parameters" not in operation
    [requirement] = operation["security"]
    [scheme] = requirement
    assert openapi["components"]["securitySchemes"][scheme] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A Supabase access token.",
    }
