"""Turn what a generator yields into WHATWG ``text/event-stream`` bytes. Pure: no I/O.

Three encoders, one per decorator:

* :func:`encode_auto` (``@app.sse``): ``str`` becomes ``data:`` lines (split on CRLF, CR and LF,
  so the browser's ``event.data`` equals the string, with every line break as ``\n``: the
  format cannot carry a CR inside data); a string that is already a
  complete SSE frame (the seed's manual form) is sent as it is; ``dict``/``list`` and other
  JSON-able values become one JSON ``data:`` event; ``bytes`` are UTF-8 text; an
  :class:`SSEEvent` sets every field.
* :func:`encode_json` (``@app.sse_json``): every item is one JSON event; a ``str`` is taken to
  be JSON text already (the seed's ``yield json.dumps(...)`` habit), so it is not quoted twice.
* :func:`encode_text` (``@app.sse_text``): every item is one text event, never parsed.

``None`` encodes to nothing: a generator can ``yield None`` as a cheap "am I still connected?"
point without sending anything.

Deliberate deviation from RAT Engine (do not "fix"): RAT wrapped a string beginning with
``event:`` as ``data: event: ...``; we recognise a preformatted frame by its lines, as the seed's
manual-formatting example expects.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic

if TYPE_CHECKING:
    from typing_extensions import TypeVar  # a default (PEP 696): a bare SSEEvent is SSEEvent[Any]

    D = TypeVar("D", default=Any)
else:
    from typing import TypeVar

    D = TypeVar("D")

from .. import _json

__all__ = [
    "PING",
    "PreEncoded",
    "SSEEvent",
    "Encoder",
    "comment",
    "describe_error",
    "encode_auto",
    "encode_json",
    "encode_text",
    "error_event",
    "is_preformatted",
]

Encoder = Callable[[Any], "bytes | None"]

#: The keep-alive: a comment line with no blank line after it. Why no blank line: parsers that
#: dispatch a block without data once an ``id:`` was seen (httpx-sse, and the openai SDK's copy
#: of it) turn ``: ping\n\n`` into an empty event with the last id, which openai then fails to
#: decode as JSON. A lone comment line is ignored by every parser; the next event's own blank
#: line ends its block as usual (the WHATWG grammar allows comments anywhere in a block).
PING = b": ping\n"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_FIELD_PREFIXES = ("data:", "event:", "id:", "retry:", ":")


class PreEncoded:
    """Base of items that carry their own finished frame (broadcast messages, encoded once
    and shared by every subscriber); the encoders send ``frame`` as it is."""

    __slots__ = ()

    @property
    def frame(self) -> bytes:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class SSEEvent(Generic[D]):
    """One event with every SSE field settable.

    Generic in its data for annotations (``AsyncIterator[SSEEvent[Token]]`` documents a
    stream's items in OpenAPI); the runtime class is the same for every ``D``.

    Args:
        data: ``str`` is sent as text (multi-line allowed); anything else is JSON-encoded.
            ``None`` sends no ``data:`` line (useful with ``retry``/``comment`` alone).
        event: Event type (``addEventListener(type, ...)`` in the browser).
        id: Event id; the browser echoes it as ``Last-Event-ID`` when it reconnects.
        retry: Reconnection delay in milliseconds (a non-negative ``int``).
        comment: A comment line (ignored by browsers; shows in ``curl -N``).

    Raises:
        ValueError: ``event``/``id`` contain a line break (or ``id`` a NUL), or ``retry`` is
            not a non-negative int; these would otherwise inject or lose fields on the wire.
    """

    data: D | None = None
    event: str | None = None
    id: str | int | None = None
    retry: int | None = None
    comment: str | None = None

    def __class_getitem__(cls, item: Any) -> Any:
        # types.GenericAlias, not typing's: calling ``SSEEvent[T](...)`` then works on a frozen
        # slotted class (typing's alias fails setting __orig_class__ there on Python 3.11).
        return types.GenericAlias(cls, item)

    def __post_init__(self) -> None:
        if self.event is not None:
            if not isinstance(self.event, str):
                raise ValueError(f"SSE event type must be a str, got {type(self.event).__name__}")
            if "\r" in self.event or "\n" in self.event:
                raise ValueError(f"SSE event type must not contain line breaks: {self.event!r}")
        if self.id is not None:
            text = str(self.id)
            if "\r" in text or "\n" in text or "\0" in text:
                raise ValueError(f"SSE id must not contain line breaks or NUL: {text!r}")
        if self.retry is not None and (
            isinstance(self.retry, bool) or not isinstance(self.retry, int) or self.retry < 0
        ):
            raise ValueError(f"SSE retry must be a non-negative int (milliseconds), got {self.retry!r}")

    def encode(self, data_encoder: Callable[[Any], str] | None = None) -> bytes:
        """The complete frame, ending with the blank line that dispatches it."""
        parts: list[str] = []
        if self.comment is not None:
            parts.append(_comment_lines(self.comment))
        if self.event is not None:
            parts.append(f"event: {self.event}\n")
        if self.id is not None:
            parts.append(f"id: {self.id}\n")
        if self.retry is not None:
            parts.append(f"retry: {self.retry}\n")
        data: Any = self.data
        if data is not None:
            text: str
            if isinstance(data, str):
                text = data
            elif isinstance(data, (bytes, bytearray, memoryview)):
                text = bytes(data).decode("utf-8")
            else:
                text = (data_encoder or _json.dumps_str)(data)
            parts.append(_data_lines(text))
        parts.append("\n")
        return "".join(parts).encode("utf-8")


def _data_lines(text: str) -> str:
    if "\n" not in text and "\r" not in text:
        return f"data: {text}\n"
    return "".join(f"data: {line}\n" for line in _LINE_BREAK.split(text))


def _comment_lines(text: str) -> str:
    return "".join(f": {line}\n" if line else ":\n" for line in _LINE_BREAK.split(text))


def comment(text: str = "") -> bytes:
    """A comment frame (``: text``): keeps a connection busy without dispatching an event."""
    return (_comment_lines(text) + "\n").encode("utf-8")


def is_preformatted(text: str) -> bool:
    """True when ``text`` is already SSE frames (the seed's manual form), not event data.

    Every non-empty line must be a field (``data:``, ``event:``, ``id:``, ``retry:``) or a
    comment (``:``), and the text must end with the blank line that dispatches an event. A text
    starting with ``data:`` is accepted without the blank line, as RAT Engine did.
    """
    if not text.startswith(_FIELD_PREFIXES):
        return False
    lines = _LINE_BREAK.split(text)
    if not all(line.startswith(_FIELD_PREFIXES) for line in lines if line):
        return False
    ends_with_blank_line = len(lines) >= 3 and lines[-1] == "" and lines[-2] == ""
    return ends_with_blank_line or text.startswith("data:")


def _terminate(text: str) -> str:
    # A preformatted frame must end with the blank line that dispatches it.
    lines = _LINE_BREAK.split(text)
    if len(lines) >= 3 and lines[-1] == "" and lines[-2] == "":
        return text
    if text.endswith("\r"):
        # Not "\n": CR followed by LF is ONE line break, so the frame would never dispatch.
        return text + "\r"
    if text.endswith("\n"):
        return text + "\n"
    return text + "\n\n"


def _text_frame(text: str) -> bytes:
    if "\n" not in text and "\r" not in text:
        return b"data: " + text.encode("utf-8") + b"\n\n"
    return (_data_lines(text) + "\n").encode("utf-8")


def _auto_str(text: str) -> bytes:
    if text.startswith(_FIELD_PREFIXES) and is_preformatted(text):
        return _terminate(text).encode("utf-8")
    return _text_frame(text)


def _json_frame(item: Any) -> bytes:
    return b"data: " + _json.dumps(item) + b"\n\n"


def _make_encoder(
    for_str: Callable[[str], bytes],
    for_other: Callable[[Any], bytes],
    event_data: Callable[[Any], str] | None,
) -> Encoder:
    """The three encoders differ only in how a ``str`` and a non-text value become a frame."""

    def encode(item: Any) -> bytes | None:
        if isinstance(item, str):
            return for_str(item)
        if isinstance(item, SSEEvent):
            return item.encode(event_data)
        if item is None:
            return None
        if isinstance(item, PreEncoded):
            return item.frame
        if isinstance(item, (bytes, bytearray, memoryview)):
            return for_str(bytes(item).decode("utf-8"))
        return for_other(item)

    return encode


#: ``@app.sse``: text (preformatted frames passed through), JSON for other values.
encode_auto = _make_encoder(_auto_str, _json_frame, None)
#: ``@app.sse_json``: one JSON event per item; a ``str`` is JSON text already.
encode_json = _make_encoder(_text_frame, _json_frame, None)
#: ``@app.sse_text``: one text event per item, the text taken literally.
encode_text = _make_encoder(_text_frame, lambda item: _text_frame(str(item)), str)


def describe_error(exc: BaseException, expose: bool) -> str:
    """The message a client sees for ``exc``: its text only when errors are exposed (debug)."""
    if expose:
        return f"{type(exc).__name__}: {exc}"
    return "Internal Server Error"


def error_event(message: str) -> bytes:
    """The ``error`` event sent when a generator raises or yields something unencodable.

    The data keeps the seed's ``{"type": "error", "message": ...}`` shape, so clients written
    for the seed's hand-made error messages understand it too.
    """
    return SSEEvent({"type": "error", "message": message}, event="error").encode()
