"""The malformed-HTTP scenario, shared by tests/integration/test_malformed_http.py (150 random
inputs) and tests/reliability/test_hostile_input.py (the larger run): a small strict app, a
check that a live server still serves, and the hypothesis generator of random requests."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import strategies as st

from rat_engine import RatApp

from .http import raw_request

SOCKET_TIMEOUT = 5.0
MAX_BODY = 1024


def build_app() -> RatApp:
    """``/`` answers "ok"; ``/echo`` returns the body (``max_body_size`` is :data:`MAX_BODY`)."""
    app = RatApp(name="malformed", max_body_size=MAX_BODY, shutdown_grace=1.0)

    @app.html("/")
    def index() -> str:
        return "ok"

    @app.custom("/echo", methods=["GET", "POST", "PUT"])
    def echo(request_data: dict[str, Any]) -> bytes:
        return request_data["raw_body"]

    @app.json("/p/<name>", methods=["GET"])
    def by_name(request_data: dict[str, Any], name: str) -> Any:
        return {"name": name}

    @app.custom("/item/<int:id>", methods=["GET"])
    def by_int(id: int) -> str:
        # Text, not JSON: this app is about the server surviving malformed input.
        return f"item {id}"

    return app


def assert_serving(server: Any) -> None:
    """The live server (a ``run_live`` handle of :func:`build_app`) is running and answers a
    normal request, over httpx and over a raw socket."""
    assert server.running
    with httpx.Client(timeout=SOCKET_TIMEOUT) as client:
        r = client.get(server.url + "/")
    assert r.status_code == 200
    assert r.text == "ok"
    result = raw_request(server.port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert result.status == 200, result


def H(*lines: bytes, body: bytes = b"") -> bytes:  # noqa: N802 - reads like a request
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def chunked(body: bytes, size: int) -> bytes:
    out = b""
    for i in range(0, len(body), size):
        piece = body[i : i + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n\r\n"


# ---------------------------------------------------------------------------------------------
# property-based: random request lines and headers
# ---------------------------------------------------------------------------------------------
_NO_CRLF = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
_TOKEN_CHARS = st.sampled_from(list(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'"))
_TOKEN = st.lists(_TOKEN_CHARS, min_size=1, max_size=20).map(bytes)
_VALID_METHOD = st.sampled_from([b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"])
# one_of picks a branch uniformly, so repeating a branch weights it: mostly well-formed pieces, so
# that inputs get past the HTTP parser into routing, body reading and the handlers.
_METHOD = st.one_of(
    _VALID_METHOD, _VALID_METHOD, _VALID_METHOD, st.sampled_from([b"TRACE", b"CONNECT"]), _TOKEN, _NO_CRLF
)
_PCT = st.integers(0, 255).map(lambda n: b"%%%02x" % n)
_PATH_PIECE = st.one_of(_TOKEN, _PCT, st.sampled_from([b"/", b"%", b"%z", b"..", b"?", b"#", b"&", b"="]))
_TARGET = st.one_of(
    st.sampled_from([b"/", b"/echo", b"/p/x", b"/item/1", b"/item/x", b"*", b"http://h/", b""]),
    st.lists(_PATH_PIECE, max_size=12).map(lambda parts: b"/" + b"".join(parts)),
    st.lists(_PATH_PIECE, max_size=6).map(lambda parts: b"/p/" + b"".join(parts)),
    _NO_CRLF,
)
_VERSION = st.one_of(
    st.just(b"HTTP/1.1"),
    st.just(b"HTTP/1.1"),
    st.just(b"HTTP/1.0"),
    st.sampled_from([b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.1 ", b"http/1.1", b"HTTP/1", b""]),
    _NO_CRLF,
)
_SEP = st.sampled_from([b" "] * 12 + [b"  ", b"\t", b""])
_BANNED = (b"content-length", b"transfer-encoding")


def _allowed_header(pair: tuple[bytes, bytes]) -> bool:
    # A random length/encoding header could make a syntactically fine request wait for a body
    # that never comes; bodies are generated separately, with a correct length.
    return not any(b in pair[0].lower() for b in _BANNED)


_KNOWN_NAMES = st.sampled_from(
    [
        b"Host",
        b"Accept",
        b"X-Custom",
        b"Cookie",
        b"Origin",
        b"Range",
        b"If-None-Match",
        b"Last-Event-ID",
        b"Content-Type",
        b"Connection",
        b"Expect",
        b"Upgrade",
        b"Access-Control-Request-Method",
    ]
)
_HEADER_NAME = st.one_of(_KNOWN_NAMES, _KNOWN_NAMES, _TOKEN, _TOKEN, _NO_CRLF)
_PRINTABLE_VALUE = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(str.encode)
_HEADER_VALUE = st.one_of(
    st.sampled_from(
        [
            b"",
            b"close",
            b"keep-alive",
            b"bytes=0-1",
            b"bytes=-1",
            b"*",
            b"100-continue",
            b"multipart/form-data",
            b"multipart/form-data; boundary=xx",
            b"application/json",
            b"application/x-www-form-urlencoded",
            b"websocket",
            b"h2c",
            b"GET",
        ]
    ),
    _PRINTABLE_VALUE,
    _PRINTABLE_VALUE,
    _NO_CRLF,
)
_HEADERS = st.lists(st.tuples(_HEADER_NAME, _HEADER_VALUE).filter(_allowed_header), max_size=8)
_BODY = st.one_of(
    st.just(None), st.binary(max_size=64), st.binary(min_size=MAX_BODY + 1, max_size=MAX_BODY + 64)
)


@st.composite
def random_requests(draw: st.DrawFn) -> bytes:
    """Half the inputs are well-formed HTTP/1.1 with odd targets, headers and bodies (they reach
    routing, body reading and the handlers); the other half are chaos for the parser."""
    chaos = draw(st.booleans())
    if chaos:
        method, target, version = draw(_METHOD), draw(_TARGET), draw(_VERSION)
        line = method + draw(_SEP) + target + draw(_SEP) + version
    else:
        target = draw(
            st.one_of(
                st.lists(_PATH_PIECE, max_size=12).map(lambda parts: b"/" + b"".join(parts)),
                st.lists(_PATH_PIECE, max_size=6).map(lambda parts: b"/p/" + b"".join(parts)),
                st.sampled_from(
                    [b"/", b"/echo", b"/item/1", b"/item/-3", b"/item/9999999999999999999999", b"*"]
                ),
            )
        )
        line = draw(_VALID_METHOD) + b" " + target + b" " + draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"]))
    lines = [line]
    if draw(st.booleans()):
        lines.append(b"Host: t")
    if chaos:
        for name, value in draw(_HEADERS):
            lines.append(name + draw(st.sampled_from([b": "] * 8 + [b":", b" : ", b""])) + value)
    else:
        pairs = draw(
            st.lists(
                st.tuples(st.one_of(_KNOWN_NAMES, _TOKEN), st.one_of(_HEADER_VALUE, _PRINTABLE_VALUE)).filter(
                    _allowed_header
                ),
                max_size=8,
            )
        )
        lines.extend(name + b": " + value.strip(b" \t\x00\x7f") for name, value in pairs)
    body = draw(_BODY)
    if body is not None:
        if draw(st.booleans()):
            lines.append(b"Content-Length: %d" % len(body))
            tail = body
        else:
            lines.append(b"Transfer-Encoding: chunked")
            tail = chunked(body, 100)
    else:
        tail = b""
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    if chaos and draw(st.integers(0, 4)) == 0:  # sometimes flip one byte of the head (CR/LF excluded)
        index = draw(st.integers(0, len(head) - 5))
        byte = draw(st.integers(0, 255).filter(lambda b: b not in (10, 13)))
        if head[index] not in (10, 13):
            head = head[:index] + bytes([byte]) + head[index + 1 :]
    return head + tail
