"""Input -> exact bytes tables for the SSE encoder, plus round-trip properties checked with an
independent WHATWG ``text/event-stream`` parser written here (not the package's own)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rat_engine.sse.event import (
    PING,
    SSEEvent,
    comment,
    encode_auto,
    encode_json,
    encode_text,
    error_event,
    is_preformatted,
)

# ---------------------------------------------------------------------------------------------
# A small WHATWG-conformant event-stream parser (HTML Living Standard, 9.2.6)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    type: str
    data: str
    id: str


_EOL = re.compile(r"\r\n|\r|\n")


def parse_stream(raw: bytes) -> list[Event]:
    """Parse a complete stream; an event not followed by its blank line is not dispatched."""
    text = raw.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    parts = _EOL.split(text)
    lines = parts[:-1]  # the last part has no line terminator: pending data, discarded at EOF
    events: list[Event] = []
    data = ""
    event_type = ""
    last_id = ""
    for line in lines:
        if line == "":
            if data == "":
                event_type = ""
                continue
            if data.endswith("\n"):
                data = data[:-1]
            events.append(Event(event_type or "message", data, last_id))
            data = ""
            event_type = ""
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
        else:
            name, value = line, ""
        if name == "data":
            data += value + "\n"
        elif name == "event":
            event_type = value
        elif name == "id":
            if "\0" not in value:
                last_id = value
        # "retry" and unknown fields do not affect the events themselves
    return events


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"data: a\n\n", [Event("message", "a", "")]),
        (b"data:a\r\rdata:  b\r\n\r\n", [Event("message", "a", ""), Event("message", " b", "")]),
        (b"data\n\n", [Event("message", "", "")]),
        (b"data: a\n", []),
        (b"data: a\r\n", []),
        (b"event: x\n\n", []),
        (b": c\nid: 7\nevent: e\ndata: 1\ndata: 2\n\n", [Event("e", "1\n2", "7")]),
        (
            b"id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\n",
            [Event("message", "a", "1"), Event("message", "b", "1")],
        ),
        (b"\xef\xbb\xbfdata: bom\n\n", [Event("message", "bom", "")]),
        (b"data: a\n\n\n\n", [Event("message", "a", "")]),
    ],
)
def test_reference_parser(raw: bytes, expected: list[Event]) -> None:
    """Self-check of the test's own parser against hand-worked examples from the spec."""
    assert parse_stream(raw) == expected


# ---------------------------------------------------------------------------------------------
# encode_auto
# ---------------------------------------------------------------------------------------------

SEED_JSON = f"data: {json.dumps({'type': 'custom'})}\n\n"
SEED_NOTIFICATION = 'event: notification\ndata: {"message": "hi"}\n\n'

AUTO_TABLE = [
    pytest.param("hello", b"data: hello\n\n", id="plain"),
    pytest.param("", b"data: \n\n", id="empty"),
    pytest.param("a\nb", b"data: a\ndata: b\n\n", id="lf"),
    pytest.param("a\r\nb", b"data: a\ndata: b\n\n", id="crlf"),
    pytest.param("a\rb", b"data: a\ndata: b\n\n", id="cr"),
    pytest.param("a\r\nb\nc\rd", b"data: a\ndata: b\ndata: c\ndata: d\n\n", id="mixed"),
    pytest.param("a\n\rb", b"data: a\ndata: \ndata: b\n\n", id="lf-then-cr-is-two-breaks"),
    pytest.param("a\n", b"data: a\ndata: \n\n", id="trailing-lf"),
    pytest.param("\n", b"data: \ndata: \n\n", id="only-lf"),
    pytest.param("\na", b"data: \ndata: a\n\n", id="leading-lf"),
    pytest.param("  two spaces", b"data:   two spaces\n\n", id="leading-spaces-kept"),
    pytest.param(" a\n b", b"data:  a\ndata:  b\n\n", id="leading-space-each-line"),
    pytest.param("中文 ✓", "data: 中文 ✓\n\n".encode(), id="chinese"),
    pytest.param("tab\tand\x00nul", b"data: tab\tand\x00nul\n\n", id="control-chars"),
    pytest.param("a\u2028b\x85c", "data: a\u2028b\x85c\n\n".encode(), id="unicode-separators-not-breaks"),
    pytest.param("id: 5 is ready", b"data: id: 5 is ready\n\n", id="looks-like-id-field"),
    pytest.param("event: x", b"data: event: x\n\n", id="event-without-terminator"),
    pytest.param("retry: 10", b"data: retry: 10\n\n", id="retry-without-terminator"),
    pytest.param(":", b"data: :\n\n", id="lone-colon"),
    pytest.param(": note", b"data: : note\n\n", id="comment-without-terminator"),
    pytest.param("data", b"data: data\n\n", id="word-data"),
    pytest.param("database: up", b"data: database: up\n\n", id="data-prefix-word"),
    pytest.param(
        "data: a\nnot a field\n\n",
        b"data: data: a\ndata: not a field\ndata: \ndata: \n\n",
        id="mixed-field-and-text",
    ),
    pytest.param("Data: x\n\n", b"data: Data: x\ndata: \ndata: \n\n", id="field-names-case-sensitive"),
    pytest.param(" data: x\n\n", b"data:  data: x\ndata: \ndata: \n\n", id="leading-space-before-field"),
    # preformatted frames (the seed's manual form) pass through
    pytest.param(SEED_JSON, b'data: {"type": "custom"}\n\n', id="seed-json-frame"),
    pytest.param(SEED_NOTIFICATION, SEED_NOTIFICATION.encode(), id="seed-notification-frame"),
    pytest.param(": comment\n\n", b": comment\n\n", id="comment-frame"),
    pytest.param("data: x", b"data: x\n\n", id="data-without-terminator"),
    pytest.param("data: x\n", b"data: x\n\n", id="data-with-one-lf"),
    pytest.param("data: x\r\n", b"data: x\r\n\n", id="data-with-one-crlf"),
    pytest.param("data: x\r\n\r\n", b"data: x\r\n\r\n", id="crlf-frame"),
    pytest.param("data: x\r\r", b"data: x\r\r", id="cr-frame"),
    pytest.param("data: 中\n\n", "data: 中\n\n".encode(), id="chinese-frame"),
    pytest.param("id: 5\ndata: x\n\n", b"id: 5\ndata: x\n\n", id="id-frame"),
    pytest.param("retry: 1000\n\n", b"retry: 1000\n\n", id="retry-frame"),
    pytest.param(
        "event: a\ndata: 1\n\nevent: b\ndata: 2\n\n",
        b"event: a\ndata: 1\n\nevent: b\ndata: 2\n\n",
        id="two-frames",
    ),
    pytest.param("data: a\n\ndata: b", b"data: a\n\ndata: b\n\n", id="two-frames-last-unterminated"),
    # non-str values
    pytest.param({"type": "custom"}, b'data: {"type":"custom"}\n\n', id="dict"),
    pytest.param({"msg": "中文"}, 'data: {"msg":"中文"}\n\n'.encode(), id="dict-non-ascii-kept"),
    pytest.param([1, "é", None], 'data: [1,"é",null]\n\n'.encode(), id="list"),
    pytest.param({"s": "a\nb"}, b'data: {"s":"a\\nb"}\n\n', id="json-escapes-newline"),
    pytest.param(5, b"data: 5\n\n", id="int"),
    pytest.param(1.5, b"data: 1.5\n\n", id="float"),
    pytest.param(True, b"data: true\n\n", id="bool"),
    pytest.param(b"bytes", b"data: bytes\n\n", id="bytes"),
    pytest.param("中".encode(), "data: 中\n\n".encode(), id="bytes-utf8"),
    pytest.param(bytearray(b"a\nb"), b"data: a\ndata: b\n\n", id="bytearray-multiline"),
    pytest.param(b"data: pre\n\n", b"data: pre\n\n", id="bytes-preformatted"),
    pytest.param(None, None, id="none"),
    pytest.param(SSEEvent("x", event="e"), b"event: e\ndata: x\n\n", id="sse-event"),
]


@pytest.mark.parametrize(("item", "expected"), AUTO_TABLE)
def test_encode_auto(item: Any, expected: bytes | None) -> None:
    assert encode_auto(item) == expected


@pytest.mark.parametrize("text", ["data: x\r", "data: a\nid: 1\r", "data: a\r\rdata: b\r", "data: a\n\r"])
def test_encode_auto_preformatted_ending_in_cr_is_dispatched(text: str) -> None:
    # Regression: a frame ending in a lone CR got only "\n" appended, and CR LF is ONE line
    # break, so the frame was never dispatched and merged with the next event.
    assert is_preformatted(text)
    stream = encode_auto(text) + encode_auto("next")  # type: ignore[operator]
    events = parse_stream(stream)
    assert events[-1] == Event("message", "next", events[-1].id)
    assert events[:-1] == parse_stream(text.encode() + b"\n\n")


# ---------------------------------------------------------------------------------------------
# encode_json / encode_text
# ---------------------------------------------------------------------------------------------

JSON_TABLE = [
    pytest.param(json.dumps({"a": 1}), b'data: {"a": 1}\n\n', id="str-is-json-text-not-requoted"),
    pytest.param("plain", b"data: plain\n\n", id="str-plain"),
    pytest.param("", b"data: \n\n", id="empty-str"),
    pytest.param('{\n "a": 1\n}', b'data: {\ndata:  "a": 1\ndata: }\n\n', id="pretty-json-multiline"),
    pytest.param("data: x\n\n", b"data: data: x\ndata: \ndata: \n\n", id="frame-like-str-not-passed-through"),
    pytest.param({"a": "中"}, 'data: {"a":"中"}\n\n'.encode(), id="dict-non-ascii"),
    pytest.param([], b"data: []\n\n", id="empty-list"),
    pytest.param(0, b"data: 0\n\n", id="zero"),
    pytest.param(False, b"data: false\n\n", id="false"),
    pytest.param(b'{"a":1}', b'data: {"a":1}\n\n', id="bytes"),
    pytest.param(b"a\r\nb", b"data: a\ndata: b\n\n", id="bytes-multiline"),
    pytest.param(None, None, id="none"),
    pytest.param(SSEEvent({"k": [1]}, id=3), b'id: 3\ndata: {"k":[1]}\n\n', id="sse-event"),
]


@pytest.mark.parametrize(("item", "expected"), JSON_TABLE)
def test_encode_json(item: Any, expected: bytes | None) -> None:
    assert encode_json(item) == expected


TEXT_TABLE = [
    pytest.param("hello", b"data: hello\n\n", id="plain"),
    pytest.param("", b"data: \n\n", id="empty"),
    pytest.param("a\n", b"data: a\ndata: \n\n", id="trailing-lf"),
    pytest.param("a\r\nb\rc", b"data: a\ndata: b\ndata: c\n\n", id="crlf-cr"),
    pytest.param(
        SEED_JSON, b'data: data: {"type": "custom"}\ndata: \ndata: \n\n', id="frame-taken-literally"
    ),
    pytest.param(": comment\n\n", b"data: : comment\ndata: \ndata: \n\n", id="comment-taken-literally"),
    pytest.param("data: x", b"data: data: x\n\n", id="data-prefix-taken-literally"),
    pytest.param("中文", "data: 中文\n\n".encode(), id="chinese"),
    pytest.param(42, b"data: 42\n\n", id="int-str"),
    pytest.param({"a": 1}, b"data: {'a': 1}\n\n", id="dict-str"),
    pytest.param(b"raw\nbytes", b"data: raw\ndata: bytes\n\n", id="bytes"),
    pytest.param(None, None, id="none"),
    pytest.param(SSEEvent({"a": 1}), b"data: {'a': 1}\n\n", id="sse-event-data-via-str"),
    pytest.param(SSEEvent("x\ny", event="t"), b"event: t\ndata: x\ndata: y\n\n", id="sse-event-text"),
]


@pytest.mark.parametrize(("item", "expected"), TEXT_TABLE)
def test_encode_text(item: Any, expected: bytes | None) -> None:
    assert encode_text(item) == expected


# ---------------------------------------------------------------------------------------------
# SSEEvent, comment, error_event, is_preformatted
# ---------------------------------------------------------------------------------------------

EVENT_TABLE = [
    pytest.param(SSEEvent(), b"\n", id="empty"),
    pytest.param(SSEEvent(data="x"), b"data: x\n\n", id="data"),
    pytest.param(SSEEvent(data=""), b"data: \n\n", id="empty-data"),
    pytest.param(SSEEvent(data="a\r\nb\n"), b"data: a\ndata: b\ndata: \n\n", id="multiline-data"),
    pytest.param(SSEEvent(data={"a": "中"}), 'data: {"a":"中"}\n\n'.encode(), id="json-data"),
    pytest.param(SSEEvent(data=[1, 2]), b"data: [1,2]\n\n", id="list-data"),
    pytest.param(SSEEvent(data=0), b"data: 0\n\n", id="zero-data"),
    pytest.param(SSEEvent(data=b"by\ntes"), b"data: by\ndata: tes\n\n", id="bytes-data"),
    pytest.param(SSEEvent(data="x", event="update"), b"event: update\ndata: x\n\n", id="event"),
    pytest.param(SSEEvent(data="x", event=""), b"event: \ndata: x\n\n", id="empty-event"),
    pytest.param(SSEEvent(data="x", id=7), b"id: 7\ndata: x\n\n", id="int-id"),
    pytest.param(SSEEvent(data="x", id="abc"), b"id: abc\ndata: x\n\n", id="str-id"),
    pytest.param(SSEEvent(data="x", id=""), b"id: \ndata: x\n\n", id="empty-id"),
    pytest.param(SSEEvent(retry=0), b"retry: 0\n\n", id="retry-zero-only"),
    pytest.param(SSEEvent(retry=3000), b"retry: 3000\n\n", id="retry-only"),
    pytest.param(SSEEvent(comment="hi"), b": hi\n\n", id="comment-only"),
    pytest.param(SSEEvent(comment=""), b":\n\n", id="empty-comment"),
    pytest.param(SSEEvent(comment="a\nb\r\n\rc"), b": a\n: b\n:\n: c\n\n", id="multiline-comment"),
    pytest.param(
        SSEEvent(data="d1\nd2", event="ev", id="42", retry=1500, comment="note"),
        b": note\nevent: ev\nid: 42\nretry: 1500\ndata: d1\ndata: d2\n\n",
        id="every-field",
    ),
    pytest.param(
        SSEEvent(data="中", event="事件", id="标识"),
        "event: 事件\nid: 标识\ndata: 中\n\n".encode(),
        id="non-ascii-fields",
    ),
    pytest.param(SSEEvent(data="x", event=" sp"), b"event:  sp\ndata: x\n\n", id="event-leading-space"),
    pytest.param(
        SSEEvent(data="x", event="a\x00b"), b"event: a\x00b\ndata: x\n\n", id="event-with-nul-allowed"
    ),
]


@pytest.mark.parametrize(("event", "expected"), EVENT_TABLE)
def test_sse_event_encode(event: SSEEvent, expected: bytes) -> None:
    assert event.encode() == expected
    assert encode_auto(event) == expected


def test_sse_event_custom_data_encoder() -> None:
    assert SSEEvent({"a": 1}).encode(data_encoder=lambda v: "custom") == b"data: custom\n\n"
    # a str is never passed to the encoder
    assert SSEEvent("s").encode(data_encoder=lambda v: "custom") == b"data: s\n\n"


INVALID_EVENTS = [
    pytest.param({"event": "a\nb"}, id="event-lf"),
    pytest.param({"event": "a\rb"}, id="event-cr"),
    pytest.param({"event": "a\r\n"}, id="event-crlf"),
    pytest.param({"event": "\n"}, id="event-only-lf"),
    pytest.param({"event": 5}, id="event-not-str"),
    pytest.param({"event": b"x"}, id="event-bytes"),
    pytest.param({"id": "1\n2"}, id="id-lf"),
    pytest.param({"id": "1\r"}, id="id-cr"),
    pytest.param({"id": "a\x00b"}, id="id-nul"),
    pytest.param({"id": "\x00"}, id="id-only-nul"),
    pytest.param({"retry": -1}, id="retry-negative"),
    pytest.param({"retry": 1.5}, id="retry-float"),
    pytest.param({"retry": 1.0}, id="retry-integral-float"),
    pytest.param({"retry": True}, id="retry-true"),
    pytest.param({"retry": False}, id="retry-false"),
    pytest.param({"retry": "100"}, id="retry-str"),
]


@pytest.mark.parametrize("kwargs", INVALID_EVENTS)
def test_sse_event_rejects(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SSEEvent(data="x", **kwargs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", b":\n\n"),
        ("keep-alive", b": keep-alive\n\n"),
        ("a\nb", b": a\n: b\n\n"),
        ("a\r\nb\rc", b": a\n: b\n: c\n\n"),
        ("a\n", b": a\n:\n\n"),
        ("中", ": 中\n\n".encode()),
    ],
)
def test_comment(text: str, expected: bytes) -> None:
    assert comment(text) == expected
    assert parse_stream(expected) == []


def test_comment_default_and_ping() -> None:
    assert comment() == b":\n\n"
    assert PING == b": ping\n"  # no blank line: no parser can see an empty event block
    assert parse_stream(PING) == []
    assert parse_stream(b"id: 1\ndata: a\n\n" + PING + PING + b"data: b\n\n") == parse_stream(
        b"id: 1\ndata: a\n\ndata: b\n\n"
    )


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("boom", b'event: error\ndata: {"type":"error","message":"boom"}\n\n'),
        ("", b'event: error\ndata: {"type":"error","message":""}\n\n'),
        ("line1\nline2", b'event: error\ndata: {"type":"error","message":"line1\\nline2"}\n\n'),
        ('失败 "q"', 'event: error\ndata: {"type":"error","message":"失败 \\"q\\""}\n\n'.encode()),
    ],
)
def test_error_event(message: str, expected: bytes) -> None:
    frame = error_event(message)
    assert frame == expected
    (event,) = parse_stream(frame)
    assert event.type == "error"
    assert json.loads(event.data) == {"type": "error", "message": message}


PREFORMATTED_TABLE = [
    (SEED_JSON, True),
    (SEED_NOTIFICATION, True),
    (": comment\n\n", True),
    ("data: x", True),
    ("data:x", True),
    ("data: x\n", True),
    ("data: x\r\n\r\n", True),
    ("data: x\r\r", True),
    ("retry: 5\n\n", True),
    ("id: 1\n\n", True),
    ("event: e\r\ndata: x\r\n\r\n", True),
    ("data: a\n\ndata: b\n\n", True),
    ("data: a\n: c\nid: 2\n\n", True),
    ("data: a\n\n\n", True),
    ("", False),
    ("hello", False),
    ("id: 5 is ready", False),
    ("event: notification\ndata: x", False),  # no blank line and not starting with data:
    ("event: x\n", False),
    (": comment", False),
    (":", False),
    ("data", False),
    ("database: up\n\n", False),
    (" data: x\n\n", False),
    ("Data: x\n\n", False),
    ("data: a\nfree text\n\n", False),
    ("\ndata: x\n\n", False),
    ("\n\n", False),
]


@pytest.mark.parametrize(("text", "expected"), PREFORMATTED_TABLE)
def test_is_preformatted(text: str, expected: bool) -> None:
    assert is_preformatted(text) is expected


# ---------------------------------------------------------------------------------------------
# Round-trip properties against the reference parser
# ---------------------------------------------------------------------------------------------


def as_received(text: str) -> str:
    """What a browser's ``event.data`` can be for ``text``: the wire format has no way to carry
    a CR inside data (every CR, LF or CRLF ends a line and lines are re-joined with LF), so the
    best any encoder can do is deliver ``text`` with its line breaks normalised to LF."""
    return _EOL.sub("\n", text)


# Texts rich in the characters that matter to the framing, mixed with arbitrary text.
_FRAMING_ALPHABET = st.sampled_from(list("\r\n :adtievnrys\x00\ufeff中\u2028\x85"))
TEXTS = st.one_of(st.text(), st.text(alphabet=_FRAMING_ALPHABET))
NO_BREAK_TEXT = st.text(alphabet=st.characters(exclude_characters="\r\n\x00", exclude_categories=("Cs",)))


@settings(max_examples=500, deadline=None)
@given(s=TEXTS)
@example(s="")
@example(s="a\n")
@example(s="\r\n\r")
@example(s="id: 5 is ready")
@example(s=": x")
def test_roundtrip_encode_auto(s: str) -> None:
    frame = encode_auto(s)
    assert frame is not None
    if is_preformatted(s):
        assert frame.startswith(s.encode("utf-8"))
        return
    assert parse_stream(frame) == [Event("message", as_received(s), "")]


@settings(max_examples=500, deadline=None)
@given(s=TEXTS)
@example(s="data: x\n\n")
@example(s=": comment\n\n")
def test_roundtrip_encode_text(s: str) -> None:
    frame = encode_text(s)
    assert frame is not None
    assert parse_stream(frame) == [Event("message", as_received(s), "")]


@settings(max_examples=500, deadline=None)
@given(s=TEXTS, e=st.none() | NO_BREAK_TEXT, i=st.none() | NO_BREAK_TEXT | st.integers(min_value=0))
@example(s="", e="", i="")
@example(s="x", e=" lead", i=" lead")
def test_roundtrip_sse_event(s: str, e: str | None, i: str | int | None) -> None:
    frame = SSEEvent(data=s, event=e, id=i).encode()
    expected_type = e if e else "message"  # an empty event type dispatches as "message"
    expected_id = "" if i is None else str(i)
    assert parse_stream(frame) == [Event(expected_type, as_received(s), expected_id)]


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(value=st.lists(_JSON_VALUES, max_size=4) | st.dictionaries(st.text(), _JSON_VALUES, max_size=4))
def test_roundtrip_json(value: Any) -> None:
    for encoder in (encode_auto, encode_json):
        frame = encoder(value)
        assert frame is not None
        (event,) = parse_stream(frame)
        assert json.loads(event.data) == value
        # one data line, non-ASCII kept as UTF-8 (no \\u escapes beyond what JSON requires)
        assert (
            frame
            == b"data: " + json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
        )


# Preformatted frames built from field lines: the frame passes through unchanged and ends with
# the blank line that dispatches it, so a following event stays separate.
_FIELD_LINE = st.tuples(
    st.sampled_from(["data:", "data: ", "event: ", "id: ", "retry: ", ": ", ":"]), NO_BREAK_TEXT
).map("".join)
_PREFORMATTED = st.tuples(
    st.lists(_FIELD_LINE, min_size=1, max_size=4),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.sampled_from(["", "\n", "\r", "\r\n", "\n\n", "\r\n\r\n", "\r\r", "\n\r"]),
).map(lambda t: t[1].join(t[0]) + t[2])


@settings(max_examples=300, deadline=None)
@given(s=_PREFORMATTED)
def test_preformatted_frames_are_terminated(s: str) -> None:
    if not is_preformatted(s):
        return
    frame = encode_auto(s)
    assert frame is not None
    assert frame.startswith(s.encode("utf-8"))
    assert len(frame) - len(s.encode("utf-8")) <= 2
    tail = parse_stream(frame + b"data: SENTINEL\n\n")
    assert tail[-1].data == "SENTINEL"
    assert tail[:-1] == parse_stream(frame)
