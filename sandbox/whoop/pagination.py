"""Opaque, signed page tokens bound to the query that produced them."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass

_MAC_LEN = 12


@dataclass(frozen=True)
class PageToken:
    """Where the next page starts, and the filters it must be used with."""

    kind: str
    user_id: int
    start: str | None
    end: str | None
    cursor_ms: int
    cursor_key: str
    page: int


def encode(secret: bytes, token: PageToken) -> str:
    """The token as an opaque URL-safe string."""
    payload = json.dumps(asdict(token), separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(secret, payload, hashlib.sha256).digest()[:_MAC_LEN]
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode("ascii")


def _unpack(text: str) -> tuple[bytes, bytes]:
    if not text or len(text) > 2048:
        raise ValueError("bad token")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("bad token") from exc
    if len(raw) <= _MAC_LEN:
        raise ValueError("bad token")
    return raw[:-_MAC_LEN], raw[-_MAC_LEN:]


def decode(secret: bytes, text: str) -> PageToken:
    """The token in `text`; ValueError when it is garbage or was not made by this emulator."""
    payload, mac = _unpack(text)
    expected = hmac.new(secret, payload, hashlib.sha256).digest()[:_MAC_LEN]
    if not hmac.compare_digest(mac, expected):
        raise ValueError("bad token")
    try:
        return PageToken(**json.loads(payload))
    except (TypeError, ValueError) as exc:
        raise ValueError("bad token") from exc


def page_number(text: str | None) -> int:
    """Which page a request asks for (1 without a token, 0 when the token is unreadable)."""
    if text is None:
        return 1
    try:
        payload, _ = _unpack(text)
        page = json.loads(payload)["page"]
    except (ValueError, KeyError, TypeError):
        return 0
    return page if isinstance(page, int) else 0
