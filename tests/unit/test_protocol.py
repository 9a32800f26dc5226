"""rat_engine's HTTP/1.1 protocol driven without sockets: bytes in, bytes out (a fake transport).

The end-to-end behaviour (malformed requests, slowloris, slow readers) is covered against the
real server in tests/integration and tests/reliability; these pin the protocol's own rules.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from rat_engine.server.protocol import RatHttpProtocol
from rat_engine.streaming.signals import Disconnected


def run_async(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop (the suite has no async pytest plugin)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(test(*args, **kwargs), 10))

    return wrapper


class FakeTransport:
    def __init__(self) -> None:
        self.out = bytearray()
        self.writes = 0
        self.closed = False
        self.aborted = False
        self.reading = True

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.out += data
        self.writes += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


def make(app: Any, **options: Any) -> tuple[RatHttpProtocol, FakeTransport, ServerState]:
    config = uvicorn.Config(app, lifespan="off", log_level="warning", **options)
    config.load()
    state = ServerState()
    protocol = RatHttpProtocol(config, state, {}, asyncio.get_running_loop())
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport, state


async def settle(rounds: int = 5) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


def responses(raw: bytes) -> list[bytes]:
    return [part for part in raw.split(b"HTTP/1.1 ") if part]


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    payload = f"{scope['method']} {scope['path']} {scope['query_string'].decode()} ".encode() + body
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})


@run_async
async def test_fixed_length_response_is_one_write() -> None:
    protocol, transport, _ = make(echo_app)
    protocol.data_received(b"GET /a?x=1 HTTP/1.1\r\nHost: t\r\n\r\n")
    await settle()
    assert transport.writes == 1
    assert transport.out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.out.endswith(b"\r\n\r\nGET /a x=1 ")
    assert not transport.closed  # keep-alive


@pytest.mark.parametrize(
    ("request_bytes", "expected_body"),
    [
        (b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", b"POST /p  hello"),
        (
            b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"POST /c  abcde",
        ),
        (b"GET /%E2%9C%93 HTTP/1.1\r\nHost: t\r\n\r\n", "GET /\u2713  ".encode()),
    ],
)
@run_async
async def test_request_bodies_and_paths(request_bytes: bytes, expected_body: bytes) -> None:
    protocol, transport, _ = make(echo_app)
    protocol.data_received(request_bytes)
    await settle()
    assert transport.out.endswith(b"\r\n\r\n" + expected_body)


@run_async
async def test_pipelined_requests_are_answered_in_order() -> None:
    protocol, transport, _ = make(echo_app)
    protocol.data_received(b"".join(b"GET /%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(5)))
    await settle(20)
    bodies = [part.rsplit(b"\r\n\r\n", 1)[1] for part in responses(bytes(transport.out))]
    assert bodies == [b"GET /%d  " % i for i in range(5)]
    assert transport.reading  # reading resumed once the pipeline drained


@run_async
async def test_http10_and_connection_close_end_the_connection() -> None:
    for request in (b"GET / HTTP/1.0\r\n\r\n", b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"):
        protocol, transport, _ = make(echo_app)
        protocol.data_received(request)
        await settle()
        assert b"connection: close\r\n" in transport.out
        assert transport.closed


@run_async
async def test_malformed_request_gets_400_and_close() -> None:
    protocol, transport, _ = make(echo_app)
    protocol.data_received(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
    assert transport.out.startswith(b"HTTP/1.1 400 ")
    assert transport.closed


@run_async
async def test_expect_100_continue_is_answered_on_first_receive() -> None:
    protocol, transport, _ = make(echo_app)
    protocol.data_received(
        b"POST /u HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    )
    await settle()
    assert transport.out == b"HTTP/1.1 100 Continue\r\n\r\n"
    protocol.data_received(b"abc")
    await settle()
    assert transport.out.endswith(b"POST /u  abc")


@run_async
async def test_large_body_pauses_reading_until_received() -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        started.set()
        await release.wait()
        await echo_app(scope, receive, send)

    protocol, transport, _ = make(slow_app)
    protocol.data_received(
        b"POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n" + b"x" * 100_000
    )
    await started.wait()
    assert not transport.reading  # more than 64 KB buffered: back-pressure on the client
    release.set()
    await settle()
    assert transport.reading
    protocol.data_received(b"y" * 100_000)
    await settle()
    assert transport.out.endswith(b"x" * 100_000 + b"y" * 100_000)


@run_async
async def test_streaming_response_is_chunked_and_head_is_sent_at_once() -> None:
    gate = asyncio.Event()

    async def stream_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await gate.wait()
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    protocol, transport, _ = make(stream_app)
    protocol.data_received(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
    await settle()
    assert transport.out.endswith(b"transfer-encoding: chunked\r\n\r\n")  # headers before any event
    gate.set()
    await settle()
    assert transport.out.endswith(b"9\r\ndata: 1\n\n\r\n0\r\n\r\n")


@run_async
async def test_head_request_gets_length_but_no_body() -> None:
    protocol, transport, _ = make(echo_app)
    protocol.data_received(b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n")
    await settle()
    head, _, body = bytes(transport.out).partition(b"\r\n\r\n")
    assert b"content-length: 9" in head  # len(b"HEAD /h  ")
    assert body == b""


@run_async
async def test_disconnect_callback_and_abort_extensions() -> None:
    seen: list[str] = []
    extensions: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        extensions["abort"] = scope["rat.exchange"].abort
        scope["rat.exchange"].on_disconnect(lambda: seen.append("gone"))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        assert await receive() == {"type": "http.request", "body": b"", "more_body": False}
        assert await receive() == {"type": "http.disconnect"}  # waits for the client to leave
        await send({"type": "http.response.body", "body": b"late", "more_body": True})  # dropped

    protocol, transport, _ = make(app)
    protocol.data_received(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
    await settle()
    assert seen == []
    extensions["abort"]()
    assert transport.aborted
    protocol.connection_lost(None)
    await settle()
    assert seen == ["gone"]
    assert b"late" not in transport.out


@run_async
async def test_send_waits_while_the_transport_is_paused() -> None:
    sent = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        protocol.pause_writing()
        await send({"type": "http.response.body", "body": b"x", "more_body": False})
        sent.set()

    protocol, transport, _ = make(app)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    await settle()
    assert not sent.is_set()
    protocol.resume_writing()
    await asyncio.wait_for(sent.wait(), 1)
    assert transport.out.endswith(b"1\r\nx\r\n0\r\n\r\n")


@run_async
async def test_application_error_before_response_is_500() -> None:
    async def broken(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    protocol, transport, _ = make(broken)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    await settle()
    assert transport.out.startswith(b"HTTP/1.1 500 ")
    assert b"boom" not in transport.out
    assert transport.closed


@run_async
async def test_invalid_response_header_is_refused() -> None:
    async def injecting(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x", b"a\r\nevil: 1")]})

    protocol, transport, _ = make(injecting)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    await settle()
    assert b"evil" not in transport.out
    assert transport.out.startswith(b"HTTP/1.1 500 ")


@run_async
async def test_head_timeout_and_keep_alive_timeout() -> None:
    cls = type("P", (RatHttpProtocol,), {"header_timeout": 0.05})
    config = uvicorn.Config(echo_app, lifespan="off", log_level="warning", timeout_keep_alive=0.1)
    config.load()
    # A head that never completes: 408 after header_timeout.
    protocol = cls(config, ServerState(), {}, asyncio.get_running_loop())
    transport = FakeTransport()
    protocol.connection_made(transport)
    protocol.data_received(b"GET / HTTP/1.1\r\nHo")
    await asyncio.sleep(0.15)
    assert transport.out.startswith(b"HTTP/1.1 408 ")
    assert transport.closed
    # An answered request, then silence: closed (without a response) after the keep-alive timeout;
    # a request arriving in between moves the deadline on.
    protocol = cls(config, ServerState(), {}, asyncio.get_running_loop())
    transport = FakeTransport()
    protocol.connection_made(transport)
    for _ in range(3):
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await asyncio.sleep(0.04)
    assert not transport.closed
    await asyncio.sleep(0.2)
    assert transport.closed
    assert b"408" not in transport.out


def test_disconnected_is_a_lazy_threading_event() -> None:
    flag = Disconnected()
    assert isinstance(flag, threading.Event)
    assert not flag.is_set()
    assert flag.wait(0.01) is False
    waiter_result: list[bool] = []
    thread = threading.Thread(target=lambda: waiter_result.append(flag.wait(5)))
    thread.start()
    flag.set()
    thread.join(5)
    assert waiter_result == [True]
    assert flag.is_set() and flag.wait(0)
    flag.clear()
    assert not flag.is_set()


# -- request framing the protocol must refuse (RFC 9112), as a table: bytes in, status out --------

FRAMING = [
    # (id, request bytes, expected status of the first response)
    ("ok", b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", 200),
    ("http10_without_host", b"GET / HTTP/1.0\r\n\r\n", 200),
    ("missing_host", b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400),  # RFC 9112 3.2
    ("two_host_headers", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("two_host_headers_http10", b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (
        "content_length_and_transfer_encoding",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "duplicate_content_length",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        400,
    ),
    (
        "obfuscated_transfer_encoding",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n",
        400,
    ),
    ("bare_lf", b"GET / HTTP/1.1\nHost: t\n\n", 400),
    ("bare_cr_in_header", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n", 400),
    ("obs_fold", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n", 400),
]


@pytest.mark.parametrize(
    ("request_bytes", "status"), [row[1:] for row in FRAMING], ids=[row[0] for row in FRAMING]
)
@run_async
async def test_request_framing(request_bytes: bytes, status: int) -> None:
    protocol, transport, _ = make(echo_app)
    protocol.data_received(request_bytes)
    await settle()
    assert transport.out.startswith(b"HTTP/1.1 %d " % status), bytes(transport.out[:200])
    if status == 400:
        assert transport.closed  # a request that cannot be framed ends the connection


@run_async
async def test_host_errors_say_what_is_wrong() -> None:
    protocol, transport, _ = make(echo_app)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    await settle()
    assert transport.out.endswith(b"Bad Request: more than one Host header.")


def _rat_app() -> Any:
    from rat_engine import RatApp
    from rat_engine.responses import Response

    app = RatApp(name="wire")

    @app.json("/j")
    async def j(request_data: dict[str, Any]) -> Any:
        return {"ok": True}

    @app.custom("/evil")
    async def evil(request_data: dict[str, Any]) -> Any:
        return Response("x").set_header("x-user", "a\r\nevil: 1")

    return app


@pytest.mark.parametrize(
    ("request_bytes", "head_has", "body"),
    [
        (b"GET /j HTTP/1.1\r\nHost: t\r\n\r\n", b"content-length: 11", b'{"ok":true}'),
        (b"HEAD /j HTTP/1.1\r\nHost: t\r\n\r\n", b"content-length: 11", b""),
        # The wire path does not check headers again: render_headers must have sanitised it.
        (b"GET /evil HTTP/1.1\r\nHost: t\r\n\r\n", b"x-user: a evil: 1", b"x"),
    ],
)
@pytest.mark.parametrize("wrapped", [False, True])
@run_async
async def test_rat_responses_through_the_wire_or_a_wrapped_send(
    request_bytes: bytes, head_has: bytes, body: bytes, wrapped: bool
) -> None:
    """A complete response goes through the exchange's wire when the app got the exchange's own
    send(); an ASGI middleware that wraps send() still sees every message."""
    app = _rat_app()
    seen: list[str] = []

    async def middleware(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def wrapped_send(message: dict[str, Any]) -> None:
            seen.append(message["type"])
            await send(message)

        await app(scope, receive, wrapped_send)

    protocol, transport, _ = make(middleware if wrapped else app)
    protocol.data_received(request_bytes)
    await settle(10)
    head, _, rest = bytes(transport.out).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert head_has in head
    assert b"\r\nevil" not in head
    assert rest == body
    assert transport.writes == 1 if body else transport.writes >= 1
    assert seen == (["http.response.start", "http.response.body"] if wrapped else [])


async def scope_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    payload = f"{scope['client'][0]} {scope['client'][1]} {scope['scheme']}".encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(payload))]}
    )
    await send({"type": "http.response.body", "body": payload})


@pytest.mark.parametrize(
    ("options", "headers", "seen"),
    [
        ({}, b"", b"127.0.0.1 40000 http"),  # no X-Forwarded-*: the peer as it is
        ({}, b"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n", b"203.0.113.7 0 https"),
        ({}, b"X-Forwarded-For: 203.0.113.7, 127.0.0.1\r\n", b"203.0.113.7 0 http"),  # the proxy chain
        ({}, b"X-Forwarded-Proto: gopher\r\n", b"127.0.0.1 40000 http"),  # not a scheme it accepts
        # The peer (127.0.0.1) is not a trusted proxy: its headers are ignored.
        ({"forwarded_allow_ips": "10.0.0.5"}, b"X-Forwarded-For: 203.0.113.7\r\n", b"127.0.0.1 40000 http"),
        ({"proxy_headers": False}, b"X-Forwarded-For: 203.0.113.7\r\n", b"127.0.0.1 40000 http"),
    ],
)
@run_async
async def test_forwarded_headers_follow_uvicorns_rules(
    options: dict[str, Any], headers: bytes, seen: bytes
) -> None:
    """uvicorn's proxy-headers wrapper is taken off the app and applied to the scope instead
    (forwarded.py): the result is what ``forwarded_allow_ips`` documents (docs/deployment.md)."""
    protocol, transport, _ = make(scope_echo, **options)
    assert protocol.app is scope_echo  # no wrapper coroutine around each request
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n")
    await settle()
    assert bytes(transport.out).partition(b"\r\n\r\n")[2] == seen


def _future_app(scope: dict[str, Any], receive: Any, send: Any) -> Any:
    """An ASGI app whose call returns an awaitable that is not a coroutine (a task)."""
    return asyncio.ensure_future(echo_app(scope, receive, send))


def _raises_at_call(scope: dict[str, Any], receive: Any, send: Any) -> Any:
    raise TypeError("not an ASGI app")


async def _returns_without_answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("app", "status", "closed"),
    [
        (_future_app, b"200", False),  # any awaitable
        (_raises_at_call, b"500", True),  # raises before it is even a coroutine
        (_returns_without_answer, b"500", True),
    ],
)
@run_async
async def test_the_application_task_is_the_apps_own_coroutine(app: Any, status: bytes, closed: bool) -> None:
    """No wrapper coroutine around the application: its task's end is a callback, which answers
    500 for an app that failed before sending anything, as the wrapper did."""
    protocol, transport, state = make(app, interface="asgi3")  # as given: no ASGI2 adapter
    assert protocol.app is app
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    await settle(10)
    assert transport.out.startswith(b"HTTP/1.1 " + status)
    assert transport.closed is closed
    assert not state.tasks
