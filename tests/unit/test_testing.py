"""Tests for rat_engine.testing: the portal-thread TestClient, streaming, and the SSE parser.

All apps here are hand-written raw ASGI 3 callables, so these tests do not depend on RatApp.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import io
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

import pytest

from rat_engine.testing import (
    HTTPStatusError,
    ResponseHeaders,
    ServerSentEvent,
    SSEParser,
    TestClient,
    parse_sse,
)

pytestmark = pytest.mark.timeout(30)

Scope = dict[str, Any]


async def read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def send_json(
    send: Any, payload: Any, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")] + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body})


async def echo_app(scope: Scope, receive: Any, send: Any) -> None:
    """Describe the scope and the received body as JSON."""
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    await send_json(
        send,
        {
            "type": scope["type"],
            "asgi": scope["asgi"],
            "http_version": scope["http_version"],
            "method": scope["method"],
            "scheme": scope["scheme"],
            "path": scope["path"],
            "raw_path": scope["raw_path"].decode("latin-1"),
            "query_string": scope["query_string"].decode("latin-1"),
            "root_path": scope["root_path"],
            "client": scope["client"],
            "server": scope["server"],
            "state": scope["state"],
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "header_types_ok": all(
                isinstance(k, bytes) and isinstance(v, bytes) and k == k.lower() for k, v in scope["headers"]
            ),
            "body": body.decode("latin-1"),
        },
    )


def header(echo: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in echo["headers"] if k == name]


# --------------------------------------------------------------------------------------- requests


def test_get_builds_a_complete_http_scope() -> None:
    with TestClient(echo_app) as client:
        response = client.get("/caf%C3%A9/a%20b?x=1&x=2", params={"y": "z w"})
    assert response.status_code == 200
    echo = response.json()
    assert echo["type"] == "http"
    assert echo["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert echo["http_version"] == "1.1"
    assert echo["method"] == "GET"
    assert echo["scheme"] == "http"
    assert echo["path"] == "/café/a b"  # percent-decoded
    assert echo["raw_path"] == "/caf%C3%A9/a%20b"  # as sent
    assert echo["query_string"] == "x=1&x=2&y=z+w"
    assert echo["root_path"] == ""
    assert echo["client"] == ["127.0.0.1", 50000]
    assert echo["server"] == ["testserver", 80]
    assert echo["state"] == {}
    assert echo["header_types_ok"] is True
    assert header(echo, "host") == ["testserver"]
    assert header(echo, "user-agent") == ["testclient"]
    assert header(echo, "content-length") == []  # no body on a plain GET
    assert echo["body"] == ""


def test_full_url_sets_host_and_server_and_user_headers_override_defaults() -> None:
    with TestClient(echo_app, client=None) as client:
        echo = client.get(
            "https://example.org:8443/p", headers={"User-Agent": "custom", "X-Thing": "1"}
        ).json()
    assert echo["scheme"] == "https"
    assert echo["server"] == ["example.org", 8443]
    assert echo["client"] is None
    assert header(echo, "host") == ["example.org:8443"]
    assert header(echo, "user-agent") == ["custom"]
    assert header(echo, "x-thing") == ["1"]


def test_post_json_is_utf8_without_ascii_escapes() -> None:
    with TestClient(echo_app) as client:
        echo = client.post("/j", json={"name": "Zoë", "n": [1, 2]}).json()
    raw = echo["body"].encode("latin-1")
    assert json.loads(raw.decode("utf-8")) == {"name": "Zoë", "n": [1, 2]}
    assert "Zoë".encode() in raw  # ensure_ascii=False
    assert header(echo, "content-type") == ["application/json"]
    assert header(echo, "content-length") == [str(len(raw))]


def test_post_form_data_is_urlencoded() -> None:
    with TestClient(echo_app) as client:
        echo = client.post("/f", data={"a": "1 2", "b": ["x", "y&z"]}).json()
    assert header(echo, "content-type") == ["application/x-www-form-urlencoded"]
    assert parse_qsl(echo["body"]) == [("a", "1 2"), ("b", "x"), ("b", "y&z")]


def test_post_multipart_files_and_fields() -> None:
    files = {
        "upload": ("hello.txt", b"hello\r\nworld", "text/plain"),
        "blob": ("data.bin", io.BytesIO(b"\x00\x01\xff")),
    }
    with TestClient(echo_app) as client:
        echo = client.post("/m", data={"title": "Größe"}, files=files).json()
    (content_type,) = header(echo, "content-type")
    assert content_type.startswith("multipart/form-data; boundary=")
    raw = echo["body"].encode("latin-1")
    assert header(echo, "content-length") == [str(len(raw))]
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
    assert set(parts) == {"title", "upload", "blob"}
    assert parts["title"].get_payload(decode=True) == "Größe".encode()
    assert parts["upload"].get_filename() == "hello.txt"
    assert parts["upload"].get_content_type() == "text/plain"
    assert parts["upload"].get_payload(decode=True) == b"hello\r\nworld"
    assert parts["blob"].get_filename() == "data.bin"
    assert parts["blob"].get_content_type() == "application/octet-stream"
    assert parts["blob"].get_payload(decode=True) == b"\x00\x01\xff"


def test_raw_content_and_cookies() -> None:
    with TestClient(echo_app) as client:
        echo = client.put("/c", content=b"\x00raw", cookies={"a": "1", "b": "2"}).json()
    assert echo["method"] == "PUT"
    assert echo["body"] == "\x00raw"
    assert header(echo, "cookie") == ["a=1; b=2"]
    assert header(echo, "content-length") == ["4"]


def test_conflicting_body_arguments_are_rejected() -> None:
    client = TestClient(echo_app)
    with pytest.raises(TypeError):
        client.post("/", json={"a": 1}, content=b"x")
    client.close()


async def headers_app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [
                (b"Content-Type", b"text/plain; charset=latin-1"),
                (b"X-Custom", b"yes"),
                (b"set-cookie", b"a=1"),
                (b"Set-Cookie", b"b=2"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": "héllo".encode("latin-1")})


def test_response_headers_are_case_insensitive_and_text_uses_charset() -> None:
    with TestClient(headers_app) as client:
        response = client.get("/")
    assert isinstance(response.headers, ResponseHeaders)
    assert response.headers["x-custom"] == response.headers["X-CUSTOM"] == "yes"
    assert "X-Custom" in response.headers
    assert response.headers.get("X-CUSTOM") == "yes"
    assert response.headers.get("missing", "d") == "d"
    assert response.headers.get_list("SET-COOKIE") == ["a=1", "b=2"]
    assert response.text == "héllo"
    assert response.content == "héllo".encode("latin-1")
    assert response.reason_phrase == "Not Found"
    with pytest.raises(HTTPStatusError) as info:
        response.raise_for_status()
    assert info.value.response is response


def test_head_response_has_no_body() -> None:
    with TestClient(headers_app) as client:
        response = client.head("/")
    assert response.headers["x-custom"] == "yes"
    assert response.content == b""


def test_request_waits_for_work_after_the_last_body_message() -> None:
    done: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send_json(send, {"ok": True})
        await asyncio.sleep(0.1)  # "background task" after the response
        done.append("background")

    client = TestClient(app)
    try:
        assert client.get("/").json() == {"ok": True}
        assert done == ["background"]
    finally:
        client.close()


# --------------------------------------------------------------------------------------- lifespan


def make_lifespan_app(log: list[str], fail_startup: bool = False) -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    log.append("startup")
                    if fail_startup:
                        await send({"type": "lifespan.startup.failed", "message": "no database"})
                        return
                    scope["state"]["db"] = "connected"
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    log.append("shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await read_body(receive)
        log.append("request")
        await send_json(send, {"state": scope["state"]})

    return app


def test_lifespan_runs_with_context_manager_and_state_reaches_requests() -> None:
    log: list[str] = []
    with TestClient(make_lifespan_app(log)) as client:
        assert log == ["startup"]
        assert client.get("/").json() == {"state": {"db": "connected"}}
        assert log == ["startup", "request"]
    assert log == ["startup", "request", "shutdown"]
    assert not any(t.name == "rat-engine-testclient" for t in threading.enumerate()), (
        "loop thread left running"
    )


def test_without_context_manager_there_is_no_lifespan() -> None:
    log: list[str] = []
    client = TestClient(make_lifespan_app(log))
    try:
        assert client.get("/").json() == {"state": {}}
    finally:
        client.close()
    assert log == ["request"]


def test_lifespan_startup_failed_raises() -> None:
    with pytest.raises(RuntimeError, match="no database"):
        with TestClient(make_lifespan_app([], fail_startup=True)):
            pass  # pragma: no cover


def test_app_raising_on_lifespan_is_treated_as_unsupported() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        assert scope["type"] == "http", "lifespan not supported"
        await send_json(send, {"ok": True})

    with TestClient(app) as client:
        assert client.get("/").json() == {"ok": True}


# -------------------------------------------------------------------------------------- streaming


def make_infinite_sse_app(observed: list[str], errors: list[BaseException]) -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        disconnected = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()

        watcher = asyncio.create_task(watch())
        accept = dict(scope["headers"]).get(b"accept", b"").decode()
        last_id = dict(scope["headers"]).get(b"last-event-id", b"").decode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": f": accept={accept} last={last_id}\n\n".encode(),
                "more_body": True,
            }
        )
        n = 0
        try:
            while not disconnected.is_set():
                await send(
                    {
                        "type": "http.response.body",
                        "body": f"id: {n}\ndata: {n}\n\n".encode(),
                        "more_body": True,
                    }
                )
                n += 1
                await asyncio.sleep(0.01)
            # a few more sends after the disconnect must neither block nor raise
            for _ in range(3):
                await send({"type": "http.response.body", "body": b"data: late\n\n", "more_body": True})
            observed.append("disconnect")
        except BaseException as exc:  # pragma: no cover - recorded so the test can fail on it
            errors.append(exc)
            raise
        finally:
            await watcher

    return app


def test_infinite_sse_can_be_read_and_exited_and_app_sees_disconnect() -> None:
    observed: list[str] = []
    errors: list[BaseException] = []
    with TestClient(make_infinite_sse_app(observed, errors)) as client:
        with client.sse("/events", last_event_id="41") as events:
            assert events.response.status_code == 200
            assert events.response.headers["content-type"] == "text/event-stream"
            got = [events.next_event(timeout=5) for _ in range(3)]
            assert events.comments == [" accept=text/event-stream last=41"]
        exited = time.monotonic()
        assert [e.data for e in got] == ["0", "1", "2"]
        assert [e.id for e in got] == ["0", "1", "2"]
        assert got[0] == ServerSentEvent(event="message", data="0", id="0")
        while not observed and time.monotonic() - exited < 1.0:
            time.sleep(0.01)
        assert observed == ["disconnect"], "the app did not observe http.disconnect within 1 s"
    assert errors == []


def test_streaming_chunks_arrive_before_the_response_is_complete() -> None:
    release = asyncio.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"chunk1", "more_body": True})
        await release.wait()  # only set by the test after it has received chunk 1
        await send({"type": "http.response.body", "body": b"chunk2", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    with TestClient(app) as client:
        with client.stream("GET", "/", timeout=5) as response:
            assert response.status_code == 200
            chunks = response.iter_bytes(timeout=2)
            assert next(chunks) == b"chunk1"
            assert not response.is_complete
            client.call_soon(release.set)
            assert list(chunks) == [b"chunk2"]
            assert response.read() == b"chunk1chunk2"


def test_iter_lines_handles_all_line_endings_across_chunks() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in [b"a\r", b"\nb\rc\n", b"\n", "d\u00e9".encode()[:-1], "d\u00e9".encode()[-1:] + b"\r"]:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"tail"})

    client = TestClient(app)
    try:
        with client.stream("GET", "/") as response:
            assert list(response.iter_lines()) == ["a", "b", "c", "", "dé", "tail"]
    finally:
        client.close()


def test_sse_stream_ends_with_eof_and_iteration_stops() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": b'\xef\xbb\xbfevent: a\ndata: {"x": 1}\n\n:ping\n',
                "more_body": True,
            }
        )
        await send({"type": "http.response.body", "body": b"data: b\n\ndata: never dispatched\n"})

    client = TestClient(app)
    try:
        with client.sse("/") as events:
            assert list(events) == [ServerSentEvent(event="a", data='{"x": 1}'), ServerSentEvent(data="b")]
            assert events.comments == ["ping"]
            with pytest.raises(EOFError):
                events.next_event(timeout=1)
        with client.sse("/") as events:
            assert events.next_event().json() == {"x": 1}
    finally:
        client.close()


def test_next_event_times_out() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b": only comments\n\n", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass

    client = TestClient(app)
    try:
        with client.sse("/") as events:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                events.next_event(timeout=0.2)
            assert time.monotonic() - started < 2
            assert events.comments == [" only comments"]
    finally:
        client.close()


# ------------------------------------------------------------------------------ errors / timeouts


class Boom(Exception):
    pass


async def failing_app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    raise Boom("before start")


def test_server_exception_is_reraised_in_the_caller() -> None:
    with TestClient(failing_app) as client:
        with pytest.raises(Boom, match="before start"):
            client.get("/")
        with pytest.raises(Boom):
            with client.stream("GET", "/"):
                pass  # pragma: no cover


def test_server_exception_becomes_500_when_not_raising() -> None:
    with TestClient(failing_app, raise_server_exceptions=False) as client:
        response = client.get("/")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"


def test_exception_mid_stream_is_raised_when_reading() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise Boom("mid stream")

    client = TestClient(app)
    try:
        with client.stream("GET", "/") as response:
            assert response.status_code == 200
            with pytest.raises(Boom, match="mid stream"):
                response.read()
    finally:
        client.close()


def test_request_timeout_raises_and_the_app_is_disconnected() -> None:
    saw_disconnect = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await read_body(receive)
        await receive()  # blocks until the client gives up
        saw_disconnect.set()

    client = TestClient(app)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            client.get("/", timeout=0.3)
        assert time.monotonic() - started < 2
        assert saw_disconnect.wait(2)
    finally:
        client.close()


def test_timeout_applies_to_a_never_ending_body() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            await asyncio.sleep(0.01)

    client = TestClient(app)
    try:
        with pytest.raises(TimeoutError):
            client.get("/", timeout=0.3)
    finally:
        started = time.monotonic()
        client.close()  # the app ignores disconnects: cancelled after the 2 s grace
        assert time.monotonic() - started < 5


def test_close_cancels_tasks_that_ignore_disconnect() -> None:
    cancelled = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"x", "more_body": True})
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    client = TestClient(app)
    with client.stream("GET", "/") as response:
        assert next(response.iter_bytes()) == b"x"
    assert not cancelled.is_set()
    client.close()
    assert cancelled.is_set()


# ------------------------------------------------------------------------------------ SSE parser


SSE_CASES: list[tuple[str, str, list[ServerSentEvent]]] = [
    ("simple", "data: hello\n\n", [ServerSentEvent(data="hello")]),
    ("multi-line data joined with LF", "data: a\ndata: b\ndata:\n\n", [ServerSentEvent(data="a\nb\n")]),
    ("CRLF endings", "data: a\r\ndata: b\r\n\r\n", [ServerSentEvent(data="a\nb")]),
    ("CR-only endings", "event: x\rdata: a\rdata: b\r\r", [ServerSentEvent(event="x", data="a\nb")]),
    ("comments ignored", ": c1\ndata: a\n:c2\n\n", [ServerSentEvent(data="a")]),
    ("data without colon is empty data", "data\n\n", [ServerSentEvent(data="")]),
    ("only one leading space stripped", "data:  two\ndata:none\n\n", [ServerSentEvent(data=" two\nnone")]),
    ("space before colon is part of the name", "data : x\n\n", []),
    ("value may contain colons", "data: a: b:c\n\n", [ServerSentEvent(data="a: b:c")]),
    ("event type and id", "event: upd\nid: 7\ndata: x\n\n", [ServerSentEvent(event="upd", data="x", id="7")]),
    (
        "id persists across events",
        "id: 1\ndata: a\n\ndata: b\n\n",
        [ServerSentEvent(data="a", id="1"), ServerSentEvent(data="b", id="1")],
    ),
    (
        "id with NUL ignored",
        "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
        [ServerSentEvent(data="a", id="1"), ServerSentEvent(data="b", id="1")],
    ),
    (
        "empty id resets",
        "id: 1\ndata: a\n\nid\ndata: b\n\n",
        [ServerSentEvent(data="a", id="1"), ServerSentEvent(data="b", id="")],
    ),
    ("retry digits", "retry: 3000\ndata: a\n\n", [ServerSentEvent(data="a", retry=3000)]),
    (
        "retry non-digits ignored",
        "retry: 30s\ndata: a\n\nretry: -1\ndata: b\n\nretry: 1.5\ndata: c\n\n",
        [ServerSentEvent(data="a"), ServerSentEvent(data="b"), ServerSentEvent(data="c")],
    ),
    ("event without data not dispatched", "event: x\n\ndata: a\n\n", [ServerSentEvent(data="a")]),
    ("id-only block updates the last id", "id: 5\n\ndata: a\n\n", [ServerSentEvent(data="a", id="5")]),
    (
        "event type reset after dispatch",
        "event: x\ndata: a\n\ndata: b\n\n",
        [ServerSentEvent(event="x", data="a"), ServerSentEvent(data="b")],
    ),
    ("empty event name means message", "event:\ndata: a\n\n", [ServerSentEvent(data="a")]),
    ("leading BOM stripped", "\ufeffdata: a\n\n", [ServerSentEvent(data="a")]),
    ("only one BOM stripped", "\ufeff\ufeffdata: a\n\ndata: b\n\n", [ServerSentEvent(data="b")]),
    ("unknown fields ignored", "foo: bar\ndata: a\n\n", [ServerSentEvent(data="a")]),
    ("unterminated event not dispatched", "data: a\n\ndata: b\n", [ServerSentEvent(data="a")]),
    ("unicode data", "data: héllo ✓\n\n", [ServerSentEvent(data="héllo ✓")]),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in SSE_CASES], ids=[c[0] for c in SSE_CASES])
def test_sse_parser_follows_whatwg_rules(text: str, expected: list[ServerSentEvent]) -> None:
    assert parse_sse(text) == expected
    parser = SSEParser()  # same result when fed one character at a time (CRLF split across feeds)
    assert [event for char in text for event in parser.feed(char)] == expected


def test_sse_parser_tracks_comments_retry_and_last_id() -> None:
    parser = SSEParser()
    assert parser.feed(": ping\nretry: 10\nid: abc\n\n:\n") == []
    assert parser.comments == [" ping", ""]
    assert parser.retry == 10
    assert parser.last_event_id == "abc"
    assert parser.feed("retry: x\ndata: 1\n\n") == [ServerSentEvent(data="1", id="abc")]
    assert parser.retry == 10


def test_sse_parser_dispatches_on_cr_without_waiting_for_the_next_chunk() -> None:
    parser = SSEParser()
    assert parser.feed("data: a\r\r") == [ServerSentEvent(data="a")]
    assert parser.feed("\ndata: b\r") == []  # the LF completes the earlier CRLF, it is not a blank line
    assert parser.feed("\n\r\n") == [ServerSentEvent(data="b")]


def test_server_sent_event_json() -> None:
    assert ServerSentEvent(data='{"a": [1]}').json() == {"a": [1]}
