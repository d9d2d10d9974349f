"""Request bodies over a limit are refused with 413 before more than the limit is read (§9).

A pure ASGI middleware, so it serves every route of an app before any route, dependency or
authentication runs. A `Content-Length` over the limit is answered at once, nothing read. Without
one (chunked), the bytes are counted as the app receives them: once the count passes the limit the
middleware answers 413 itself and the app's `receive` gets no more of the body (it sees a
disconnect), so at most the limit plus one chunk of the server's is ever held. The 413 carries
`Connection: close`: the server drops the rest of the upload instead of reading it.

A body must also arrive within `read_timeout_s` of the app first asking for it (a client
trickling bytes holds a connection and a task for nothing): past it the answer is 408. An app
that answers before reading a body the client is still sending gets `Connection: close` added, so
the server does not read and discard the rest.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.problems import problem_response

MAX_BODY_BYTES: Final = 64 * 1024
CODE: Final = "payload_too_large"
# How long a whole request body may take to arrive, once the app asks for it.
BODY_READ_TIMEOUT_S: Final = 10.0
# A Content-Length of more digits than this is over any limit (and over what int() should parse).
_MAX_LENGTH_DIGITS: Final = 18

log = structlog.get_logger()


class BodyTooLarge(Exception):
    """Raised into the app from `receive` once its body has passed the limit (or its time)."""


class BodySizeLimitMiddleware:
    """Answer 413 problem+json to any request whose body is over `max_bytes`, 408 to one whose
    body takes longer than `read_timeout_s` to arrive."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = MAX_BODY_BYTES,
        read_timeout_s: float = BODY_READ_TIMEOUT_S,
    ) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope.get("headers", []))
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send, declared=declared)
            return
        await _LimitedRequest(self, scope, receive, send).run()

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, *, declared: int | None
    ) -> None:
        log.info(
            "http.body_too_large",
            max_bytes=self.max_bytes,
            declared_bytes=declared,
            path=scope.get("path", ""),
        )
        response = problem_response(
            413,
            CODE,
            f"The request body is over {self.max_bytes} bytes.",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)

    async def _too_slow(self, scope: Scope, receive: Receive, send: Send) -> None:
        log.info("http.body_too_slow", timeout_s=self.read_timeout_s)
        response = problem_response(
            408,
            "request_timeout",
            f"The request body did not arrive within {self.read_timeout_s:g} s.",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


class _LimitedRequest:
    """One request whose body is counted as it is received."""

    def __init__(
        self, limit: BodySizeLimitMiddleware, scope: Scope, receive: Receive, send: Send
    ) -> None:
        self._limit = limit
        self._scope = scope
        self._receive = receive
        self._send = send
        self._received = 0
        self._started = False  # a response (the app's or ours) has begun
        self._refused = False  # we answered 413 or 408: the app's sends are dropped
        self._body_done = False  # the last part of the body has arrived
        self._announces_body = _has_body(scope.get("headers", []))
        self._deadline: float | None = None  # for the body, from the app's first ask

    async def run(self) -> None:
        try:
            await self._limit.app(self._scope, self.receive, self.send)
        except BodyTooLarge:
            pass  # refused, or cut after the app began answering: the server drops the rest
        except Exception:
            # Once refused, whatever the app made of the cut body (a parse error wrapping
            # BodyTooLarge, a disconnect) is over: the client has its 413.
            if not self._refused:
                raise

    async def receive(self) -> Message:
        if self._refused:
            return {"type": "http.disconnect"}
        if self._body_done:
            # After the body: waiting for a disconnect is fine.
            return await self._receive()
        if self._deadline is None:
            self._deadline = time.monotonic() + self._limit.read_timeout_s
        try:
            async with asyncio.timeout(max(0.0, self._deadline - time.monotonic())):
                message = await self._receive()
        except TimeoutError:
            if self._started:
                # The app answers already (its answer closes the connection): it sees the
                # client as gone, and ends its answer itself.
                return {"type": "http.disconnect"}
            self._refused = True
            await self._limit._too_slow(self._scope, self._receive, self._send)
            raise BodyTooLarge from None
        if message["type"] != "http.request":
            return message
        if not message.get("more_body", False):
            self._body_done = True
        self._received += len(message.get("body", b""))
        if self._received <= self._limit.max_bytes:
            return message
        if self._started:
            # The app already answered (or streams an answer): no second response; stop the body.
            log.info(
                "http.body_too_large_after_response", max_bytes=self._limit.max_bytes
            )
            raise BodyTooLarge
        self._refused = True
        await self._limit._refuse(self._scope, self._receive, self._send, declared=None)
        raise BodyTooLarge

    async def send(self, message: Message) -> None:
        if self._refused:
            return
        if message["type"] == "http.response.start":
            self._started = True
            if self._announces_body and not self._body_done:
                # Answered before the body was read: the server must not read the rest.
                headers = [
                    *message.get("headers", []),
                    (b"connection", b"close"),
                ]
                message = {**message, "headers": headers}
        await self._send(message)


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The `Content-Length` as an int; None when absent or not a plain number (counted instead).

    Leading zeros are allowed by HTTP parsers; a number longer than any real body is reported as
    too large, never parsed (Python refuses to parse thousands of digits)."""
    for name, value in headers:
        if name.lower() == b"content-length":
            text = value.strip()
            if not text.isdigit():
                return None
            digits = text.lstrip(b"0") or b"0"
            if len(digits) > _MAX_LENGTH_DIGITS:
                return 10**_MAX_LENGTH_DIGITS
            return int(digits)
    return None


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the request announces a body (a non-zero length, or chunked)."""
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            return True
        if lowered == b"content-length":
            length = declared_length([(name, value)])
            return length is None or length > 0
    return False
