"""Integration tests: malformed and abusive HTTP/1.1 input over raw sockets to the real server.

For every input the server must answer 4xx (or close the connection) within the socket timeout,
never with a 5xx, and must go on serving normal requests afterwards.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from support.http import RawResponse, raw_request
from support.live import run_live
from support.malformed import (
    MAX_BODY,
    SOCKET_TIMEOUT,
    H,
    assert_serving,
    build_app,
    random_requests,
)
from support.malformed import chunked as _chunked

pytestmark = pytest.mark.timeout(60)


def assert_rejected(result: RawResponse, allowed: set[int] | None = None) -> None:
    assert result.elapsed < SOCKET_TIMEOUT
    if result.status is None:
        assert result.closed, result
        return
    assert 400 <= result.status < 500, result
    if allowed is not None:
        assert result.status in allowed, result


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    """The app of ``support.malformed`` on a real server; every test ends with
    ``assert_serving(server)``: it is still running and still answers normal requests."""
    with run_live(build_app(), log_level="error") as handle:
        yield handle


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
def test_malformed_input_is_rejected(server: Any, payload: bytes, allowed: set[int] | None) -> None:
    result = raw_request(server.port, payload)
    assert_rejected(result, allowed)
    assert_serving(server)


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
def test_odd_percent_encoding_is_never_5xx(server: Any, target: bytes, expected: set[int] | None) -> None:
    result = raw_request(server.port, H(b"GET " + target + b" HTTP/1.1", b"Host: t", b"Connection: close"))
    assert result.status is not None, result
    assert result.status < 500, result
    assert result.status == 200 or 400 <= result.status < 500, result
    if expected is not None:
        assert result.status in expected, result
    assert_serving(server)


def test_keep_alive_connection_survives_413(server: Any) -> None:
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
    assert_serving(server)


def test_within_limit_body_is_accepted(server: Any) -> None:
    body = b"q" * MAX_BODY
    with httpx.Client(timeout=SOCKET_TIMEOUT) as client:
        r = client.post(server.url + "/echo", content=body)
        assert r.status_code == 200 and r.content == body
        r = client.post(server.url + "/echo", content=iter([body[:500], body[500:]]))  # chunked upload
        assert r.status_code == 200 and r.content == body
    assert_serving(server)


# ---------------------------------------------------------------------------------------------
# property-based: random request lines and headers (the generator is in support.malformed)
# ---------------------------------------------------------------------------------------------
def test_random_requests_never_5xx_or_hang(server: Any) -> None:
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
    assert_serving(server)
