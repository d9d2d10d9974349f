"""Bodies over 64 KiB are refused with 413 before more than 64 KiB is read, on every route,
whatever the route does with its body, and never with a second response."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel

from shared.app import build_service_app
from shared.bodylimit import MAX_BODY_BYTES, BodySizeLimitMiddleware, declared_length

CHUNK = 16 * 1024


class Item(BaseModel):
    name: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield


def make_app(reached: list[str]) -> FastAPI:
    app = build_service_app(title="t", version="0", lifespan=lifespan)

    @app.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        reached.append("raw")
        return {"bytes": len(await request.body())}

    @app.post("/model")
    async def model(item: Item) -> dict[str, str]:
        reached.append("model")
        return {"name": item.name}

    async def answers_first(scope, receive, send) -> None:
        """Starts its answer, then reads the body (raw ASGI: no framework in between)."""
        reached.append("answers-first")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send(
            {"type": "http.response.body", "body": b"started;", "more_body": True}
        )
        while (message := await receive())["type"] == "http.request":
            await send({"type": "http.response.body", "body": b".", "more_body": True})
            if not message.get("more_body"):
                break
        await send({"type": "http.response.body", "body": b"end"})

    app.mount("/answers-first", answers_first)
    return app


class Upload:
    """An ASGI `receive` streaming `total` bytes in chunks, counting what the app pulled."""

    def __init__(self, total: int, chunk: int = CHUNK) -> None:
        self.total, self.chunk, self.pulled, self.calls = total, chunk, 0, 0

    async def __call__(self) -> dict:
        self.calls += 1
        if self.pulled >= self.total:
            return {"type": "http.disconnect"}
        size = min(self.chunk, self.total - self.pulled)
        self.pulled += size
        return {
            "type": "http.request",
            "body": b"x" * size,
            "more_body": self.pulled < self.total,
        }


async def call(app, path: str, upload: Upload, headers=()) -> list[dict]:
    """One request straight over ASGI (no client buffering): the messages the app sent."""
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"t"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("t", 80),
    }
    await app(scope, upload, send)
    return sent


def status_and_body(sent: list[dict]) -> tuple[list[int], bytes]:
    statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
    body = b"".join(
        m.get("body", b"") for m in sent if m["type"] == "http.response.body"
    )
    return statuses, body


@pytest.mark.parametrize("path", ["/raw", "/model", "/nowhere", "/health/live"])
async def test_a_declared_length_over_the_limit_is_refused_before_any_byte_is_read(
    path,
):
    reached: list[str] = []
    upload = Upload(100 * 1024 * 1024)
    length = (b"content-length", str(upload.total).encode())
    sent = await call(make_app(reached), path, upload, headers=[length])
    statuses, body = status_and_body(sent)
    assert statuses == [413]
    problem = json.loads(body)
    assert problem["code"] == "payload_too_large"
    assert problem["status"] == 413
    assert upload.pulled == 0
    assert reached == []
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/problem+json"
    assert headers[b"connection"] == b"close"


@pytest.mark.parametrize("path", ["/raw", "/model", "/nowhere"])
async def test_a_chunked_body_is_cut_once_it_passes_the_limit(path):
    """Without Content-Length: counted as streamed; no more than the limit plus one chunk."""
    reached: list[str] = []
    upload = Upload(100 * 1024 * 1024)
    sent = await call(make_app(reached), path, upload)
    statuses, body = status_and_body(sent)
    if path == "/nowhere":
        assert statuses == [404]  # never reads its body: nothing to refuse
        assert upload.pulled == 0
        return
    assert statuses == [413]
    assert json.loads(body)["code"] == "payload_too_large"
    assert upload.pulled <= MAX_BODY_BYTES + CHUNK
    # FastAPI reads a model's body before the route: the route never runs.
    assert reached == (["raw"] if path == "/raw" else [])


async def test_the_app_answering_first_is_never_answered_twice():
    reached: list[str] = []
    upload = Upload(10 * 1024 * 1024)
    sent = await call(make_app(reached), "/answers-first/", upload)
    statuses, body = status_and_body(sent)
    assert statuses == [200]  # no 413 after the app's own start
    assert body.startswith(b"started;")
    assert not body.endswith(b"end")  # cut: the server closes the connection
    assert upload.pulled <= MAX_BODY_BYTES + CHUNK


@pytest.mark.parametrize("size", [0, 1, MAX_BODY_BYTES])
async def test_bodies_up_to_the_limit_pass_whole(size):
    reached: list[str] = []
    app = make_app(reached)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://t"
    ) as client:
        declared = await client.post("/raw", content=b"x" * size)

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, size, 1000):
                yield b"x" * min(1000, size - start)

        streamed = await client.post("/raw", content=chunks())
    assert declared.status_code == 200
    assert declared.json() == {"bytes": size}
    assert streamed.status_code == 200
    assert streamed.json() == {"bytes": size}


async def test_one_byte_over_is_refused_through_a_client():
    app = make_app([])
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://t"
    ) as client:
        resp = await client.post("/model", content=b"x" * (MAX_BODY_BYTES + 1))
    assert resp.status_code == 413
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "payload_too_large"
    assert "x-request-id" in resp.headers  # inside the request context


async def test_websockets_and_lifespan_pass_through():
    seen: list[str] = []

    async def inner(scope, receive, send):
        seen.append(scope["type"])

    limited = BodySizeLimitMiddleware(inner, max_bytes=1)
    await limited({"type": "lifespan"}, Upload(0), None)
    await limited({"type": "websocket", "headers": []}, Upload(0), None)
    assert seen == ["lifespan", "websocket"]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"content-length", b"12")], 12),
        ([(b"Content-Length", b" 7 ")], 7),
        ([(b"content-length", b"-1")], None),
        ([(b"content-length", b"1e9")], None),
        ([(b"content-type", b"text/plain")], None),
        ([(b"content-length", b"000065")], 65),
        # Thousands of digits (leading zeros pass HTTP parsers): too large, never parsed.
        ([(b"content-length", b"0" * 4300 + b"1")], 1),
        ([(b"content-length", b"9" * 4301)], 10**18),
    ],
)
def test_declared_length(headers, expected):
    assert declared_length(headers) == expected


async def test_a_content_length_of_thousands_of_digits_is_413_not_500():
    reached: list[str] = []
    length = (b"content-length", b"1" + b"0" * 4300)
    sent = await call(make_app(reached), "/raw", Upload(10), headers=[length])
    assert status_and_body(sent)[0] == [413]
    assert reached == []


class Trickle(Upload):
    """An upload that sends a chunk, then never the rest (a client trickling, or gone quiet)."""

    async def __call__(self) -> dict:
        if self.calls:
            await asyncio.sleep(3600)
        return await super().__call__()


async def test_a_body_that_does_not_arrive_in_time_is_408():
    reached: list[str] = []
    app = make_app(reached)
    app.user_middleware.clear()  # a bare app, wrapped in a short timeout below
    limited = BodySizeLimitMiddleware(app, read_timeout_s=0.2)
    started = time.monotonic()
    upload = Trickle(60_000, chunk=10)
    length = (b"content-length", b"60000")
    sent = await call(limited, "/raw", upload, headers=[length])
    assert time.monotonic() - started < 2
    statuses, body = status_and_body(sent)
    assert statuses == [408]
    assert json.loads(body)["code"] == "request_timeout"
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert dict(start["headers"])[b"connection"] == b"close"


async def test_waiting_for_a_disconnect_after_the_body_has_no_time_limit():
    """An app that listens for the client going away after reading the body (a stream) is
    never cut by the body's time limit."""

    async def streams(scope, receive, send) -> None:
        assert (await receive())["type"] == "http.request"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        assert (await receive())["type"] == "http.disconnect"
        await send({"type": "http.response.body", "body": b"bye"})

    async def receive_then_disconnect_late() -> dict:
        receive_then_disconnect_late.calls += 1  # type: ignore[attr-defined]
        if receive_then_disconnect_late.calls == 1:  # type: ignore[attr-defined]
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(0.4)  # past the read timeout below
        return {"type": "http.disconnect"}

    receive_then_disconnect_late.calls = 0  # type: ignore[attr-defined]
    sent = await call(
        BodySizeLimitMiddleware(streams, read_timeout_s=0.1),
        "/stream",
        receive_then_disconnect_late,
    )
    assert status_and_body(sent) == ([200], b"bye")


async def test_an_answer_before_an_announced_body_is_read_closes_the_connection():
    sent = await call(
        make_app([]), "/nowhere", Upload(1000), headers=[(b"content-length", b"1000")]
    )
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 404
    assert dict(start["headers"])[b"connection"] == b"close"
    # Without a body to drop, the connection stays open for the next request.
    sent = await call(make_app([]), "/nowhere", Upload(0))
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert b"connection" not in dict(start["headers"])


async def test_a_client_leaving_mid_body_is_no_server_error():
    """Found by review: a disconnect while the body was read was an unhandled 500."""

    async def leaves() -> dict:
        leaves.calls += 1  # type: ignore[attr-defined]
        if leaves.calls == 1:  # type: ignore[attr-defined]
            return {"type": "http.request", "body": b"{", "more_body": True}
        return {"type": "http.disconnect"}

    leaves.calls = 0  # type: ignore[attr-defined]
    reached: list[str] = []
    sent = await call(make_app(reached), "/raw", leaves)
    statuses, body = status_and_body(sent)
    assert reached == ["raw"]
    assert statuses == [400]
    assert json.loads(body)["code"] == "client_disconnected"


async def test_a_body_still_trickling_after_the_answer_began_ends_as_a_disconnect():
    """Review: raising into an app that answers already left its answer unfinished (one
    server error line per abusive request); it now sees the client leave and ends it."""

    async def answers_then_reads(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while (await receive())["type"] != "http.disconnect":
            pass
        await send({"type": "http.response.body", "body": b"done"})

    sent = await call(
        BodySizeLimitMiddleware(answers_then_reads, read_timeout_s=0.2),
        "/stream",
        Trickle(60_000, chunk=10),
        headers=[(b"transfer-encoding", b"chunked")],
    )
    assert status_and_body(sent) == ([200], b"done")
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert dict(start["headers"])[b"connection"] == b"close"
