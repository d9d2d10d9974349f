"""structlog set-up: console in development, JSON in production, secrets always redacted.

Standard-library records (uvicorn, SQLAlchemy, alembic) go through the same processors, so redaction
applies to them too. Uvicorn's access log is switched off: it writes query strings, and the OAuth
callback carries a code in its query; `shared.observability` logs each request without them.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"

# Keys whose values are secrets wherever they appear (compared case-insensitively, `-` as `_`).
_SECRET_KEYS = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "token",
        "account_token",
        "accounttoken",
        "code",
        "code_verifier",
        "state",
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "client_secret",
        "clientsecret",
        "secret",
        "password",
        "api_key",
        "x_api_key",
        "internal_api_keys",
        "x_whoop_signature",
        "signature",
        "encryption_key",
        "token_encryption_keys",
        "supabase_jwt_secret",
    }
)
_SECRET_KEY_PARTS = ("token", "secret", "password", "api_key", "authorization")

# Secrets that turn up inside free text (exception messages, URLs, upstream errors).
_VALUE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"(?i)\b(bearer|account|profile|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
        r"\1 " + REDACTED,
    ),
    (re.compile(r"(://[^:/@\s]+):[^@\s]+@"), r"\1:" + REDACTED + "@"),
    (
        re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
        REDACTED,
    ),
    (
        re.compile(
            r"(?i)\b(access_token|refresh_token|id_token|code|code_verifier|client_secret"
            r"|state|token|api_key)=([^&\s\"']+)"
        ),
        r"\1=" + REDACTED,
    ),
)


# Every pattern above needs one of these; most logged values (ids, routes, times) have none.
_MAYBE_SECRET = re.compile(r"[\s=@]|eyJ")


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and _is_secret_name(key)


@functools.lru_cache(maxsize=1024)  # log keys are a small, fixed set
def _is_secret_name(key: str) -> bool:
    norm = key.lower().replace("-", "_")
    return norm in _SECRET_KEYS or any(part in norm for part in _SECRET_KEY_PARTS)


def scrub_text(text: str) -> str:
    """Replace token-like substrings of free text."""
    if not _MAYBE_SECRET.search(text):
        return text
    for pattern, replacement in _VALUE_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact(value: Any) -> Any:
    """A copy of `value` with secrets replaced: by key in mappings, by pattern in strings."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if _is_secret_key(k) and v is not None else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact(v) for v in value)
    return value


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: redact every field (runs after exceptions are rendered to text)."""
    out: MutableMapping[str, Any] = {}
    for key, value in event_dict.items():
        if key != "event" and _is_secret_key(key) and value is not None:
            out[key] = REDACTED
        else:
            out[key] = redact(value)
    return dict(out)


def summarize_exception(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Keep an exception's type, never its traceback (CONTRACT.md §4: no stack trace in a log).

    Tracebacks carry local values (tokens, bodies) and upstream messages; the type, the stable
    event name and the request id are enough to find the failure again.
    """
    exc_info = event_dict.pop("exc_info", None)
    for key in ("exception", "stack"):
        event_dict.pop(key, None)
    if exc_info is True:
        exc_info = sys.exc_info()
    exc = exc_info[1] if isinstance(exc_info, tuple) else exc_info
    if isinstance(exc, BaseException):
        event_dict.setdefault("error_type", type(exc).__name__)
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        summarize_exception,
        redact_secrets,
    ]


def configure_logging(level: str = "info", *, json: bool = False) -> None:
    """Configure structlog and the standard library once per process (idempotent)."""
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.ExtraAdder(),
            *_shared_processors(),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("structlog")
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != "structlog"] + [
        handler
    ]
    root.setLevel(numeric_level)
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
    # Client libraries log every request URL at INFO; URLs carry user ids and OAuth query strings.
    for name in ("httpx2", "httpcore2", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(numeric_level, logging.WARNING))
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False
    access.disabled = True
