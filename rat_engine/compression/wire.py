"""``CompressingWire``: the compression stage between a running stream and its wire.

It is a :class:`~rat_engine.streaming.wire.StreamWire` wrapping another one, so the stream
does not know it is compressed. One compressor per stream keeps its window for the whole
stream (events repeat their keys, so later ones shrink most), and every write is flushed, so
each event decodes as soon as its bytes arrive (keep-alives included). A chunk handed past
the stream's loop (``write_nowait``: a broadcast frame, a keep-alive) is compressed only when
the wire will take it at once: compressing is not undoable, so a refused chunk must not have
entered the compressor. Broadcast frames are therefore compressed per subscriber (each stream
has its own window); sharing one compressed frame would need one shared window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..streaming.wire import StreamWire
from .codecs import StreamCompressor
from .config import CompressionType

__all__ = ["CompressingWire"]


class CompressingWire:
    __slots__ = ("_wire", "_compressor", "_encoding", "native")

    def __init__(self, wire: StreamWire, encoding: CompressionType, compressor: StreamCompressor) -> None:
        self._wire = wire
        self._compressor = compressor
        self._encoding = encoding
        self.native = wire.native

    @property
    def writable(self) -> bool:
        return self._wire.writable

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        kept = [(name, value) for name, value in headers if name.lower() not in (b"content-length", b"etag")]
        kept.append((b"content-encoding", self._encoding.value.encode()))
        if not any(name.lower() == b"vary" for name, _ in kept):
            kept.append((b"vary", b"Accept-Encoding"))
        await self._wire.start(status, kept)

    async def write(self, body: bytes) -> None:
        await self._wire.write(self._compressor.compress(body))

    def write_nowait(self, body: bytes) -> bool:
        if not self._wire.writable:
            return False
        return self._wire.write_nowait(self._compressor.compress(body))

    async def end(self, body: bytes = b"") -> None:
        tail = self._compressor.compress(body) if body else b""
        await self._wire.end(tail + self._compressor.finish())

    def on_disconnect(self, callback: Callable[[], Any]) -> None:
        self._wire.on_disconnect(callback)

    def abort(self) -> bool:
        return self._wire.abort()

    def release(self) -> None:
        self._wire.release()
