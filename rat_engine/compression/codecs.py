"""The content codings themselves: one streaming compressor per response, flushed after every
write so each event decodes the moment its bytes arrive.

Memory is bounded per stream, since a compressor lives as long as its stream (measured as
resident memory over 300 streams after 20 events each, ratio on repetitive JSON events):

| coding | settings                                   | per stream | ratio |
|--------|--------------------------------------------|-----------:|------:|
| gzip   | window 2**13, memLevel 5                   |    34 KB   |  6.8x |
| zstd   | level 2, window 2**14, hash and chain 2**11|    65 KB   |  6.4x |
| br     | quality 5, window 2**16                    |   290 KB   |  6.8x |

(zlib's defaults cost 92 KB, zstd level 3's 819 KB.) brotli's encoder keeps ~290 KB of hash
tables at every quality that compresses at all, whatever the window: so streams prefer zstd
and gzip, and use br only when a client offers nothing else (:data:`STREAM_PREFERENCE`). brotli and zstd are optional (``pip install
'rat_engine[compression]'``): imported on first use; :func:`available` says what is installed.
"""

from __future__ import annotations

import functools
import importlib
import zlib
from typing import Any, Protocol

from .config import CompressionType

__all__ = [
    "BODY_PREFERENCE",
    "STREAM_PREFERENCE",
    "StreamCompressor",
    "available",
    "compress_whole",
    "make_compressor",
]

#: Streams: 8 KB of history (events repeat within a few KB); zlib allocates 4x the window.
ZLIB_WINDOW_BITS = 13
#: zlib's hash state: 2**(memLevel+9) bytes = 16 KB (the default, 8, takes 128 KB).
ZLIB_MEM_LEVEL = 5
#: brotli's sliding window, 2**16 = 64 KB (its default, 4 MB).
BROTLI_LGWIN = 16
#: zstd's window and match tables for streams: 16 KB window, 2**11-entry hash and chain tables.
ZSTD_WINDOW_LOG = 14
ZSTD_TABLE_LOG = 11

#: Preference for whole bodies (smallest first) and for streams (least memory per open stream).
BODY_PREFERENCE = (
    CompressionType.ZSTD,
    CompressionType.BROTLI,
    CompressionType.GZIP,
    CompressionType.DEFLATE,
)
STREAM_PREFERENCE = (
    CompressionType.ZSTD,
    CompressionType.GZIP,
    CompressionType.DEFLATE,
    CompressionType.BROTLI,
)

# level 1-9 onto each codec's scale
_BROTLI_QUALITY = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 5, 7: 6, 8: 8, 9: 9}
_ZSTD_LEVEL = {1: 1, 2: 1, 3: 2, 4: 2, 5: 2, 6: 2, 7: 3, 8: 5, 9: 7}


class StreamCompressor(Protocol):
    """Compresses a stream of writes; every call returns bytes that decode completely."""

    def compress(self, data: bytes) -> bytes:
        """``data`` compressed and flushed (decodable up to its last byte)."""

    def finish(self) -> bytes:
        """The end of the compressed stream (checksums, end markers)."""


@functools.cache
def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def available() -> frozenset[CompressionType]:
    """The encodings that are installed (gzip and deflate always; br and zstd optionally)."""
    found = {CompressionType.GZIP, CompressionType.DEFLATE}
    if _module("zstandard") is not None:
        found.add(CompressionType.ZSTD)
    if _module("brotli") is not None:
        found.add(CompressionType.BROTLI)
    return frozenset(found)


class _Zlib:
    __slots__ = ("_z",)

    def __init__(self, level: int, gzip: bool) -> None:
        # +16: the gzip wrapper; plain window bits: the zlib wrapper, which is what HTTP's
        # "deflate" means (RFC 9110 8.4.1.2), not raw deflate.
        wbits = ZLIB_WINDOW_BITS + 16 if gzip else ZLIB_WINDOW_BITS
        self._z = zlib.compressobj(level, zlib.DEFLATED, wbits, ZLIB_MEM_LEVEL)

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data) + self._z.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._z.flush(zlib.Z_FINISH)


class _Brotli:
    __slots__ = ("_c",)

    def __init__(self, level: int) -> None:
        brotli = _module("brotli")
        self._c = brotli.Compressor(quality=_BROTLI_QUALITY[level], lgwin=BROTLI_LGWIN)

    def compress(self, data: bytes) -> bytes:
        return bytes(self._c.process(data)) + bytes(self._c.flush())

    def finish(self) -> bytes:
        return bytes(self._c.finish())


class _Zstd:
    __slots__ = ("_c", "_flush")

    def __init__(self, level: int) -> None:
        zstd = _module("zstandard")
        params = zstd.ZstdCompressionParameters.from_level(
            _ZSTD_LEVEL[level], window_log=ZSTD_WINDOW_LOG, hash_log=ZSTD_TABLE_LOG, chain_log=ZSTD_TABLE_LOG
        )
        self._c = zstd.ZstdCompressor(compression_params=params).compressobj()
        self._flush = zstd.COMPRESSOBJ_FLUSH_BLOCK

    def compress(self, data: bytes) -> bytes:
        return bytes(self._c.compress(data)) + bytes(self._c.flush(self._flush))

    def finish(self) -> bytes:
        return bytes(self._c.flush())


def make_compressor(encoding: CompressionType, level: int) -> StreamCompressor:
    """A fresh compressor for one response.

    Raises:
        ValueError: ``encoding`` is not one :func:`available` offers.
    """
    if encoding is CompressionType.GZIP:
        return _Zlib(level, gzip=True)
    if encoding is CompressionType.DEFLATE:
        return _Zlib(level, gzip=False)
    if encoding is CompressionType.BROTLI and _module("brotli") is not None:
        return _Brotli(level)
    if encoding is CompressionType.ZSTD and _module("zstandard") is not None:
        return _Zstd(level)
    raise ValueError(f"{encoding.value} compression is not available")


def compress_whole(encoding: CompressionType, data: bytes, level: int) -> bytes:
    """A complete body, compressed in one go (full-size windows: nothing is kept afterwards)."""
    if encoding is CompressionType.GZIP:
        return zlib.compress(data, level, wbits=15 + 16)
    if encoding is CompressionType.DEFLATE:
        return zlib.compress(data, level, wbits=15)
    if encoding is CompressionType.BROTLI and _module("brotli") is not None:
        return bytes(_module("brotli").compress(data, quality=_BROTLI_QUALITY[level]))
    if encoding is CompressionType.ZSTD and _module("zstandard") is not None:
        return bytes(_module("zstandard").ZstdCompressor(level=_ZSTD_LEVEL[level] + 1).compress(data))
    raise ValueError(f"{encoding.value} compression is not available")
