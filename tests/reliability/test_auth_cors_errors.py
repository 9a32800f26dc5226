"""Scenario 9 -- auth, CORS and error exposure:

* a ``before_request`` hook (and a Middleware) rejects SSE requests with 401/403 before the
  generator starts: the generators' start counters stay at 0 for every rejected request;
* CORS answers only the configured origin (look-alike origins get no ``Access-Control-Allow-Origin``
  and their preflights get 403);
* 500 bodies and SSE ``error`` events hide the exception text unless ``debug=True``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from support.http import get
from support.live import run_live
from support.sse import parse_sse_body

from rat_engine import Middleware, RatApp

from ._support import report

TOKEN = "Bearer good-token"
GOOD_ORIGIN = "https://good.example"
SECRET_TEXT = "secret-internal-detail-7f3a"

starts: Counter[str] = Counter()
_starts_lock = threading.Lock()


def _started(kind: str) -> None:
    with _starts_lock:
        starts[kind] += 1


class TokenMiddleware(Middleware):
    def before_request(self, request_data: dict[str, Any]) -> Any:
        if request_data["path"].startswith("/mw/") and request_data["headers"].get("x-api-key") != "k":
            return {"error": "forbidden"}, 403
        return None


def build_auth_app() -> RatApp:
    app = RatApp(name="auth", sse_ping_interval=0)
    app.enable_cors(allow_origins=[GOOD_ORIGIN], allow_headers=["Authorization", "Last-Event-ID"])
    app.add_middleware(TokenMiddleware())

    @app.before_request
    async def auth(request_data: dict[str, Any]) -> Any:
        if not request_data["path"].startswith("/sse/") or request_data["method"] == "OPTIONS":
            return None
        header = request_data["headers"].get("authorization")
        if header is None:
            return "unauthorized", 401, {"WWW-Authenticate": "Bearer"}
        if header != TOKEN:
            return "forbidden", 403
        return None

    @app.sse("/sse/sync")
    def sse_sync(request_data: dict[str, Any]) -> Any:
        _started("sync")
        yield "hello"

    @app.sse("/sse/async")
    async def sse_async(request_data: dict[str, Any]) -> Any:
        _started("async")
        yield "hello"

    @app.sse("/mw/stream")
    def mw_stream(request_data: dict[str, Any]) -> Any:
        _started("mw")
        yield "hello"

    @app.json("/public", methods=["GET"])
    def public() -> dict[str, Any]:
        return {"ok": True}

    return app


@pytest.fixture(scope="module")
def auth_server() -> Iterator[Any]:
    with run_live(build_auth_app()) as handle:
        yield handle


def test_rejected_sse_requests_never_start_a_generator(auth_server: Any) -> None:
    starts.clear()
    port = auth_server.port
    statuses: Counter[str] = Counter()
    attempts = 0
    for path in ("/sse/sync", "/sse/async"):
        for headers, expected in (
            ({}, 401),
            ({"Authorization": "Bearer wrong"}, 403),
            ({"Authorization": "bearer good-token"}, 403),
            ({"Authorization": "Bearer good-token2"}, 403),
        ):
            for _ in range(25):
                response = get(port, path, headers={"Accept": "text/event-stream", **headers})
                attempts += 1
                statuses[f"{path} {response.status}"] += 1
                assert response.status == expected, (path, headers, response)
                assert b"text/event-stream" not in response.head.lower()
    for _ in range(25):
        response = get(port, "/mw/stream", headers={"x-api-key": "nope"})
        attempts += 1
        statuses[f"/mw/stream {response.status}"] += 1
        assert response.status == 403
    rejected_starts = dict(starts)
    # The same routes with credentials do start (the counters work).
    ok = [
        get(port, p, headers=h)
        for p, h in (
            ("/sse/sync", {"Authorization": TOKEN}),
            ("/sse/async", {"Authorization": TOKEN}),
            ("/mw/stream", {"x-api-key": "k"}),
        )
    ]
    events = [parse_sse_body(r.body) for r in ok]
    report(
        "auth_before_stream",
        f"{attempts} unauthenticated/forged SSE requests -> {dict(statuses)}; generator starts while "
        f"rejected: {sum(rejected_starts.values())}; with credentials: {dict(starts)}",
        attempts=attempts,
        statuses=dict(statuses),
        starts_while_rejected=rejected_starts,
        starts_after=dict(starts),
    )
    assert rejected_starts == {}, rejected_starts
    assert all(r.status == 200 for r in ok), ok
    assert all([e.data for e in evs] == ["hello"] for evs in events), events
    assert dict(starts) == {"sync": 1, "async": 1, "mw": 1}


LOOKALIKES = [
    "https://evil.example",
    "https://good.example.evil.com",
    "https://evil.com/https://good.example",
    "https://good.example:8443",
    "http://good.example",
    "https://GOOD.EXAMPLE.",
    "null",
    "*",
    "https://good.examplex",
    "https://xgood.example",
    "https://good.example/",
    "https://good.example%00",
]


def test_cors_answers_only_configured_origins(auth_server: Any) -> None:
    port = auth_server.port
    wrong: list[tuple[str, str, Any]] = []
    checked = 0
    for origin in LOOKALIKES:
        for path, headers in (("/public", {}), ("/sse/sync", {"Authorization": TOKEN})):
            response = get(port, path, headers={"Origin": origin, **headers})
            checked += 1
            if response.header("access-control-allow-origin") is not None:
                wrong.append(("simple", origin, response.header("access-control-allow-origin")))
        preflight = get(
            port,
            "/sse/sync",
            method="OPTIONS",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        checked += 1
        if preflight.status != 403 or preflight.header("access-control-allow-origin") is not None:
            wrong.append(("preflight", origin, preflight.status))
    # The configured origin is answered, for plain responses, streams and preflights.
    good_simple = get(port, "/public", headers={"Origin": GOOD_ORIGIN})
    good_stream = get(port, "/sse/sync", headers={"Origin": GOOD_ORIGIN, "Authorization": TOKEN})
    good_preflight = get(
        port,
        "/sse/sync",
        method="OPTIONS",
        headers={
            "Origin": GOOD_ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, last-event-id",
        },
    )
    bad_header_preflight = get(
        port,
        "/sse/sync",
        method="OPTIONS",
        headers={
            "Origin": GOOD_ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-evil",
        },
    )
    report(
        "cors",
        f"{checked} requests from {len(LOOKALIKES)} look-alike origins (simple, SSE, preflight): "
        f"{len(wrong)} answered with Access-Control-Allow-Origin; configured origin answered on JSON, SSE "
        f"and preflight ({good_preflight.status}); unlisted request header preflight -> {bad_header_preflight.status}",
        requests=checked,
        lookalikes=len(LOOKALIKES),
        wrong=wrong,
    )
    assert not wrong, wrong
    for response in (good_simple, good_stream):
        assert response.status == 200
        assert response.header("access-control-allow-origin") == GOOD_ORIGIN
        assert "origin" in (response.header("vary") or "").lower()
    assert good_preflight.status == 204
    assert good_preflight.header("access-control-allow-origin") == GOOD_ORIGIN
    assert bad_header_preflight.status == 403  # a non-2xx preflight fails in the browser


class Unserialisable:
    def __repr__(self) -> str:
        return f"<Unserialisable {SECRET_TEXT}>"


def build_error_app(debug: bool) -> RatApp:
    app = RatApp(name=f"errors-debug-{debug}", debug=debug, sse_ping_interval=0)

    @app.before_request
    def hook(request_data: dict[str, Any]) -> Any:
        if request_data["path"] == "/err/hook":
            raise RuntimeError(f"hook {SECRET_TEXT}")
        return None

    @app.after_request
    def after(request_data: dict[str, Any], response: Any) -> Any:
        if request_data["path"] == "/err/after":
            raise KeyError(f"after {SECRET_TEXT}")
        return response

    @app.errorhandler(ZeroDivisionError)
    def broken_handler(error: Exception) -> Any:
        raise ValueError(f"handler {SECRET_TEXT}")

    @app.json("/err/plain", methods=["GET"])
    def plain() -> Any:
        raise RuntimeError(f"plain {SECRET_TEXT}")

    @app.json("/err/async", methods=["GET"])
    async def async_() -> Any:
        raise OSError(f"async {SECRET_TEXT}")

    @app.json("/err/zero", methods=["GET"])
    def zero() -> Any:
        return 1 / 0

    @app.json("/err/serialise", methods=["GET"])
    def serialise() -> Any:
        return {"value": Unserialisable()}

    @app.json("/err/hook", methods=["GET"])
    def hooked() -> Any:
        return {"ok": True}

    @app.json("/err/after", methods=["GET"])
    def aftered() -> Any:
        return {"ok": True}

    @app.sse("/err/sse-sync")
    def sse_sync(request_data: dict[str, Any]) -> Any:
        yield "first"
        raise RuntimeError(f"sse sync {SECRET_TEXT}")

    @app.sse("/err/sse-async")
    async def sse_async(request_data: dict[str, Any]) -> Any:
        yield "first"
        await asyncio.sleep(0)
        raise RuntimeError(f"sse async {SECRET_TEXT}")

    @app.sse("/err/sse-encode")
    def sse_encode(request_data: dict[str, Any]) -> Any:
        yield "first"
        yield {"value": Unserialisable()}

    return app


ERROR_PATHS = ["/err/plain", "/err/async", "/err/zero", "/err/serialise", "/err/hook", "/err/after"]
SSE_ERROR_PATHS = ["/err/sse-sync", "/err/sse-async", "/err/sse-encode"]


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_errors_hide_internals_unless_debug(debug: bool) -> None:
    hidden: list[str] = []
    shown: list[str] = []
    statuses: dict[str, Any] = {}
    with run_live(build_error_app(debug)) as handle:
        for path in ERROR_PATHS:
            response = get(handle.port, path)
            statuses[path] = response.status
            assert response.status == 500, (path, response)
            body = json.loads(response.body)
            assert body["status"] == 500 and body["error"] == "Internal Server Error", body
            text = response.head + response.body
            (shown if SECRET_TEXT.encode() in text else hidden).append(path)
            if not debug:
                assert b"Traceback" not in text and b"Error" not in text.replace(
                    b"Internal Server Error", b""
                )
        for path in SSE_ERROR_PATHS:
            response = get(handle.port, path)
            events = parse_sse_body(response.body)
            statuses[path] = [e.event for e in events]
            assert response.status == 200 and [e.event for e in events] == ["message", "error"], (
                path,
                events,
            )
            payload = json.loads(events[1].data)
            assert payload["type"] == "error"
            if debug:
                (shown if SECRET_TEXT in payload["message"] else hidden).append(path)
            else:
                assert payload == {"type": "error", "message": "Internal Server Error"}, payload
                (shown if SECRET_TEXT.encode() in response.body else hidden).append(path)
    total = len(ERROR_PATHS) + len(SSE_ERROR_PATHS)
    if debug:
        summary = f"debug=True: exception text shown in {len(shown)}/{total} error responses/events"
    else:
        summary = (
            f"debug=False: {total} failing handlers/hooks/serialisers/generators -> exception text "
            f"leaked in {len(shown)}/{total} (500 bodies and SSE error events)"
        )
    report(
        f"error_exposure[{'debug' if debug else 'production'}]",
        summary,
        statuses=statuses,
        shown=shown,
        hidden=hidden,
    )
    if debug:
        # Every exception raised by user code shows its text; the hook/handler failures too.
        assert set(shown) >= {"/err/plain", "/err/async", "/err/sse-sync", "/err/sse-async"}, (shown, hidden)
    else:
        assert shown == [], shown
