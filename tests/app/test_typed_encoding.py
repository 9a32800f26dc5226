"""Encoding everywhere (issue 16, part 2): pydantic v2 models, msgspec Structs, attrs classes,
dataclasses, enums, datetime/date/UUID/Decimal/Path become JSON through one encoder, in JSON
responses, in ``@app.sse``/``@app.sse_json``/``@app.chunk`` items and in broadcast payloads."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import pathlib
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import attrs
import msgspec
import pydantic
import pytest

from rat_engine import RatApp, SSEEvent, _json
from rat_engine.testing import TestClient

pytestmark = pytest.mark.timeout(60)


class Color(enum.Enum):
    red = "red"


class Token(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(populate_by_name=True)
    text: str
    index: int = pydantic.Field(0, serialization_alias="i")
    at: datetime.datetime = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


class Frame(msgspec.Struct):
    n: int
    when: datetime.date


@attrs.define
class Note:
    body: str
    path: pathlib.Path


@dataclasses.dataclass
class Point:
    x: int
    color: Color


UID = uuid.UUID("0f6e7e36-4b4e-4c1c-9d6b-1c8e2b2a7f10")

# (value, its JSON text)
VALUES: list[tuple[str, Any, str]] = [
    ("pydantic", Token(text="hi", index=2), '{"text":"hi","i":2,"at":"2024-01-02T03:04:05Z"}'),
    ("msgspec", Frame(1, datetime.date(2024, 5, 6)), '{"n":1,"when":"2024-05-06"}'),
    ("attrs", Note("n", pathlib.Path("/tmp/x")), '{"body":"n","path":"/tmp/x"}'),
    ("dataclass", Point(1, Color.red), '{"x":1,"color":"red"}'),
    ("enum", Color.red, '"red"'),
    ("datetime", datetime.datetime(2024, 1, 2, 3, 4, 5), '"2024-01-02T03:04:05"'),
    ("date", datetime.date(2024, 1, 2), '"2024-01-02"'),
    ("time", datetime.time(3, 4, 5), '"03:04:05"'),
    ("uuid", UID, f'"{UID}"'),
    ("decimal", decimal.Decimal("1.10"), '"1.10"'),
    ("path", pathlib.PurePosixPath("a/b"), '"a/b"'),
    ("nested", {"t": [Token(text="x")], "n": Note("b", pathlib.Path("p"))}, None),
]


@pytest.mark.parametrize(("name", "value", "text"), VALUES, ids=[v[0] for v in VALUES])
def test_one_encoder_for_typed_values(name: str, value: Any, text: str | None) -> None:
    encoded = _json.dumps(value).decode()
    if text is not None:
        assert encoded == text
    # beyond 64-bit integers the stdlib fallback must agree
    assert _json.loads(_json.dumps({"big": 2**70, "v": value})) == {"big": 2**70, "v": _json.loads(encoded)}


def build_app() -> RatApp:
    app = RatApp(name="encoding")

    @app.json("/json/<int:i>")
    def as_json(i: int) -> Any:
        return VALUES[i][1]

    @app.route("/route")
    def as_route() -> Token:
        return Token(text="route")

    @app.custom("/custom")
    def as_custom() -> Point:
        return Point(3, Color.red)

    @app.sse("/sse")
    def stream() -> Iterator[Any]:
        yield Token(text="a", index=1)
        yield Frame(2, datetime.date(2024, 1, 1))
        yield SSEEvent(Note("c", pathlib.Path("d")), event="note", id=3)
        yield "plain text stays text"

    @app.sse_json("/sse-json")
    async def stream_json() -> AsyncIterator[Any]:
        yield Point(1, Color.red)
        yield decimal.Decimal("2.5")

    @app.chunk("/chunk")
    def chunks() -> Iterator[Any]:
        yield Token(text="line")
        yield Point(2, Color.red)

    @app.json("/ndjson")
    def ndjson() -> Iterator[Any]:
        yield Frame(1, datetime.date(2024, 1, 1))

    @app.json("/publish", methods="POST")
    def publish() -> dict[str, Any]:
        return {"id": app.broadcast.publish("news", Token(text="breaking", index=7), event="token")}

    @app.sse("/news")
    def news(request_data: Any) -> Any:
        return app.broadcast.subscribe("news", request_data["last_event_id"])

    return app


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(build_app()) as c:
        yield c


@pytest.mark.parametrize("index", range(len(VALUES)), ids=[v[0] for v in VALUES])
def test_json_responses_encode_typed_values(client: TestClient, index: int) -> None:
    r = client.get(f"/json/{index}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == _json.loads(_json.dumps(VALUES[index][1]))


def test_other_kinds_send_typed_records_as_json(client: TestClient) -> None:
    r = client.get("/route")
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["text"] == "route"
    assert client.get("/custom").json() == {"x": 3, "color": "red"}


def test_sse_items_encode_typed_values(client: TestClient) -> None:
    with client.sse("/sse") as events:
        got = [events.next_event(timeout=5) for _ in range(4)]
    assert got[0].json() == {"text": "a", "i": 1, "at": "2024-01-02T03:04:05Z"}
    assert got[1].json() == {"n": 2, "when": "2024-01-01"}
    assert (got[2].event, got[2].id, got[2].json()) == ("note", "3", {"body": "c", "path": "d"})
    assert got[3].data == "plain text stays text"
    with client.sse("/sse-json") as events:
        assert events.next_event(timeout=5).json() == {"x": 1, "color": "red"}
        assert events.next_event(timeout=5).json() == "2.5"


def test_chunk_and_ndjson_items_are_json_lines(client: TestClient) -> None:
    lines = client.get("/chunk").text.splitlines()
    assert [_json.loads(line) for line in lines] == [
        {"text": "line", "i": 0, "at": "2024-01-02T03:04:05Z"},
        {"x": 2, "color": "red"},
    ]
    assert _json.loads(client.get("/ndjson").text) == {"n": 1, "when": "2024-01-01"}


def test_broadcast_payloads_encode_typed_values(client: TestClient) -> None:
    with client.sse("/news") as events:
        assert client.post("/publish").status_code == 200
        event = events.next_event(timeout=5)
    assert event.event == "token"
    assert event.json() == {"text": "breaking", "i": 7, "at": "2024-01-02T03:04:05Z"}


def test_the_package_imports_neither_pydantic_nor_msgspec() -> None:
    code = (
        "import sys, rat_engine, rat_engine.app, rat_engine.params, rat_engine.openapi\n"
        "from rat_engine import RatApp\n"
        "app = RatApp()\n"
        "def x(request_data, n: int = 1):\n"
        "    return {'n': n}\n"
        "app.json('/x')(x)\n"
        "app.enable_openapi()\n"
        "assert not {'pydantic', 'msgspec', 'attrs', 'attr'} & set(sys.modules), sorted(sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
