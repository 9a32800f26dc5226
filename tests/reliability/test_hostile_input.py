"""Scenario 6 -- hostile input, by property-based fuzzing (hypothesis):

* HTTP request parsing of the real server: the generator of tests/support/malformed.py (150 inputs
  in tests/integration/test_malformed_http.py) run for CI 300 / long 5,000 inputs: never a 5xx,
  never a hang, still serving.
* The SSE encoder: no input produces a frame that the WHATWG algorithm
  (:class:`rat_engine.sse.parser.SSEParser`) reads differently from what was meant, whatever the
  chunking; newline injection through ``event``/``id`` is impossible (ValueError). CI 2,000 / long
  50,000 examples per property.
* The router and dispatcher: any method and path gives a match, 404 or 405 (and the automatic
  204 for OPTIONS), never a 500 or an exception. CI 2,000 / long 20,000 examples.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.http import raw_request
from support.live import run_live
from support.malformed import assert_serving, random_requests
from support.malformed import build_app as build_malformed_app

from rat_engine import RatApp
from rat_engine.routing import Match, MethodNotAllowed, NotFound
from rat_engine.sse.event import (
    SSEEvent,
    comment,
    encode_auto,
    encode_json,
    encode_text,
    error_event,
    is_preformatted,
)
from rat_engine.sse.parser import SSEParser

from ._support import pick, report

HTTP_INPUTS = pick(300, 5_000)
SSE_EXAMPLES = pick(2_000, 50_000)
INJECTION_EXAMPLES = pick(500, 5_000)
ROUTER_EXAMPLES = pick(2_000, 20_000)

pytestmark = pytest.mark.timeout(pick(90, 1_800))


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
    )


# -- HTTP parsing of the real server --------------------------------------------------------------


def test_http_request_fuzz_larger_count() -> None:
    tried = 0
    statuses: Counter[str] = Counter()
    started = time.monotonic()
    with run_live(build_malformed_app(), log_level="error") as server:

        @fuzz_settings(HTTP_INPUTS)
        @given(random_requests())
        def check(payload: bytes) -> None:
            nonlocal tried
            tried += 1
            result = raw_request(server.port, payload)
            statuses["closed" if result.status is None else str(result.status)] += 1
            if result.status is None:
                assert result.closed, result
            else:
                assert result.status < 500, (payload, result)

        check()
        assert_serving(server)
    seconds = time.monotonic() - started
    report(
        "http_request_fuzz",
        f"{tried} random/malformed requests against the real server in {seconds:.1f}s, no 5xx, no hang, "
        f"still serving; statuses {dict(sorted(statuses.items()))}",
        inputs=tried,
        seconds=round(seconds, 2),
        statuses=dict(statuses),
    )
    assert tried >= HTTP_INPUTS


# -- SSE encoder ---------------------------------------------------------------------------------

_SPECIAL = st.sampled_from(
    [
        "\r",
        "\n",
        "\r\n",
        "\n\r",
        "\r\r",
        ":",
        " ",
        "  ",
        "data:",
        "data: ",
        "event:",
        "id:",
        "retry:",
        ": ",
        "\0",
        "\ufeff",
        "\u2028",
        "\x85",
        "\t",
        "\x0b",
        "\x0c",
        "é",
        "\U0001f600",
        "\\",
        '"',
        "}",
    ]
)
TEXT = st.lists(st.one_of(_SPECIAL, st.text(max_size=6)), max_size=10).map("".join)
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        TEXT,
    ),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(TEXT, children, max_size=4)),
    max_leaves=10,
)
SPLITS = st.lists(st.integers(min_value=0, max_value=400), max_size=6)

PREFIX = SSEEvent("prefix", id="p0").encode()
SENTINEL = b"data: sentinel\n\n"


def normalized(text: str) -> str:
    """What a browser's ``event.data`` is for ``text``: every CR, LF, CRLF becomes LF."""
    return re.sub(r"\r\n|\r|\n", "\n", text)


def parse_chunked(stream: bytes, splits: list[int]) -> tuple[list[Any], SSEParser]:
    """Parse ``stream`` fed in pieces cut at ``splits`` (as a network would deliver it)."""
    text = stream.decode("utf-8")
    cuts = sorted({min(len(text), s) for s in splits})
    parser = SSEParser()
    events: list[Any] = []
    previous = 0
    for cut in [*cuts, len(text)]:
        events.extend(parser.feed(text[previous:cut]))
        previous = cut
    return events, parser


def _field_error(event: Any, id_: Any, retry: Any) -> bool:
    if event is not None and ("\r" in event or "\n" in event):
        return True
    if id_ is not None and any(c in str(id_) for c in "\r\n\0"):
        return True
    return retry is not None and (isinstance(retry, bool) or not isinstance(retry, int) or retry < 0)


COUNTS: Counter[str] = Counter()


@fuzz_settings(SSE_EXAMPLES)
@given(
    data=st.one_of(st.none(), TEXT, JSON_VALUES, TEXT.map(lambda t: t.encode("utf-8"))),
    event=st.one_of(st.none(), TEXT),
    id_=st.one_of(st.none(), TEXT, st.integers()),
    retry=st.one_of(st.none(), st.integers(min_value=-3, max_value=10**12), st.booleans()),
    comment_=st.one_of(st.none(), TEXT),
    splits=SPLITS,
)
def _sse_event_property(
    data: Any, event: Any, id_: Any, retry: Any, comment_: Any, splits: list[int]
) -> None:
    COUNTS["examples"] += 1
    if _field_error(event, id_, retry):
        with pytest.raises(ValueError):
            SSEEvent(data, event=event, id=id_, retry=retry, comment=comment_)
        COUNTS["rejected (ValueError)"] += 1
        return
    frame = SSEEvent(data, event=event, id=id_, retry=retry, comment=comment_).encode()
    events, parser = parse_chunked(PREFIX + frame + SENTINEL, splits)
    expected_id = "p0" if id_ is None else str(id_)
    if data is None:
        assert [e.data for e in events] == ["prefix", "sentinel"], (frame, events)
        COUNTS["no data: nothing dispatched"] += 1
    else:
        assert len(events) == 3, (frame, events)
        got = events[1]
        if isinstance(data, str):
            assert got.data == normalized(data), (frame, got)
        elif isinstance(data, bytes):
            assert got.data == normalized(data.decode("utf-8")), (frame, got)
        else:
            assert json.loads(got.data) == data, (frame, got)
        assert got.event == (event or "message"), (frame, got)
        assert got.id == expected_id, (frame, got)
        assert got.retry == retry, (frame, got)
        COUNTS["dispatched as meant"] += 1
    sentinel = events[-1]
    # Nothing bled into the next frame: type, data and retry are the next frame's own.
    assert (sentinel.event, sentinel.data, sentinel.retry, sentinel.id) == (
        "message",
        "sentinel",
        None,
        expected_id,
    )
    if retry is not None:
        assert parser.retry == retry


def test_sse_event_encoding_matches_whatwg_parser() -> None:
    COUNTS.clear()
    started = time.monotonic()
    _sse_event_property()
    seconds = time.monotonic() - started
    report(
        "sse_event_fuzz",
        f"{COUNTS['examples']} SSEEvent(data, event, id, retry, comment) examples in {seconds:.1f}s, fed in "
        f"random chunks to the WHATWG parser: {dict(COUNTS)}; 0 misparsed",
        examples=COUNTS["examples"],
        seconds=round(seconds, 2),
        outcomes=dict(COUNTS),
    )
    assert COUNTS["examples"] >= SSE_EXAMPLES
    assert COUNTS["rejected (ValueError)"] > 0 and COUNTS["dispatched as meant"] > 0


ITEM_COUNTS: Counter[str] = Counter()
ENCODERS = {"auto": encode_auto, "json": encode_json, "text": encode_text}


@fuzz_settings(SSE_EXAMPLES)
@given(
    mode=st.sampled_from(sorted(ENCODERS)),
    item=st.one_of(
        TEXT,
        TEXT,
        TEXT.map(lambda t: t.encode("utf-8")),
        JSON_VALUES,
        # text that looks like hand-written frames, to reach the pass-through branch
        st.lists(
            st.tuples(st.sampled_from(["data:", "data: ", "event: ", "id: ", "retry: ", ":"]), TEXT),
            min_size=1,
            max_size=4,
        )
        .map(lambda pairs: "\n".join(a + b for a, b in pairs))
        .flatmap(lambda t: st.sampled_from([t, t + "\n", t + "\n\n", t + "\r\n\r\n", t + "\r"])),
    ),
    splits=SPLITS,
)
def _item_property(mode: str, item: Any, splits: list[int]) -> None:
    ITEM_COUNTS["examples"] += 1
    frame = ENCODERS[mode](item)
    if item is None:
        assert frame is None
        ITEM_COUNTS["None: nothing sent"] += 1
        return
    assert frame is not None
    events, _ = parse_chunked(PREFIX + frame + SENTINEL, splits)
    sentinel = events[-1]
    assert (sentinel.event, sentinel.data, sentinel.retry) == ("message", "sentinel", None), (frame, events)
    assert events[0].data == "prefix"
    text = item.decode("utf-8") if isinstance(item, bytes) else item
    if isinstance(text, str) and mode == "auto" and is_preformatted(text):
        # A hand-written frame is passed through (documented): it must still end where it ends.
        ITEM_COUNTS["auto: hand-written frame passed through, terminated"] += 1
        return
    assert len(events) == 3, (mode, item, frame, events)
    got = events[1]
    assert got.event == "message"
    if isinstance(text, str):
        assert got.data == normalized(text), (mode, item, frame, got)
        ITEM_COUNTS[f"{mode}: text as one event"] += 1
    elif mode == "text":
        assert got.data == normalized(str(item)), (item, frame, got)
        ITEM_COUNTS["text: str(value) as one event"] += 1
    else:
        assert json.loads(got.data) == item, (mode, item, frame, got)
        ITEM_COUNTS[f"{mode}: JSON as one event"] += 1


def test_sse_item_encoders_match_whatwg_parser() -> None:
    ITEM_COUNTS.clear()
    started = time.monotonic()
    _item_property()
    seconds = time.monotonic() - started
    report(
        "sse_item_encoder_fuzz",
        f"{ITEM_COUNTS['examples']} yielded items (str/bytes/JSON/hand-written frames) through the "
        f"@app.sse/@app.sse_json/@app.sse_text encoders in {seconds:.1f}s: 0 misparsed; "
        f"{dict(sorted(ITEM_COUNTS.items()))}",
        examples=ITEM_COUNTS["examples"],
        seconds=round(seconds, 2),
        outcomes=dict(ITEM_COUNTS),
    )
    assert ITEM_COUNTS["examples"] >= SSE_EXAMPLES


INJECT = st.tuples(
    TEXT,
    st.sampled_from(["\r", "\n", "\r\n"]),
    st.sampled_from(["data: injected", "event: admin", "id: 999", "retry: 1", "", "\n"]),
    TEXT,
).map("".join)
INJECTION_COUNTS: Counter[str] = Counter()


@fuzz_settings(INJECTION_EXAMPLES)
@given(field=st.sampled_from(["event", "id", "id-nul", "comment", "data", "error"]), value=INJECT)
def _injection_property(field: str, value: str) -> None:
    INJECTION_COUNTS["examples"] += 1
    if field in ("event", "id", "id-nul"):
        if field == "id-nul":
            value = value.replace("\r", "\0").replace("\n", "\0")
        with pytest.raises(ValueError):
            SSEEvent("x", **{field.split("-")[0]: value})
        INJECTION_COUNTS[f"{field}: ValueError"] += 1
        return
    if field == "comment":
        frame = SSEEvent(comment=value).encode()
        expected: list[tuple[str, str]] = []
    elif field == "data":
        frame = SSEEvent(value).encode()
        expected = [("message", normalized(value))]
    else:
        frame = error_event(value)
        expected = [("error", json.dumps({"type": "error", "message": value}))]
    events, parser = parse_chunked(frame + SENTINEL, [])
    got = [(e.event, e.data) for e in events[:-1]]
    if field == "error":
        got = [(t, json.dumps(json.loads(d))) for t, d in got]
    assert got == expected, (field, value, frame, events)
    assert parser.last_event_id == "" and parser.retry is None, (field, value, frame)
    assert events[-1].event == "message" and events[-1].data == "sentinel"
    INJECTION_COUNTS[f"{field}: no field injected"] += 1


def test_newline_injection_through_fields_is_impossible() -> None:
    INJECTION_COUNTS.clear()
    _injection_property()
    for text in ("a\nb", "a\rb", "a\r\nb", "\n"):
        assert parse_chunked(comment(text) + SENTINEL, [])[0][0].data == "sentinel"
    report(
        "sse_injection_fuzz",
        f"{INJECTION_COUNTS['examples']} CR/LF injection attempts through event/id/comment/data/error: "
        f"{dict(INJECTION_COUNTS)}",
        examples=INJECTION_COUNTS["examples"],
        outcomes=dict(INJECTION_COUNTS),
    )
    assert INJECTION_COUNTS["examples"] >= INJECTION_EXAMPLES


# -- router and dispatcher -----------------------------------------------------------------------

ROUTES: list[tuple[str, tuple[str, ...]]] = [
    ("/", ("GET",)),
    ("/static/page", ("GET", "POST")),
    ("/users/<int:id>", ("GET", "DELETE")),
    ("/users/<int:id>/posts/<slug>", ("GET",)),
    ("/users/<name>", ("PUT",)),
    ("/files/<path:rest>", ("GET",)),
    ("/price/<float:x>", ("GET",)),
    ("/u/<uuid:u>", ("GET", "PATCH")),
    ("/a/<x>/b/<y>", ("POST",)),
]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "get", "FOO"]


def build_router_app() -> RatApp:
    app = RatApp(name="router-fuzz")
    for index, (rule, methods) in enumerate(ROUTES):

        def handler(request_data: dict[str, Any], _index: int = index, **params: Any) -> dict[str, Any]:
            return {"route": _index, "params": {k: str(v) for k, v in params.items()}}

        app.add_route(rule, handler, methods, kind="json", inline=True)
    return app


_SEGMENT = st.one_of(
    st.sampled_from(
        [
            "users",
            "files",
            "price",
            "u",
            "a",
            "b",
            "posts",
            "static",
            "page",
            "..",
            ".",
            "",
            "1",
            "-7",
            "+3",
            "00",
            "1.5",
            ".5",
            "1e3",
            "1e999",
            "nan",
            "inf",
            "-0",
            str(uuid.UUID(int=7)),
            str(uuid.UUID(int=7)).upper(),
            "%2f",
            "%00",
            "\n",
            "\x00",
            "é",
        ]
    ),
    st.text(max_size=8),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)
_VALUES = {
    "int": st.one_of(
        st.integers(min_value=-(10**30), max_value=10**30).map(str), st.sampled_from(["+3", "007"])
    ),
    "float": st.one_of(
        st.floats(allow_nan=False, allow_infinity=False).map(repr), st.sampled_from(["1.", ".5"])
    ),
    "uuid": st.uuids().map(str),
    "str": st.text(
        st.characters(blacklist_characters="/", blacklist_categories=("Cs",)), min_size=1, max_size=10
    ),
    "path": st.lists(
        st.text(
            st.characters(blacklist_characters="/", blacklist_categories=("Cs",)), min_size=1, max_size=6
        ),
        min_size=1,
        max_size=4,
    ).map("/".join),
}
_PLACEHOLDER = re.compile(r"<(?:(\w+):)?(\w+)>")


@st.composite
def valid_paths(draw: st.DrawFn) -> tuple[str, str, str]:
    """(rule, method, path): a path the rule must match, and one of its methods."""
    rule, methods = draw(st.sampled_from(ROUTES))
    parts, position = [], 0
    for m in _PLACEHOLDER.finditer(rule):
        parts += [rule[position : m.start()], draw(_VALUES[m.group(1) or "str"])]
        position = m.end()
    path = "".join(parts) + rule[position:]
    return rule, draw(st.sampled_from(methods)), path


PATHS = st.one_of(
    st.lists(_SEGMENT, max_size=6).map(lambda parts: "/" + "/".join(parts)),
    st.text(max_size=30),
    valid_paths().map(lambda triple: triple[2]),
)


def _check_match(app: RatApp, method: str, path: str) -> str:
    result = app.router.match(method, path)
    if isinstance(result, NotFound):
        return "404"
    if isinstance(result, MethodNotAllowed):
        assert result.allowed and method not in result.allowed, (method, path, result)
        return "405"
    assert isinstance(result, Match), result
    rule = result.rule
    for name, value in result.params.items():
        assert "/" not in str(value) or "<path:" in rule, (rule, path, result.params)
        if f"<int:{name}>" in rule:
            assert type(value) is int
        elif f"<float:{name}>" in rule:
            assert type(value) is float and math.isfinite(value)
        elif f"<uuid:{name}>" in rule:
            assert isinstance(value, uuid.UUID)
        else:
            assert isinstance(value, str) and value
    return "match"


async def _dispatch(app: RatApp, method: str, path: str) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"x")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, Any]] = []
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


ROUTER_COUNTS: Counter[str] = Counter()


def test_router_only_matches_404_or_405() -> None:
    app = build_router_app()
    loop = asyncio.new_event_loop()
    ROUTER_COUNTS.clear()

    @fuzz_settings(ROUTER_EXAMPLES)
    @given(method=st.sampled_from(METHODS), path=PATHS, valid=st.one_of(st.none(), valid_paths()))
    def check(method: str, path: str, valid: tuple[str, str, str] | None) -> None:
        if valid is not None:
            # A path built from a rule, with one of its methods, always matches (that rule or
            # a more specific one that accepts the same path).
            rule, method, path = valid
            assert isinstance(app.router.match(method, path), Match), (rule, method, path)
        outcome = _check_match(app, method, path)
        status = loop.run_until_complete(_dispatch(app, method, path))
        ROUTER_COUNTS[f"{outcome}->{status}"] += 1
        if outcome == "404":
            assert status == 404
        elif outcome == "405":
            assert status == (204 if method == "OPTIONS" else 405)
        else:
            assert status == 200

    started = time.monotonic()
    try:
        check()
    finally:
        loop.close()
    seconds = time.monotonic() - started
    total = sum(ROUTER_COUNTS.values())
    report(
        "router_fuzz",
        f"{total} random (method, path) pairs through the router and the dispatcher in {seconds:.1f}s: "
        f"{dict(sorted(ROUTER_COUNTS.items()))}; no 5xx, no exception",
        examples=total,
        seconds=round(seconds, 2),
        outcomes=dict(ROUTER_COUNTS),
    )
    assert total >= ROUTER_EXAMPLES
    assert any(k.startswith("match") for k in ROUTER_COUNTS) and any(
        k.startswith("405") for k in ROUTER_COUNTS
    )
