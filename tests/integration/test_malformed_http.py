"""Integration tests: malformed and abusive HTTP/1.1 input over raw sockets to the real server.

For every input the server must answer 4xx (or close the connection) within the socket timeout,
never with a 5xx, and must go on serving normal requests afterwards.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rat_engine import RatApp

pytestmark = pytest.mark.timeout(60)

SOCKET_TIMEOUT = 5.0
MAX_BODY = 1024
_STATUS_LINE = re.compile(rb"^HTTP/\d\.\d (\d{3})")


class RawResult:
    def __init__(self, status: int | None, raw: bytes, closed: bool, elapsed: float) -> None:
        self.status = status
        self.raw = raw
        self.closed = closed
        self.elapsed = elapsed

    def __repr__(self) -> str:
        return f"RawResult(status={self.status}, closed={self.closed}, elapsed={self.elapsed:.3f}, raw={self.raw[:200]!r})"


def raw_request(port: int, payload: bytes, timeout: float = SOCKET_TIMEOUT) -> RawResult:
    """Send ``payload`` on a fresh connection and read up to the end of the first final response head.

    Raises AssertionError if the server neither answers nor closes within ``timeout`` (a hang).
    """
    start = time.monotonic()
    buf = b""
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(payload)
        except OSError:
            pass  # the server may answer and close before taking everything (e.g. 413)
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                raise AssertionError(
                    f"server hung: no response and no close within {timeout}s for {payload[:200]!r}"
                ) from None
            except OSError:  # connection reset: the server dropped us, which counts as closed
                closed = True
                break
            if not data:
                closed = True
                break
            buf += data
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                continue
            m = _STATUS_LINE.match(buf)
            if m and m.group(1).startswith(b"1"):  # interim response (100 Continue): skip it
                buf = buf[head_end + 4 :]
                continue
            break
    m = _STATUS_LINE.match(buf)
    return RawResult(int(m.group(1)) if m else None, buf, closed, time.monotonic() - start)


def assert_rejected(result: RawResult, allowed: set[int] | None = None) -> None:
    assert result.elapsed < SOCKET_TIMEOUT
    if result.status is None:
        assert result.closed, result
        return
    assert 400 <= result.status < 500, result
    if allowed is not None:
        assert result.status in allowed, result


# ---------------------------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------------------------
class Server:
    def __init__(self) -> None:
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
            # Text, not JSON: a JSON int >= 2**64 is a known encoder bug (test_core_http covers
            # it), and this module is about the server surviving malformed input.
            return f"item {id}"

        self.app = app
        self.handle = app.run(host="127.0.0.1", port=0, blocking=False, log_level="error")
        self.port: int = self.handle.port
        self.url: str = self.handle.url

    def assert_alive(self) -> None:
        with httpx.Client(timeout=SOCKET_TIMEOUT) as client:
            r = client.get(self.url + "/")
        assert r.status_code == 200
        assert r.text == "ok"
        # and over a raw socket too
        result = raw_request(self.port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert result.status == 200, result


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = Server()
    try:
        yield srv
    finally:
        srv.handle.stop()


def H(*lines: bytes, body: bytes = b"") -> bytes:  # noqa: N802 - reads like a request
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _chunked(body: bytes, size: int) -> bytes:
    out = b""
    for i in range(0, len(body), size):
        piece = body[i : i + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n\r\n"


# (id, payload, allowed statuses or None for any 4xx)
CASES: list[tuple[str, bytes, set[int] | None]] = [
    ("garbage_request_line", b"GARBAGE\r\n\r\n", {400}),
    ("binary_request_line", b"\x00\x01\x02\xff\xfe\r\n\r\n", {400}),
    ("invalid_http_version", H(b"GET / HTTP/9.9", b"Host: t"), {400, 505}),
    ("invalid_protocol_name", H(b"GET / FOO/1.1", b"Host: t"), {400, 505}),
    ("header_without_colon", H(b"GET / HTTP/1.1", b"Host: t", b"NoColonHere"), {400}),
    ("nul_in_header_value", H(b"GET / HTTP/1.1", b"Host: t", b"X-A: a\x00b"), {400}),
    ("bare_lf_line_endings", b"GET / HTTP/1.1\nHost: t\n\n", {400}),
    ("space_in_target", H(b"GET /a b HTTP/1.1", b"Host: t"), {400}),
    ("missing_target", H(b"GET  HTTP/1.1", b"Host: t"), {400}),
    ("control_chars_in_target", H(b"GET /p/\x01\x7f HTTP/1.1", b"Host: t"), {400}),
    ("raw_non_ascii_in_target", H(b"GET /p/\xff\xfe HTTP/1.1", b"Host: t"), {400}),
    ("content_length_abc", H(b"POST /echo HTTP/1.1", b"Host: t", b"Content-Length: abc"), {400}),
    ("content_length_negative", H(b"POST /echo HTTP/1.1", b"Host: t", b"Content-Length: -5"), {400}),
    ("content_length_plus", H(b"POST /echo HTTP/1.1", b"Host: t", b"Content-Length: +3", body=b"abc"), {400}),
    (
        "content_length_overflow",
        H(b"POST /echo HTTP/1.1", b"Host: t", b"Content-Length: 99999999999999999999999999"),
        {400, 413},
    ),
    (
        "content_length_twice",
        H(b"POST /echo HTTP/1.1", b"Host: t", b"Content-Length: 3", b"Content-Length: 4", body=b"abcd"),
        {400},
    ),
    (
        "content_length_and_chunked",
        H(
            b"POST /echo HTTP/1.1",
            b"Host: t",
            b"Content-Length: 3",
            b"Transfer-Encoding: chunked",
            body=b"3\r\nabc\r\n0\r\n\r\n",
        ),
        {400},
    ),
    (
        "body_too_large_content_length",
        H(
            b"POST /echo HTTP/1.1",
            b"Host: t",
            b"Content-Length: %d" % (MAX_BODY + 1),
            body=b"x" * (MAX_BODY + 1),
        ),
        {413},
    ),
    (
        "body_too_large_declared_only",  # the 413 must come without waiting for the body
        H(b"POST /echo HTTP/1.1", b"Host: t", b"Content-Length: 50000000"),
        {413},
    ),
    (
        "body_too_large_chunked",
        H(
            b"POST /echo HTTP/1.1",
            b"Host: t",
            b"Transfer-Encoding: chunked",
            body=_chunked(b"y" * (3 * MAX_BODY), 512),
        ),
        {413},
    ),
    (
        "body_too_large_on_get",
        H(
            b"GET /echo HTTP/1.1",
            b"Host: t",
            b"Content-Length: %d" % (MAX_BODY + 10),
            body=b"z" * (MAX_BODY + 10),
        ),
        {413},
    ),
    ("url_20000_chars", H(b"GET /" + b"a" * 20000 + b" HTTP/1.1", b"Host: t"), {414}),
    ("query_20000_chars", H(b"GET /?q=" + b"a" * 20000 + b" HTTP/1.1", b"Host: t"), {414}),
    ("200_headers", H(b"GET / HTTP/1.1", b"Host: t", *[b"X-H%d: v" % i for i in range(200)]), {431}),
    ("single_20kb_header", H(b"GET / HTTP/1.1", b"Host: t", b"X-Big: " + b"v" * 20_000), {431}),
    (
        "chunk_size_not_hex",
        H(b"POST /echo HTTP/1.1", b"Host: t", b"Transfer-Encoding: chunked", body=b"zz\r\nabc\r\n0\r\n\r\n"),
        {400},
    ),
    (
        "chunk_size_overflow",
        H(
            b"POST /echo HTTP/1.1",
            b"Host: t",
            b"Transfer-Encoding: chunked",
            body=b"ffffffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
        ),
        {400, 413},
    ),
    (
        "chunk_size_negative",
        H(b"POST /echo HTTP/1.1", b"Host: t", b"Transfer-Encoding: chunked", body=b"-3\r\nabc\r\n0\r\n\r\n"),
        {400},
    ),
    (
        "chunk_missing_crlf",
        H(b"POST /echo HTTP/1.1", b"Host: t", b"Transfer-Encoding: chunked", body=b"3\r\nabcXX0\r\n\r\n"),
        {400},
    ),
    (
        "unknown_transfer_encoding",
        H(b"POST /echo HTTP/1.1", b"Host: t", b"Transfer-Encoding: gzip, identity", body=b""),
        None,
    ),
]


@pytest.mark.parametrize("payload,allowed", [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_input_is_rejected(server: Server, payload: bytes, allowed: set[int] | None) -> None:
    result = raw_request(server.port, payload)
    assert_rejected(result, allowed)
    server.assert_alive()


@pytest.mark.parametrize(
    "target,expected",
    [
        (b"/p/%ff%fe", None),  # invalid UTF-8 after decoding
        (b"/p/%zz", None),  # bad percent-escape
        (b"/p/%", None),
        (b"/p/%e4%b8", None),  # truncated UTF-8 sequence
        (b"/p/a%00b", None),  # NUL after decoding
        (b"/item/%ff", {404}),
        (b"/?a=%ff&b=%zz&c=%", {200}),
        (b"/p/hello%20world", {200}),
    ],
)
def test_odd_percent_encoding_is_never_5xx(server: Server, target: bytes, expected: set[int] | None) -> None:
    result = raw_request(server.port, H(b"GET " + target + b" HTTP/1.1", b"Host: t", b"Connection: close"))
    assert result.status is not None, result
    assert result.status < 500, result
    assert result.status == 200 or 400 <= result.status < 500, result
    if expected is not None:
        assert result.status in expected, result
    server.assert_alive()


def test_keep_alive_connection_survives_413(server: Server) -> None:
    """After a 413 whose body was fully sent, the same connection serves the next request."""
    payload = H(b"POST /echo HTTP/1.1", b"Host: t", b"Content-Length: 2000", body=b"a" * 2000)
    payload += H(b"GET / HTTP/1.1", b"Host: t", b"Connection: close")
    with socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(payload)
        buf = b""
        while True:
            data = sock.recv(65536)
            if not data:
                break
            buf += data
    statuses = [int(s) for s in re.findall(rb"HTTP/1\.1 (\d{3})", buf)]
    assert statuses == [413, 200], buf
    assert buf.endswith(b"ok")


def test_within_limit_body_is_accepted(server: Server) -> None:
    body = b"q" * MAX_BODY
    with httpx.Client(timeout=SOCKET_TIMEOUT) as client:
        r = client.post(server.url + "/echo", content=body)
        assert r.status_code == 200 and r.content == body
        r = client.post(server.url + "/echo", content=iter([body[:500], body[500:]]))  # chunked upload
        assert r.status_code == 200 and r.content == body


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
            tail = _chunked(body, 100)
    else:
        tail = b""
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    if chaos and draw(st.integers(0, 4)) == 0:  # sometimes flip one byte of the head (CR/LF excluded)
        index = draw(st.integers(0, len(head) - 5))
        byte = draw(st.integers(0, 255).filter(lambda b: b not in (10, 13)))
        if head[index] not in (10, 13):
            head = head[:index] + bytes([byte]) + head[index + 1 :]
    return head + tail


def test_random_requests_never_5xx_or_hang(server: Server) -> None:
    tried: list[bytes] = []
    statuses: dict[int | None, int] = {}

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(random_requests())
    def check(payload: bytes) -> None:
        tried.append(payload)
        result = raw_request(server.port, payload)
        statuses[result.status] = statuses.get(result.status, 0) + 1
        if result.status is None:
            assert result.closed, result
        else:
            assert result.status < 500, (payload, result)

    check()
    print(
        f"\nhypothesis tried {len(tried)} random requests; statuses: {dict(sorted(statuses.items(), key=str))}"
    )  # noqa: T201
    assert len(tried) >= 150
    server.assert_alive()


def test_zz_server_still_alive(server: Server) -> None:
    server.assert_alive()
    assert server.handle.running
