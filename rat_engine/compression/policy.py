"""What gets compressed, decided per response (``app.enable_compression`` installs one
:class:`ResponseCompression`; the dispatcher asks it once per response).

Never compressed: HEAD bodies, 1xx/204/304 (no body), 206 (a byte range of the identity
body), bodies under ``min_size``, already-encoded responses, excluded content types and file
extensions (images, archives, video: compressed already). A file is compressed as it is read
from disk, 64 KB at a time, when it is sent whole (200); a range of it never is. Every response that could have been compressed carries ``Vary: Accept-Encoding``, so
a cache never serves a compressed body to a client that did not ask for it; a compressed body's
ETag is made weak (it is no longer byte-for-byte the identity body).
"""

from __future__ import annotations

import logging

from .._types import Message, Send
from ..datastructures import Headers
from ..files import FileResponse
from ..responses import Response
from ..streaming.response import StreamingResponse
from ..streaming.wire import StreamWire
from .codecs import BODY_PREFERENCE, STREAM_PREFERENCE, available, compress_whole, make_compressor
from .config import CompressionConfig, CompressionType
from .negotiate import choose_encoding
from .wire import CompressingWire

__all__ = ["ResponseCompression"]

logger = logging.getLogger("rat_engine.compression")

_NO_BODY = frozenset({204, 304})


class ResponseCompression:
    """The compression policy of one app (its config and the encodings installed)."""

    __slots__ = ("config", "usable")

    def __init__(self, config: CompressionConfig) -> None:
        self.config = config
        installed = available()
        self.usable = frozenset(config.encodings & installed) - {CompressionType.LZ4}
        missing = sorted(kind.value for kind in config.encodings - installed - {CompressionType.LZ4})
        logger.info(
            "compression on: %s (min_size %d, level %d)%s%s",
            ", ".join(kind.value for kind in BODY_PREFERENCE if kind in self.usable) or "nothing",
            config.minimum_size,
            config.compression_level,
            f"; not installed: {', '.join(missing)} (pip install 'rat_engine[compression]')"
            if missing
            else "",
            "; lz4 is not an HTTP content coding browsers accept: not offered"
            if CompressionType.LZ4 in config.encodings
            else "",
        )

    def _eligible(self, response: Response, method: str, path: str) -> bool:
        status = response.status_code
        if method == "HEAD" or status < 200 or status in _NO_BODY or status == 206:
            return False
        if dict.__contains__(response.headers, "content-encoding"):
            return False
        return not self.config.excludes(response.content_type, path)

    def compress_body(self, response: Response, request_headers: Headers, method: str, path: str) -> None:
        """Compress a complete response in place, when its request and its kind allow."""
        if isinstance(response, StreamingResponse) or not self._eligible(response, method, path):
            return
        if len(response.body) < self.config.minimum_size:
            return
        _add_vary(response)
        encoding = choose_encoding(request_headers.get("accept-encoding"), self.usable, BODY_PREFERENCE)
        if encoding is None:
            return
        response.body = compress_whole(encoding, response.body, self.config.compression_level)
        response.headers["content-encoding"] = encoding.value
        etag = dict.get(response.headers, "etag")
        if etag is not None and not str(etag).startswith("W/"):
            response.headers["etag"] = f"W/{etag}"

    def file_send(
        self, send: Send, response: FileResponse, request_headers: Headers, method: str, path: str
    ) -> Send:
        """``send``, or one that compresses the file as it goes out when the answer is the
        whole file (a 304, a 206 or a 416 pass through untouched)."""
        if not self._eligible(response, method, path) or response.stat.st_size < self.config.minimum_size:
            return send
        _add_vary(response)
        encoding = choose_encoding(request_headers.get("accept-encoding"), self.usable, BODY_PREFERENCE)
        if encoding is None:
            return send
        compressor = make_compressor(encoding, self.config.compression_level)
        compressing = False

        async def compressing_send(message: Message) -> None:
            nonlocal compressing
            if message["type"] == "http.response.start":
                compressing = message["status"] == 200
                if compressing:
                    headers = [(n, v) for n, v in message["headers"] if n not in (b"content-length", b"etag")]
                    headers.append((b"content-encoding", encoding.value.encode()))
                    etag = dict.get(response.headers, "etag") or response.etag
                    headers.append((b"etag", f"W/{etag}".encode("latin-1")))
                    message = {**message, "headers": headers}
            elif compressing:
                body = compressor.compress(message.get("body", b""))
                if not message.get("more_body", False):
                    body += compressor.finish()
                message = {**message, "body": body}
            await send(message)

        return compressing_send

    def stream_wire(
        self, wire: StreamWire, response: StreamingResponse, request_headers: Headers, path: str
    ) -> StreamWire:
        """``wire``, or a compressing stage over it when the client accepts a coding."""
        if not self._eligible(response, "GET", path):
            return wire
        _add_vary(response)
        encoding = choose_encoding(request_headers.get("accept-encoding"), self.usable, STREAM_PREFERENCE)
        if encoding is None:
            return wire
        return CompressingWire(wire, encoding, make_compressor(encoding, self.config.compression_level))


def _add_vary(response: Response) -> None:
    vary = dict.get(response.headers, "vary")
    if vary is None:
        response.headers["vary"] = "Accept-Encoding"
    elif "accept-encoding" not in str(vary).lower() and str(vary).strip() != "*":
        response.headers["vary"] = f"{vary}, Accept-Encoding"
