"""The stream engine: what to stream (:class:`StreamingResponse`), one running :class:`Stream`,
the :class:`ChunkSource` kinds it pulls from, the :class:`StreamWire` seam it writes through,
the registry of live streams and the stop flag handlers see. Knows no wire format (SSE is
built on top, in :mod:`rat_engine.sse`) and no server (a server implements ``StreamWire``)."""

from ..settings import StreamSettings
from .chunk_source import ChunkSource
from .registry import ConnectionManager, StreamInfo
from .response import StreamContext, StreamingResponse
from .stream import Stream
from .wire import AsgiWire, StreamWire, wire_for

__all__ = [
    "AsgiWire",
    "ChunkSource",
    "ConnectionManager",
    "Stream",
    "StreamContext",
    "StreamInfo",
    "StreamSettings",
    "StreamWire",
    "StreamingResponse",
    "wire_for",
]
