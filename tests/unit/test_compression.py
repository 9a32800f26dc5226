"""Compression in-process: negotiation (a table), the codecs' per-write flush, the config in RAT
Engine's two shapes, and the policy of what is never compressed."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from typing import Any

import pytest
from support.sse import incremental_decoder

from rat_engine import CompressionConfig, CompressionType, RatApp, Response
from rat_engine.compression.codecs import BODY_PREFERENCE, STREAM_PREFERENCE, available, make_compressor
from rat_engine.compression.negotiate import choose_encoding, parse_accept_encoding
from rat_engine.testing import TestClient

GZ, DF, BR, ZS = CompressionType.GZIP, CompressionType.DEFLATE, CompressionType.BROTLI, CompressionType.ZSTD
ALL = {GZ, DF, BR, ZS}


decoder = incremental_decoder  # feed compressed bytes, get what they decode to


# -- negotiation ---------------------------------------------------------------------------------

NEGOTIATION = [
    # (Accept-Encoding, usable, preference, expected)
    (None, ALL, BODY_PREFERENCE, None),
    ("", ALL, BODY_PREFERENCE, None),
    ("identity", ALL, BODY_PREFERENCE, None),
    ("gzip", ALL, BODY_PREFERENCE, GZ),
    ("gzip, deflate, br, zstd", ALL, BODY_PREFERENCE, ZS),  # what Chromium sends
    ("gzip, deflate, br", ALL, BODY_PREFERENCE, BR),
    ("gzip, deflate, br", ALL, STREAM_PREFERENCE, GZ),  # streams: br costs ~290 KB each
    ("br", ALL, STREAM_PREFERENCE, BR),  # ... but a client offering only br gets it
    ("gzip;q=0.5, br;q=0.9", ALL, BODY_PREFERENCE, BR),
    ("gzip;q=1.0, zstd;q=0.1", ALL, BODY_PREFERENCE, GZ),  # the client's q wins over our order
    ("gzip;q=0, deflate", ALL, BODY_PREFERENCE, DF),
    ("*", ALL, BODY_PREFERENCE, ZS),
    ("*;q=0.5, gzip;q=0", ALL, BODY_PREFERENCE, ZS),
    ("*;q=0", ALL, BODY_PREFERENCE, None),
    ("zstd, br", {GZ, DF}, BODY_PREFERENCE, None),  # not installed / not enabled
    ("GZIP", ALL, BODY_PREFERENCE, GZ),  # tokens are case-insensitive
    ("gzip;q=abc, deflate;q=0.3", ALL, BODY_PREFERENCE, DF),  # an unreadable q is a no
    ("gzip;q=2", ALL, BODY_PREFERENCE, None),  # out of range: a no
    ("  br ; q=0.8 ,gzip;q=0.8", ALL, BODY_PREFERENCE, BR),  # tie: our order
]


@pytest.mark.parametrize(("header", "usable", "preference", "expected"), NEGOTIATION)
def test_negotiation(
    header: str | None, usable: set[CompressionType], preference: Any, expected: Any
) -> None:
    assert choose_encoding(header, usable, preference) == expected


def test_parse_accept_encoding() -> None:
    assert parse_accept_encoding("gzip;q=0.8, br, *;q=0") == {"gzip": 0.8, "br": 1.0, "*": 0.0}


# -- codecs: every write decodes at once ---------------------------------------------------------


@pytest.mark.parametrize("encoding", [GZ, DF, BR, ZS])
def test_each_write_decodes_as_soon_as_it_is_flushed(encoding: CompressionType) -> None:
    compressor = make_compressor(encoding, 6)
    decode = decoder(encoding.value)
    events = [b'data: {"type":"progress","session_id":"abc","progress":%d}\n\n' % n for n in range(200)]
    wire = 0
    for event in events:
        chunk = compressor.compress(event)
        wire += len(chunk)
        assert decode(chunk) == event  # nothing held back for later
    decode(compressor.finish())
    ratio = sum(map(len, events)) / wire
    assert ratio >= 4, f"{encoding.value}: {ratio:.1f}x"


def test_gzip_stream_is_a_valid_gzip_file_at_the_end() -> None:
    compressor = make_compressor(GZ, 6)
    body = b"".join(compressor.compress(b"line %d\n" % n) for n in range(50)) + compressor.finish()
    assert gzip.decompress(body) == b"".join(b"line %d\n" % n for n in range(50))


def test_brotli_and_zstd_are_installed_for_the_tests() -> None:
    assert available() == ALL


# -- configuration: RAT Engine's keywords and its builder ----------------------------------------


def test_config_keywords_and_builder_agree() -> None:
    by_keywords = CompressionConfig(
        min_size=2048, level=9, enable_deflate=False, enable_lz4=False, excluded_content_types=["text/csv"]
    )
    by_builder = (
        CompressionConfig()
        .min_size(2048)
        .level(9)
        .enable_gzip()
        .disable_deflate()
        .enable_brotli()
        .enable_zstd()
        .disable_lz4()
        .exclude_content_types(["text/csv"])
    )
    for config in (by_keywords, by_builder):
        assert (config.minimum_size, config.compression_level) == (2048, 9)
        assert config.encodings == {GZ, BR, ZS}
        assert config.excludes("text/csv; charset=utf-8", "/")
        assert config.excludes("image/png", "/")  # built in: compressed already
        assert config.excludes(None, "/static/photo.JPG")
        assert not config.excludes("application/json", "/api/data")
    assert CompressionConfig().exclude_extensions([".log"]).excludes(None, "/x/app.log")


@pytest.mark.parametrize("bad", [{"level": 0}, {"level": 10}, {"min_size": -1}, {"level": True}])
def test_config_refuses_values_out_of_range(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        CompressionConfig(**bad)


def test_enable_compression_takes_a_config_or_keywords_not_both() -> None:
    app = RatApp()
    config = app.enable_compression(CompressionConfig(min_size=10))
    assert config.minimum_size == 10
    assert app.enable_compression(level=1).compression_level == 1
    with pytest.raises(TypeError):
        app.enable_compression(CompressionConfig(), level=3)
    app.disable_compression()
    assert app.compression is None


def test_lz4_is_logged_as_not_offered(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", "rat_engine.compression"):
        RatApp().enable_compression(enable_lz4=True)
    message = caplog.records[-1].getMessage()
    assert message.startswith("compression on: zstd, br, gzip, deflate")
    assert "lz4 is not an HTTP content coding" in message


# -- the policy: what is never compressed --------------------------------------------------------

BIG = {"items": [{"id": n, "name": "item", "tags": ["a", "b"]} for n in range(500)]}


def policy_app() -> RatApp:
    app = RatApp()
    app.enable_compression(min_size=1024)

    @app.json("/big", methods=["GET", "POST"])
    def big() -> Any:
        return BIG

    @app.json("/small")
    def small() -> Any:
        return {"ok": True}

    @app.json("/private", compress=False)
    def private() -> Any:
        return BIG

    @app.custom("/png")
    def png() -> Any:
        return b"\x89PNG" + b"\0" * 5000, "image/png"

    @app.custom("/tagged")
    def tagged() -> Response:
        return Response("x" * 5000, headers={"etag": '"v1"', "vary": "Cookie"}, media_type="text/plain")

    @app.custom("/partial")
    def partial() -> Response:
        return Response("x" * 5000, 206, media_type="text/plain")

    @app.custom("/encoded")
    def encoded() -> Response:
        return Response(
            gzip.compress(b"x" * 5000), headers={"content-encoding": "gzip"}, media_type="text/plain"
        )

    return app


ACCEPT = {"accept-encoding": "gzip"}


def test_a_large_json_body_is_compressed_with_vary() -> None:
    with TestClient(policy_app()) as client:
        response = client.get("/big", headers=ACCEPT)
        plain = client.get("/big")
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert int(response.headers["content-length"]) == len(response.content) < len(plain.content) / 5
    assert gzip.decompress(response.content) == plain.content
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"  # it could have been: caches must know


@pytest.mark.parametrize(
    ("method", "path", "vary"),
    [
        ("HEAD", "/big", None),
        ("GET", "/small", None),  # under min_size
        ("GET", "/private", None),  # compress=False
        ("GET", "/png", None),  # compressed already
        ("GET", "/partial", None),  # a byte range of the identity body
        ("GET", "/encoded", None),  # already has a Content-Encoding
    ],
)
def test_never_compressed(method: str, path: str, vary: str | None) -> None:
    with TestClient(policy_app()) as client:
        response = client.request(method, path, headers=ACCEPT)
    assert response.headers.get("content-encoding") in (None, "gzip" if path == "/encoded" else None)
    if path == "/encoded":
        assert gzip.decompress(response.content) == b"x" * 5000  # not compressed twice
    assert response.headers.get("vary") == vary


def test_a_compressed_body_gets_a_weak_etag_and_keeps_its_vary() -> None:
    with TestClient(policy_app()) as client:
        response = client.get("/tagged", headers=ACCEPT)
    assert response.headers["etag"] == 'W/"v1"'
    assert response.headers["vary"] == "Cookie, Accept-Encoding"


# -- streams -------------------------------------------------------------------------------------


def test_a_stream_is_compressed_with_its_own_window() -> None:
    app = RatApp()
    app.enable_compression()

    @app.sse("/events")
    async def events(request_data: Any) -> AsyncIterator[Any]:
        for n in range(50):
            yield {"type": "progress", "session_id": "abc", "progress": n}
            await asyncio.sleep(0)

    @app.sse("/secret", compress=False)
    async def secret(request_data: Any) -> AsyncIterator[Any]:
        yield "token"

    with TestClient(app) as client:
        compressed = client.get("/events", headers={"accept-encoding": "gzip, deflate, br, zstd"})
        plain = client.get("/events")
        untouched = client.get("/secret", headers=ACCEPT)
    assert compressed.headers["content-encoding"] == "zstd"
    assert compressed.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert decoder("zstd")(compressed.content) == plain.content
    assert len(compressed.content) * 3 < len(plain.content)  # small events: each flush costs a few bytes
    assert "content-encoding" not in untouched.headers and untouched.text == "data: token\n\n"


# -- files: compressed as they are read, when sent whole ------------------------------------------


@pytest.fixture
def file_app(tmp_path: Any) -> RatApp:
    (tmp_path / "app.js").write_text("function f(n) { return n * 2; }\n" * 400)
    (tmp_path / "tiny.css").write_text("a{}")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG" + b"\0" * 5000)
    app = RatApp()
    app.enable_compression()
    app.static("/static", tmp_path)
    return app


def test_a_static_file_is_compressed_when_sent_whole(file_app: RatApp, tmp_path: Any) -> None:
    original = (tmp_path / "app.js").read_bytes()
    with TestClient(file_app) as client:
        whole = client.get("/static/app.js", headers=ACCEPT)
        ranged = client.get("/static/app.js", headers={**ACCEPT, "range": "bytes=0-9"})
        head = client.head("/static/app.js", headers=ACCEPT)
        again = client.get("/static/app.js", headers={**ACCEPT, "if-none-match": whole.headers["etag"]})
        tiny = client.get("/static/tiny.css", headers=ACCEPT)
        png = client.get("/static/photo.png", headers=ACCEPT)
    assert whole.headers["content-encoding"] == "gzip"
    assert gzip.decompress(whole.content) == original
    assert whole.headers["etag"].startswith('W/"') and whole.headers["vary"] == "Accept-Encoding"
    assert len(whole.content) * 10 < len(original)
    assert ranged.status_code == 206 and ranged.content == original[:10]
    assert "content-encoding" not in ranged.headers
    assert head.status_code == 200 and "content-encoding" not in head.headers and head.content == b""
    assert again.status_code == 304  # the weak ETag still validates
    assert "content-encoding" not in tiny.headers and tiny.text == "a{}"
    assert "content-encoding" not in png.headers
