"""An incremental ``text/event-stream`` parser (the WHATWG HTML algorithm), for clients and tests.

parser = SSEParser()
for chunk in response_text_chunks:
    for event in parser.feed(chunk):
        print(event.event, event.id, event.data)
"""

from __future__ import annotations

import json as _json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["LineSplitter", "SSEParser", "ServerSentEvent", "parse_sse"]

_EOL = re.compile(r"\r\n|\r|\n")


class LineSplitter:
    """Incrementally splits text on CRLF, CR or LF; a LF right after a chunk-final CR is skipped."""

    def __init__(self) -> None:
        self._buffer, self._after_cr = "", False

    def feed(self, text: str) -> list[str]:
        if self._after_cr and text:
            text, self._after_cr = text.removeprefix("\n"), False
        buffer, start, lines = self._buffer + text, 0, []
        for match in _EOL.finditer(buffer):
            lines.append(buffer[start : match.start()])
            start = match.end()
            self._after_cr = match.group() == "\r" and start == len(buffer)
        self._buffer = buffer[start:]
        return lines

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer, ""
        return [rest] if rest else []


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched SSE event. `id` is the stream's last event ID at dispatch time, as a browser's
    MessageEvent.lastEventId (it persists across events), or None while no id field was ever seen;
    `retry` is the valid retry value given inside this event's block, if any."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        return _json.loads(self.data)


class SSEParser:
    """Incremental text/event-stream parser following the WHATWG HTML algorithm.

    Feed decoded text in arbitrary pieces; complete events are returned as they are dispatched.
    An event not terminated by a blank line before the stream ends is never dispatched.
    """

    def __init__(self) -> None:
        self.last_event_id = ""  # the spec's "last event ID string"
        self.retry: int | None = None  # latest valid reconnection time in ms
        self.comments: list[str] = []  # comment lines without the leading ":"
        self._lines = LineSplitter()
        self._bom_checked = self._id_seen = False
        self._data = self._event = ""
        self._event_retry: int | None = None

    def feed(self, text: str) -> list[ServerSentEvent]:
        if not self._bom_checked and text:
            self._bom_checked = True
            text = text.removeprefix("\ufeff")
        events = []
        for line in self._lines.feed(text):
            if (event := self._process(line)) is not None:
                events.append(event)
        return events

    def _process(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments.append(line[1:])
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data += value + "\n"
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_event_id, self._id_seen = value, True
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = self._event_retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event, retry = self._data, self._event, self._event_retry
        self._data = self._event = ""
        self._event_retry = None
        if not data:
            return None
        last_id = self.last_event_id if self._id_seen else None
        return ServerSentEvent(event or "message", data.removesuffix("\n"), last_id, retry)


def parse_sse(text: str) -> list[ServerSentEvent]:
    """Parse a complete event-stream text with a fresh SSEParser."""
    return SSEParser().feed(text)
