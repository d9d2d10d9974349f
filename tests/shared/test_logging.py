import json
import logging

import pytest
import structlog

from shared.logging import REDACTED, configure_logging, redact, scrub_text

ACCESS = "whoop-access-token-0123456789"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl"


def test_redacts_secret_keys_recursively():
    out = redact(
        {
            "access_token": ACCESS,
            "nested": {"Refresh-Token": "r-secret", "client_secret": "cs", "count": 3},
            "items": [{"code": "auth-code-xyz"}],
            "user_id": "u1",
        }
    )
    assert out["access_token"] == REDACTED
    assert out["nested"] == {
        "Refresh-Token": REDACTED,
        "client_secret": REDACTED,
        "count": 3,
    }
    assert out["items"] == [{"code": REDACTED}]
    assert out["user_id"] == "u1"


def test_redacts_secrets_inside_free_text():
    text = redact(
        f"GET /cb?code=abc123&state=s0s0s0s0 with Bearer {ACCESS} and {JWT} "
        "via postgresql://svc:hunter2@db:5432/app"
    )
    for secret in ("abc123", "s0s0s0s0", ACCESS, JWT, "hunter2"):
        assert secret not in text
    assert "postgresql://svc:" in text


def test_log_lines_from_structlog_and_stdlib_are_redacted_json(capsys):
    configure_logging("info", json=True)
    structlog.get_logger().info(
        "whoop.token.refreshed",
        refresh_token="r-secret",
        authorization=f"Bearer {ACCESS}",
    )
    logging.getLogger("uvicorn.error").warning("upstream said: access_token=%s", ACCESS)
    try:
        raise RuntimeError(f"token rejected: Bearer {ACCESS}")
    except RuntimeError:
        structlog.get_logger().exception("whoop.call_failed")
    err = capsys.readouterr().err
    assert ACCESS not in err
    assert "r-secret" not in err
    assert "Traceback" not in err, "no stack trace is ever written to a log"
    assert '"error_type": "RuntimeError"' in err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    events = {line["event"] for line in lines}
    assert {"whoop.token.refreshed", "whoop.call_failed"} <= events
    first = next(line for line in lines if line["event"] == "whoop.token.refreshed")
    assert first["refresh_token"] == REDACTED
    assert first["level"] == "info"


def test_uvicorn_access_log_is_off():
    configure_logging("info", json=False)
    assert logging.getLogger("uvicorn.access").disabled


@pytest.mark.parametrize(
    "text",
    [
        JWT,  # no space, no '=': found by its 'eyJ' alone
        "https://svc:hunter2@db.example/x",
        "refresh_token=abcdefgh",
        "Account\tabcdefgh12345",
    ],
)
def test_each_secret_shape_passes_the_quick_check_and_is_scrubbed(text):
    assert REDACTED in scrub_text(text)


def test_plain_values_pass_through_untouched():
    for text in ("/api/v1/health/{user_id}", "2026-11-22T07:57:32Z", "user-1", ""):
        assert scrub_text(text) is text
