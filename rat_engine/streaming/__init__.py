"""The stream engine: what to stream (``StreamingResponse``), a running ``Stream``, its sources,
the registry of live streams and the stop flag handlers see."""

from .response import StreamContext, StreamingResponse, StreamSettings, source_kind

__all__ = ["StreamContext", "StreamSettings", "StreamingResponse", "source_kind"]
