"""WHOOP's authorization server: `/oauth/oauth2/auth` (auto-consent) and `/oauth/oauth2/token`.

Like WHOOP's consent screen, where a member may untick scopes, `sandbox_untick` (scopes separated
by spaces or commas) grants less than was asked; the redirect and the token answer's `scope` say
what was granted.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from sandbox.whoop.deps import SandboxDep
from sandbox.whoop.errors import SandboxError
from sandbox.whoop.state import WhoopSandbox
from sandbox.whoop.tokens import SCOPES, format_scopes

router = APIRouter(prefix="/oauth/oauth2", tags=["oauth"])
_MIN_STATE_LEN = 8
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _error_page(description: str) -> HTMLResponse:
    # Without a trustworthy client and redirect URI there is nowhere safe to send the browser.
    body = f"<html><body><h1>invalid_request</h1><p>{description}</p></body></html>"
    return HTMLResponse(body, status_code=400)


def _redirect(redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    joiner = "&" if urlsplit(redirect_uri).query else "?"
    return RedirectResponse(redirect_uri + joiner + urlencode(params), status_code=302)


def _redirect_uri_ok(sandbox: WhoopSandbox, uri: str) -> bool:
    registered = sandbox.settings.redirect_uris
    if registered:
        return uri in registered
    parts = urlsplit(uri)
    return (
        bool(parts.scheme) and bool(parts.netloc or parts.path) and not parts.fragment
    )


@router.get("/auth", response_model=None)
async def authorize(request: Request, sandbox: SandboxDep) -> Response:
    """Consent screen stand-in: validates the request and approves at once (302 to the app)."""
    q = request.query_params
    client_id, redirect_uri = q.get("client_id"), q.get("redirect_uri")
    if client_id != sandbox.settings.client_id:
        return _error_page("Unknown or missing client_id.")
    if not redirect_uri or not _redirect_uri_ok(sandbox, redirect_uri):
        return _error_page(
            "The 'redirect_uri' does not match a pre-registered redirect URL."
        )
    state = q.get("state", "")

    def fail(error: str, description: str) -> RedirectResponse:
        params = {"error": error, "error_description": description}
        return _redirect(redirect_uri, {**params, "state": state} if state else params)

    if q.get("response_type") != "code":
        return fail("unsupported_response_type", "response_type must be 'code'.")
    if len(state) < _MIN_STATE_LEN:
        return fail(
            "invalid_state", "The state is missing or has fewer than 8 characters."
        )
    scopes = frozenset(q.get("scope", "").split())
    if not scopes or not scopes <= SCOPES:
        return fail(
            "invalid_scope", "The requested scope is invalid, unknown, or malformed."
        )
    challenge, method = q.get("code_challenge"), q.get("code_challenge_method")
    if (challenge is None) != (method is None) or method not in (None, "S256"):
        return fail("invalid_request", "PKCE needs code_challenge with method S256.")
    if q.get("sandbox_action") == "deny":
        return fail("access_denied", "The resource owner denied the request.")
    unticked = frozenset(q.get("sandbox_untick", "").replace(",", " ").split())
    scopes -= unticked
    if not scopes:
        return fail("access_denied", "The resource owner granted no scope.")
    user_param = q.get("sandbox_user_id")
    if user_param is not None:
        if (
            not (user_param.isascii() and user_param.isdigit())
            or int(user_param) not in sandbox.users
        ):
            return _error_page("sandbox_user_id names no existing WHOOP user.")
        user = sandbox.get_user(int(user_param))
    else:
        user = sandbox.add_user_for_consent()
    code = sandbox.tokens.new_code(
        client_id=client_id,
        redirect_uri=redirect_uri,
        scopes=scopes,
        user_id=user.user_id,
        challenge=challenge,
        now=sandbox.now(),
    )
    return _redirect(
        redirect_uri, {"code": code, "scope": format_scopes(scopes), "state": state}
    )


def _form_value(form: dict[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise SandboxError(400, "invalid_request", f"The request is missing '{name}'.")
    return value


def _authenticate_client(
    sandbox: WhoopSandbox, request: Request, form: dict[str, str]
) -> str:
    client_id, secret = form.get("client_id"), form.get("client_secret")
    has_basic = request.headers.get("authorization", "").lower().startswith("basic ")
    if has_basic and client_id and secret:
        raise SandboxError(
            400, "invalid_request", "Use one client authentication method."
        )
    expected = sandbox.settings.client_secret.get_secret_value()
    if (
        client_id != sandbox.settings.client_id
        or secret is None
        or not hmac.compare_digest(secret.encode(), expected.encode())
    ):
        # WHOOP's clients authenticate with client_secret_post only.
        raise SandboxError(401, "invalid_client", "Client authentication failed.")
    return client_id


@router.post("/token")
async def token(request: Request, sandbox: SandboxDep) -> JSONResponse:
    """Code exchange and refresh; client credentials in the form body."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        sandbox.token_requests["<not a form>"] += 1
        raise SandboxError(400, "invalid_request", "The body must be form-encoded.")
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    grant_type = form.get("grant_type", "")
    sandbox.token_requests[grant_type] += 1
    client_id = _authenticate_client(sandbox, request, form)
    now = sandbox.now()
    if grant_type == "authorization_code":
        code, redirect_uri = (
            _form_value(form, "code"),
            _form_value(form, "redirect_uri"),
        )
        found, body = sandbox.tokens.exchange_code(
            code,
            client_id=client_id,
            redirect_uri=redirect_uri,
            verifier=form.get("code_verifier"),
            now=now,
        )
        sandbox.get_user(found.user_id).webhooks_enabled = True
    elif grant_type == "refresh_token":
        refresh_token = _form_value(form, "refresh_token")
        _, body = sandbox.tokens.refresh(
            refresh_token, client_id=client_id, scope=form.get("scope"), now=now
        )
    elif not grant_type:
        raise SandboxError(
            400, "invalid_request", "The request is missing 'grant_type'."
        )
    else:
        raise SandboxError(
            400, "unsupported_grant_type", f"'{grant_type}' is not supported."
        )
    sandbox.tokens_issued[grant_type] += 1
    return JSONResponse(body, headers=_NO_STORE)
