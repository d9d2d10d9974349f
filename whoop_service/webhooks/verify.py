"""Pure: WHOOP's webhook signature (whoop-api.md §5.3) and the event it carries.

`X-WHOOP-Signature` = base64(HMAC-SHA256(client secret, timestamp + raw body)), where the timestamp
is `X-WHOOP-Signature-Timestamp` in milliseconds since the epoch. The raw bytes are signed, so they
are checked before any parsing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

EVENT_TYPES = frozenset(
    {
        "sleep.updated",
        "sleep.deleted",
        "workout.updated",
        "workout.deleted",
        "recovery.updated",
        "recovery.deleted",
    }
)


class SignatureRejected(Exception):
    """The webhook is not from WHOOP, or too old to trust (the reason is a stable word)."""


class EventMalformed(Exception):
    """Signed, but not a WHOOP v2 event."""


@dataclass(frozen=True, slots=True)
class WhoopEvent:
    """A v2 webhook: which member, which object, what happened, and its trace id."""

    whoop_user_id: int
    object_id: str
    type: str
    trace_id: str


def sign(secret: str, timestamp_ms: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp_ms.encode() + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def verify(
    body: bytes,
    timestamp_ms: str | None,
    signature: str | None,
    secret: str,
    *,
    now_ms: int,
    tolerance_s: int,
) -> None:
    """Raise `SignatureRejected` unless the signature matches and the timestamp is recent."""
    if not timestamp_ms or not signature:
        raise SignatureRejected("missing_signature")
    if (
        not (timestamp_ms.isascii() and timestamp_ms.isdigit())
        or len(timestamp_ms) > 16
    ):
        raise SignatureRejected("bad_timestamp")
    if not signature.isascii():
        raise SignatureRejected("bad_signature")
    expected = sign(secret, timestamp_ms, body).encode()
    if not hmac.compare_digest(expected, signature.strip().encode()):
        raise SignatureRejected("bad_signature")
    if abs(now_ms - int(timestamp_ms)) > tolerance_s * 1000:
        raise SignatureRejected("stale_timestamp")


def parse_event(body: bytes) -> WhoopEvent:
    """The event of a verified body; `EventMalformed` when it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise EventMalformed("body is not JSON") from None
    if not isinstance(data, dict):
        raise EventMalformed("body is not an object")
    user, obj, kind, trace = (
        data.get(k) for k in ("user_id", "id", "type", "trace_id")
    )
    if not isinstance(user, int) or isinstance(user, bool) or user <= 0:
        raise EventMalformed("user_id is not a positive integer")
    if (
        not isinstance(obj, str | int)
        or isinstance(obj, bool)
        or not str(obj)
        or len(str(obj)) > 64
    ):
        raise EventMalformed("id is missing")
    if not isinstance(kind, str) or not kind or len(kind) > 32:
        raise EventMalformed("type is missing")
    if not isinstance(trace, str) or not trace or len(trace) > 64:
        raise EventMalformed("trace_id is missing")
    return WhoopEvent(whoop_user_id=user, object_id=str(obj), type=kind, trace_id=trace)
