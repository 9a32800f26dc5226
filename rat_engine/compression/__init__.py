"""Response compression: ``app.enable_compression(...)`` (RAT Engine's API), negotiation, and a
per-stream compression stage between a running stream and the wire.

* :mod:`.config`: :class:`CompressionConfig`, :class:`CompressionType`.
* :mod:`.negotiate`: ``Accept-Encoding`` to a coding.
* :mod:`.codecs`: gzip/deflate (zlib), br (brotli), zstd (zstandard); streaming compressors
  with bounded memory.
* :mod:`.wire`: :class:`CompressingWire`, the stage a stream writes through.
* :mod:`.responses`: the policy for one response (what is never compressed, Vary, ETags).
"""

from .config import CompressionConfig, CompressionType

__all__ = ["CompressionConfig", "CompressionType"]
