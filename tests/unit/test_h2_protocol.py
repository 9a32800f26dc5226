"""rat_engine's HTTP/2 protocol, frame by frame, with the ``h2`` library as the client and no
socket (tests/support/h2.py): flow control per stream, resets, limits on hostile peers, timeouts."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import h2.config
import h2.connection
import h2.events
import hyperframe.frame
import pytest
from h2.errors import ErrorCodes
from support.h2 import SETTINGS, FakeTransport, H2Pair, of_type

from rat_engine import RatApp
from rat_engine.server.flood_guard import DEFAULT_FLOOD_LIMITS, FloodGuard
from rat_engine.server.protocol import RatHttpProtocol


def build_app(log: dict[str, Any]) -> RatApp:
    app = RatApp(name="h2-frames")
    log.setdefault("calls", 0)
    log.setdefault("closed", [])
    log.setdefault("yielded", {})

    @app.json("/json")
    async def json_route(request_data):
        log["calls"] += 1
        return {"ok": True, "host": request_data["headers"].get("host"), "http": request_data.get("method")}

    @app.json("/echo", methods=["POST"])
    async def echo(request_data):
        body = request_data["body"]
        return {"length": len(body)}

    @app.sse("/events/<name>")
    async def events(request_data, name):
        log["calls"] += 1
        log["yielded"][name] = 0
        try:
            i = 0
            while True:
                i += 1
                log["yielded"][name] = i
                yield "x" * 90
                await asyncio.sleep(0)
        finally:
            log["closed"].append(name)

    @app.sse("/count/<int:n>")
    async def count(request_data, n):
        for i in range(n):
            yield f"event {i}"

    @app.json("/boom")
    async def boom(request_data):
        raise RuntimeError("handler failed")

    return app


async def until(pair: H2Pair, condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)
        pair.read()


def goaway(pair: H2Pair) -> Any:
    ends = of_type(pair.received, h2.events.ConnectionTerminated)
    return ends[-1] if ends else None


def ended(pair: H2Pair, stream_id: int) -> bool:
    return any(e.stream_id == stream_id for e in of_type(pair.received, h2.events.StreamEnded))


def headers_of(pair: H2Pair, stream_id: int) -> dict[bytes, bytes]:
    for event in of_type(pair.received, h2.events.ResponseReceived):
        if event.stream_id == stream_id:
            return dict(event.headers)
    raise AssertionError(f"no response on stream {stream_id}")


def run(coro) -> Any:
    return asyncio.run(coro)


# -- requests and responses ------------------------------------------------------------------------
def test_json_request_gets_its_response_and_host_from_authority():
    async def go():
        log: dict[str, Any] = {}
        async with H2Pair(build_app(log)) as pair:
            sid = pair.request("/json")
            await until(pair, lambda: ended(pair, sid))
            head = headers_of(pair, sid)
            assert head[b":status"] == b"200"
            assert b'"host":"test"' in pair.body(sid)
            assert int(head[b"content-length"]) == len(pair.body(sid))

    run(go())


def test_default_headers_are_read_per_response_not_per_connection():
    """uvicorn refreshes the date header in ``server_state.default_headers`` every second: a
    long-lived HTTP/2 connection must not keep the one from when it opened."""

    async def go():
        async with H2Pair(build_app({})) as pair:
            pair.server_state.default_headers = [(b"date", b"first")]
            one = pair.request("/json")
            await until(pair, lambda: ended(pair, one))
            pair.server_state.default_headers = [(b"date", b"second")]
            two = pair.request("/json")
            await until(pair, lambda: ended(pair, two))
            assert headers_of(pair, one)[b"date"] == b"first"
            assert headers_of(pair, two)[b"date"] == b"second"

    run(go())


def test_server_announces_max_concurrent_streams_and_windows():
    async def go():
        async with H2Pair(build_app({}), max_concurrent_streams=77) as pair:
            assert pair.client.remote_settings.max_concurrent_streams == 77
            assert pair.client.remote_settings.initial_window_size >= 65535

    run(go())


def test_connection_specific_headers_never_reach_the_wire():
    async def app(scope, receive, send):
        headers = [
            (b"connection", b"close"),
            (b"keep-alive", b"timeout=5"),
            (b"transfer-encoding", b"chunked"),
            (b"upgrade", b"h2c"),
            (b"x-kept", b"1"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    async def go():
        async with H2Pair(app) as pair:
            sid = pair.request("/")
            await until(pair, lambda: ended(pair, sid))
            head = headers_of(pair, sid)
            assert head[b"x-kept"] == b"1"
            for name in (b"connection", b"keep-alive", b"transfer-encoding", b"upgrade"):
                assert name not in head
            assert pair.body(sid) == b"ok"

    run(go())


def test_response_header_names_are_lowercased_and_invalid_ones_refused():
    async def app(scope, receive, send):
        name = b"X-Bad Name" if scope["path"] == "/bad" else b"X-Mixed-Case"
        await send({"type": "http.response.start", "status": 200, "headers": [(name, b"v")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def go():
        async with H2Pair(app) as pair:
            good = pair.request("/good")
            await until(pair, lambda: ended(pair, good))
            assert headers_of(pair, good)[b"x-mixed-case"] == b"v"
            bad = pair.request("/bad")
            await until(pair, lambda: ended(pair, bad))
            assert headers_of(pair, bad)[b":status"] == b"500"

    run(go())


def test_request_body_larger_than_the_window_arrives_whole():
    async def go():
        async with H2Pair(build_app({})) as pair:
            sid = pair.client.get_next_available_stream_id()
            pair.client.send_headers(
                sid, [(":method", "POST"), (":path", "/echo"), (":scheme", "http"), (":authority", "t")]
            )
            body = b"b" * 300_000
            sent = 0
            deadline = time.monotonic() + 10
            while sent < len(body):  # send as the server's windows allow
                window = pair.client.local_flow_control_window(sid)
                chunk = min(window, pair.client.max_outbound_frame_size, len(body) - sent)
                if chunk:
                    pair.client.send_data(
                        sid, body[sent : sent + chunk], end_stream=sent + chunk == len(body)
                    )
                    sent += chunk
                    pair.send()
                else:
                    assert time.monotonic() < deadline, "the server never reopened its window"
                    await asyncio.sleep(0.005)
                pair.read()
            await until(pair, lambda: ended(pair, sid))
            assert pair.body(sid) == b'{"length":300000}'

    run(go())


def test_handler_exception_is_a_500_and_the_connection_serves_on():
    async def go():
        async with H2Pair(build_app({})) as pair:
            sid = pair.request("/boom")
            await until(pair, lambda: ended(pair, sid))
            assert headers_of(pair, sid)[b":status"] == b"500"
            again = pair.request("/json")
            await until(pair, lambda: ended(pair, again))
            assert headers_of(pair, again)[b":status"] == b"200"
            assert not pair.transport.closed

    run(go())


def test_a_hundred_streams_on_one_connection_all_complete():
    async def go():
        async with H2Pair(build_app({})) as pair:
            ids = [pair.request("/count/50") for _ in range(100)]
            await until(pair, lambda: all(ended(pair, sid) for sid in ids), timeout=20)
            for sid in ids:
                body = pair.body(sid)
                assert body.count(b"data: event ") == 50, sid
                assert b"data: event 49\n\n" in body

    run(go())


# -- per-stream flow control -----------------------------------------------------------------------
def test_an_exhausted_window_holds_one_stream_and_its_sibling_flows():
    async def go():
        log: dict[str, Any] = {}
        # Each stream may receive 1,000 bytes until the client hands its window back.
        async with H2Pair(build_app(log), client_settings={SETTINGS.INITIAL_WINDOW_SIZE: 1000}) as pair:
            stuck = pair.request("/events/stuck")
            flowing = pair.request("/events/flowing")
            for _ in range(200):
                await asyncio.sleep(0.002)
                events = pair.read(ack=False)
                pair.ack(flowing, events)  # only the sibling reads what it gets
            assert len(pair.body(stuck)) <= 1000
            assert len(pair.body(flowing)) > 20 * 1000
            # The held generator waits at its yield: it did not run ahead of the window.
            assert log["yielded"]["stuck"] < 40
            assert log["yielded"]["flowing"] > 200
            assert not pair.transport.closed

    run(go())


def test_client_reset_closes_that_generator_only():
    async def go():
        log: dict[str, Any] = {}
        async with H2Pair(build_app(log)) as pair:
            first = pair.request("/events/first")
            second = pair.request("/events/second")
            await until(pair, lambda: len(pair.body(first)) > 1000 and len(pair.body(second)) > 1000)
            pair.client.reset_stream(first, ErrorCodes.CANCEL)
            pair.send()
            await until(pair, lambda: "first" in log["closed"])
            before = len(pair.body(second))
            for _ in range(50):
                await asyncio.sleep(0.002)
                pair.read()
            assert len(pair.body(second)) > before + 1000
            assert "second" not in log["closed"]
            assert not pair.transport.closed and goaway(pair) is None

    run(go())


# -- hostile peers ------------------------------------------------------------------------------------
def test_rapid_reset_is_capped_with_enhance_your_calm_and_costs_no_handler():
    async def go():
        log: dict[str, Any] = {}
        async with H2Pair(build_app(log)) as pair:
            for _ in range(DEFAULT_FLOOD_LIMITS["reset"] + 50):
                sid = pair.client.get_next_available_stream_id()
                pair.client.send_headers(
                    sid, [(":method", "GET"), (":path", "/json"), (":scheme", "http"), (":authority", "t")]
                )
                pair.client.reset_stream(sid, ErrorCodes.CANCEL)
            pair.send()
            await pair.settle()
            pair.read()
            assert goaway(pair) is not None
            assert goaway(pair).error_code == ErrorCodes.ENHANCE_YOUR_CALM
            assert pair.transport.closed
            assert log["calls"] == 0  # reset in the same read: no request task started

    run(go())


def test_a_page_closing_its_streams_is_not_a_flood():
    async def go():
        log: dict[str, Any] = {}
        async with H2Pair(build_app(log)) as pair:
            ids = [pair.request(f"/events/s{i}") for i in range(100)]
            await until(pair, lambda: all(pair.body(sid) for sid in ids), timeout=10)
            for sid in ids:
                pair.client.reset_stream(sid, ErrorCodes.CANCEL)
            pair.send()
            await until(pair, lambda: len(log["closed"]) == 100)
            assert goaway(pair) is None and not pair.transport.closed

    run(go())


@pytest.mark.parametrize(
    ("kind", "send_one"),
    [
        ("ping", lambda c, i: c.ping(i.to_bytes(8, "big"))),
        ("settings", lambda c, i: c.update_settings({SETTINGS.ENABLE_PUSH: 0})),
        ("priority", lambda c, i: c.prioritize(2 * i + 1, weight=16)),
    ],
)
def test_control_frame_floods_end_with_enhance_your_calm(kind, send_one):
    async def go():
        async with H2Pair(build_app({})) as pair:
            for i in range(DEFAULT_FLOOD_LIMITS[kind] + 20):
                send_one(pair.client, i)
            pair.send()
            await pair.settle()
            pair.read()
            assert goaway(pair) is not None and goaway(pair).error_code == ErrorCodes.ENHANCE_YOUR_CALM
            assert pair.transport.closed

    run(go())


def test_a_few_pings_are_answered():
    async def go():
        async with H2Pair(build_app({})) as pair:
            for i in range(5):
                pair.client.ping(i.to_bytes(8, "big"))
            pair.send()
            await pair.settle()
            pair.read()
            assert len(of_type(pair.received, h2.events.PingAckReceived)) == 5
            assert not pair.transport.closed

    run(go())


def test_empty_data_frame_flood_ends_with_enhance_your_calm():
    async def go():
        async with H2Pair(build_app({})) as pair:
            sid = pair.client.get_next_available_stream_id()
            pair.client.send_headers(
                sid, [(":method", "POST"), (":path", "/echo"), (":scheme", "http"), (":authority", "t")]
            )
            raw = b""
            for _ in range(DEFAULT_FLOOD_LIMITS["empty_data"] + 20):
                raw += hyperframe.frame.DataFrame(sid, data=b"").serialize()
            pair.send()
            pair.send(raw)
            await pair.settle()
            pair.read()
            assert goaway(pair) is not None and goaway(pair).error_code == ErrorCodes.ENHANCE_YOUR_CALM

    run(go())


def test_continuation_flood_is_refused():
    async def go():
        async with H2Pair(build_app({})) as pair:
            headers = hyperframe.frame.HeadersFrame(1)
            headers.data = pair.client.encoder.encode(
                [(":method", "GET"), (":path", "/json"), (":scheme", "http"), (":authority", "t")]
            )
            headers.flags.add("END_STREAM")  # no END_HEADERS: CONTINUATION frames follow
            raw = headers.serialize()
            for _ in range(500):
                cont = hyperframe.frame.ContinuationFrame(1)
                cont.data = b""
                raw += cont.serialize()
            pair.send(raw)
            await pair.settle()
            assert pair.transport.closed
            pair.read()
            assert goaway(pair) is not None and goaway(pair).error_code != ErrorCodes.NO_ERROR

    run(go())


def test_oversized_header_list_is_refused():
    async def go():
        log: dict[str, Any] = {}
        async with H2Pair(build_app(log)) as pair:
            sid = pair.client.get_next_available_stream_id()
            big = [(f"x-h{i}", "v" * 1000) for i in range(100)]  # ~100 KB of headers
            pair.client.send_headers(
                sid, [(":method", "GET"), (":path", "/json"), (":scheme", "http"), (":authority", "t"), *big]
            )
            pair.send()
            await pair.settle()
            pair.read()
            assert goaway(pair) is not None
            assert goaway(pair).error_code == ErrorCodes.ENHANCE_YOUR_CALM
            assert log["calls"] == 0

    run(go())


# -- timeouts ---------------------------------------------------------------------------------------
def test_a_connection_that_sends_no_request_in_time_is_closed():
    async def go():
        async with H2Pair(build_app({}), header_timeout=0.2) as pair:
            await asyncio.sleep(0.4)
            pair.read()
            assert pair.transport.closed and goaway(pair) is not None

    run(go())


def test_a_request_in_time_is_served_and_an_idle_connection_closes_later():
    async def go():
        async with H2Pair(build_app({}), header_timeout=0.2, keep_alive_timeout=0.3) as pair:
            sid = pair.request("/json")
            await until(pair, lambda: ended(pair, sid))
            await asyncio.sleep(0.1)
            assert not pair.transport.closed
            await asyncio.sleep(0.4)
            pair.read()
            assert pair.transport.closed
            assert goaway(pair).error_code == ErrorCodes.NO_ERROR

    run(go())


def test_an_open_stream_keeps_the_connection_past_both_timeouts():
    async def go():
        async with H2Pair(build_app({}), header_timeout=0.1, keep_alive_timeout=0.1) as pair:
            pair.request("/events/long")
            for _ in range(40):
                await asyncio.sleep(0.01)
                pair.read()
            assert not pair.transport.closed

    run(go())


def test_shutdown_sends_each_stream_its_farewell_then_goaway():
    async def go():
        app = build_app({})
        async with H2Pair(app) as pair:
            first = pair.request("/events/a")
            second = pair.request("/events/b")
            await until(pair, lambda: len(pair.body(first)) > 100 and len(pair.body(second)) > 100)
            pair.received.clear()
            app.begin_shutdown()  # what the server does on SIGTERM, before uvicorn's shutdown()
            pair.server.shutdown()
            await until(pair, lambda: pair.transport.closed)
            kinds = [type(e).__name__ for e in pair.received]
            last = max(i for i, e in enumerate(pair.received) if isinstance(e, h2.events.StreamEnded))
            assert kinds.index("ConnectionTerminated") > last  # GOAWAY after both streams ended
            for sid in (first, second):
                assert ended(pair, sid)
                assert b"retry:" in pair.body(sid)[-40:], pair.body(sid)[-200:]  # the farewell frame
            assert goaway(pair).error_code == ErrorCodes.NO_ERROR
            assert goaway(pair).last_stream_id == second

    run(go())


def test_streams_opened_during_shutdown_are_refused():
    async def go():
        async with H2Pair(build_app({})) as pair:
            sid = pair.request("/events/a")
            await until(pair, lambda: len(pair.body(sid)) > 100)
            pair.server.shutdown()
            late = pair.request("/json")
            await until(
                pair, lambda: any(e.stream_id == late for e in of_type(pair.received, h2.events.StreamReset))
            )
            reset = [e for e in of_type(pair.received, h2.events.StreamReset) if e.stream_id == late][0]
            assert reset.error_code == ErrorCodes.REFUSED_STREAM
            assert not pair.transport.closed  # the first stream still runs

    run(go())


# -- the switch from HTTP/1.1 --------------------------------------------------------------------
def _plain_protocol(h2c: bool) -> tuple[RatHttpProtocol, FakeTransport]:
    config = SimpleNamespace(
        loaded=True, loaded_app=build_app({}), root_path="", timeout_keep_alive=5, limit_concurrency=None
    )
    state = SimpleNamespace(connections=set(), tasks=set(), default_headers=[], total_requests=0)
    cls = type("P", (RatHttpProtocol,), {"h2c_enabled": h2c})
    protocol = cls(config, state, {}, asyncio.get_running_loop())
    transport = FakeTransport(protocol)
    protocol.connection_made(transport)
    return protocol, transport


def test_the_preface_without_h2c_gets_goaway_http_1_1_required():
    async def go():
        protocol, transport = _plain_protocol(h2c=False)
        protocol.data_received(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        client.initiate_connection()
        events = client.receive_data(bytes(transport.data))
        assert isinstance(events[0], h2.events.RemoteSettingsChanged)  # the preface a client expects
        assert isinstance(events[-1], h2.events.ConnectionTerminated)
        assert events[-1].error_code == ErrorCodes.HTTP_1_1_REQUIRED
        transport.protocol.data_received(b"more frames the client sent meanwhile")  # read, dropped
        await asyncio.sleep(1.2)
        assert transport.closed

    run(go())


def test_a_preface_split_across_reads_still_switches():
    async def go():
        protocol, transport = _plain_protocol(h2c=True)
        protocol.data_received(b"PRI * HTT")
        assert transport.protocol is protocol and not transport.data
        protocol.data_received(b"P/2.0\r\n\r\nSM\r\n\r\n")
        assert transport.protocol is not protocol  # handed to the HTTP/2 protocol
        frame, _ = hyperframe.frame.Frame.parse_frame_header(memoryview(bytes(transport.data[:9])))
        assert isinstance(frame, hyperframe.frame.SettingsFrame)
        transport.close()
        await asyncio.sleep(0)

    run(go())


def test_http1_requests_starting_with_p_are_still_http1():
    async def go():
        protocol, transport = _plain_protocol(h2c=True)
        protocol.data_received(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nhi")
        for _ in range(20):
            await asyncio.sleep(0.01)
            if b"\r\n\r\n" in transport.data:
                break
        assert transport.data.startswith(b"HTTP/1.1 200")
        transport.close()
        await asyncio.sleep(0)

    run(go())


# -- the guard itself -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("hits", "elapsed", "over"),
    [(10, 0.0, False), (11, 0.0, True), (10, 1.5, False), (25, 0.5, True)],
)
def test_flood_guard_counts_per_one_second_window(hits, elapsed, over):
    now = [0.0]
    guard = FloodGuard(lambda: now[0], {"ping": 10})
    results = []
    for i in range(hits):
        now[0] = elapsed * i / max(1, hits - 1)
        results.append(guard.hit("ping"))
    assert results[-1] is over


def test_forwarded_headers_are_applied_to_http2_requests_too():
    """uvicorn's proxy-headers wrapper is taken off the app on HTTP/2 as on HTTP/1.1 and the
    same rules apply to the scope (see forwarded.py)."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    app = RatApp(name="h2-forwarded")

    @app.json("/who")
    async def who(request_data):
        return {"client": request_data["remote_addr"], "scheme": request_data["scheme"]}

    async def go():
        async with H2Pair(ProxyHeadersMiddleware(app, "127.0.0.1")) as pair:
            assert pair.server.app is app
            plain = pair.request("/who")
            proxied = pair.request(
                "/who", headers=[("x-forwarded-for", "203.0.113.7"), ("x-forwarded-proto", "https")]
            )
            await until(pair, lambda: ended(pair, plain) and ended(pair, proxied))
            assert pair.body(plain) == b'{"client":"127.0.0.1","scheme":"http"}'
            assert pair.body(proxied) == b'{"client":"203.0.113.7","scheme":"https"}'

    run(go())
