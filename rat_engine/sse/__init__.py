"""Server-Sent Events: the pure encoder and the streaming response."""

from .event import PING, SSEEvent, comment, encode_auto, encode_json, encode_text, error_event

__all__ = ["PING", "SSEEvent", "comment", "encode_auto", "encode_json", "encode_text", "error_event"]
