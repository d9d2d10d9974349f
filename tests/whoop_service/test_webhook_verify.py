import base64
import hashlib
import hmac

import pytest

from whoop_service.webhooks.verify import (
    EventMalformed,
    SignatureRejected,
    parse_event,
    sign,
    verify,
)

SECRET = "client-secret"
BODY = (
    b'{"user_id":456,"id":"550e8400-e29b-41d4-a716-446655440000",'
    b'"type":"sleep.updated","trace_id":"e369"}'
)
NOW_MS = 1_795_320_000_000


def test_signature_is_the_documented_hmac():
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), str(NOW_MS).encode() + BODY, hashlib.sha256).digest()
    ).decode()
    assert sign(SECRET, str(NOW_MS), BODY) == expected
    verify(BODY, str(NOW_MS), expected, SECRET, now_ms=NOW_MS, tolerance_s=300)


@pytest.mark.parametrize(
    ("body", "ts", "sig", "reason"),
    [
        (BODY, None, "x", "missing_signature"),
        (BODY, str(NOW_MS), None, "missing_signature"),
        (BODY, "12ab", "x", "bad_timestamp"),
        (BODY, str(NOW_MS), sign("other-secret", str(NOW_MS), BODY), "bad_signature"),
        (BODY + b" ", str(NOW_MS), sign(SECRET, str(NOW_MS), BODY), "bad_signature"),
        (
            BODY,
            str(NOW_MS - 301_000),
            sign(SECRET, str(NOW_MS - 301_000), BODY),
            "stale_timestamp",
        ),
        (
            BODY,
            str(NOW_MS + 301_000),
            sign(SECRET, str(NOW_MS + 301_000), BODY),
            "stale_timestamp",
        ),
    ],
)
def test_refusals(body, ts, sig, reason):
    with pytest.raises(SignatureRejected, match=reason):
        verify(body, ts, sig, SECRET, now_ms=NOW_MS, tolerance_s=300)


def test_parses_v2_events_and_refuses_others():
    event = parse_event(BODY)
    assert (event.whoop_user_id, event.type, event.trace_id) == (
        456,
        "sleep.updated",
        "e369",
    )
    for bad in (
        b"not json",
        b"[]",
        b'{"user_id":"456","id":"x","type":"t","trace_id":"t"}',
        b'{"user_id":456,"type":"t","trace_id":"t"}',
        b'{"user_id":456,"id":"x","type":"t"}',
    ):
        with pytest.raises(EventMalformed):
            parse_event(bad)
