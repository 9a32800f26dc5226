"""Typed handlers (issue 16, part 1): parameters read from the request by their annotations,
decided once at registration; a 422 naming each bad field before the handler runs (streams
too); handlers without annotations behave exactly as before. In-process, table-driven."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Literal, NotRequired, Optional, TypedDict

import attrs
import msgspec
import pydantic
import pytest

from rat_engine import RatApp, RequestData, RouteError
from rat_engine.exceptions import RequestValidationError
from rat_engine.testing import TestClient

pytestmark = pytest.mark.timeout(60)


class Color(enum.Enum):
    red = "red"
    blue = "blue"


class Level(enum.IntEnum):
    low = 1
    high = 2


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


@dataclasses.dataclass
class Shape:
    name: str
    points: list[Point]
    tags: set[str] = dataclasses.field(default_factory=set)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name must not be empty")


class Movie(TypedDict):
    title: str
    year: int
    rating: NotRequired[float]


@attrs.define
class Person:
    name: str
    age: int = 0


class Item(pydantic.BaseModel):
    name: str
    price: float = pydantic.Field(gt=0)
    tags: list[str] = []


class Order(msgspec.Struct):
    item: str
    quantity: int


def build_app() -> RatApp:
    app = RatApp(name="typed")

    @app.json("/search")
    def search(request_data: Any, q: str = "", limit: int = 10, tags: list[str] = []) -> dict[str, Any]:  # noqa: B006
        return {"q": q, "limit": limit, "tags": tags}

    @app.json("/scalars")
    def scalars(
        request_data: Any,
        flag: bool = False,
        ratio: float = 1.0,
        when: datetime.datetime | None = None,
        day: Optional[datetime.date] = None,  # noqa: UP045 -- the Optional spelling is tested too
        ident: uuid.UUID | None = None,
        amount: decimal.Decimal | None = None,
        color: Color = Color.red,
        level: Level = Level.low,
        mode: Literal["fast", "slow"] = "fast",
        size: Annotated[int, "documented"] = 1,
        either: int | str = 0,
    ) -> dict[str, Any]:
        return {
            "flag": flag,
            "ratio": ratio,
            "when": when,
            "day": day,
            "ident": ident,
            "amount": amount,
            "color": color,
            "level": level,
            "mode": mode,
            "size": size,
            "either": either,
            "types": [
                type(v).__name__ for v in (flag, ratio, when, day, ident, amount, color, level, either)
            ],
        }

    @app.json("/required")
    def required(request_data: Any, q: str, n: int) -> dict[str, Any]:
        return {"q": q, "n": n}

    @app.json("/items/<item_id>")
    def item(item_id: int) -> dict[str, Any]:
        return {"item_id": item_id, "type": type(item_id).__name__}

    @app.json("/ids/<int:item_id>/<name>")
    def ids(request_data: RequestData, item_id: int, name: str) -> dict[str, Any]:
        return {"item_id": item_id, "name": name, "raw": request_data["path_params"]}

    @app.json("/uuid/<ident>")
    def by_uuid(ident: uuid.UUID) -> dict[str, Any]:
        return {"ident": ident, "version": ident.version}

    @app.json("/point", methods="POST")
    def point(p: Point) -> Point:
        return p

    @app.json("/shape", methods="POST")
    def shape(request_data: Any, shape: Shape) -> dict[str, Any]:
        return {
            "name": shape.name,
            "n": len(shape.points),
            "first": shape.points[0],
            "tags": sorted(shape.tags),
        }

    @app.json("/movie", methods="POST")
    def movie(m: Movie) -> Movie:
        return m

    @app.json("/person", methods="POST")
    def person(p: Person) -> Person:
        return p

    @app.json("/item", methods="POST")
    def create_item(item: Item, dry_run: bool = False) -> dict[str, Any]:
        return {"item": item, "dry_run": dry_run}

    @app.json("/order", methods="POST")
    def order(o: Order) -> Order:
        return o

    @app.json("/points", methods="POST")
    def points(ps: list[Point]) -> dict[str, Any]:
        return {"sum": sum(p.x for p in ps)}

    @app.json("/counts", methods="POST")
    def counts(c: dict[str, int]) -> dict[str, int]:
        return c

    @app.json("/optional-body", methods="POST")
    def optional_body(p: Point | None = None) -> dict[str, Any]:
        return {"p": p}

    return app


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(build_app()) as c:
        yield c


# (url, expected JSON) for requests that bind
OK_GET: list[tuple[str, dict[str, Any]]] = [
    ("/search?q=rat&limit=5", {"q": "rat", "limit": 5, "tags": []}),
    ("/search", {"q": "", "limit": 10, "tags": []}),
    ("/search?tags=a&tags=b", {"q": "", "limit": 10, "tags": ["a", "b"]}),
    ("/search?q=%E4%B8%AD&limit=-3", {"q": "中", "limit": -3, "tags": []}),
    ("/required?q=x&n=1", {"q": "x", "n": 1}),
    ("/items/42", {"item_id": 42, "type": "int"}),
    ("/ids/7/abc", {"item_id": 7, "name": "abc", "raw": {"item_id": "7", "name": "abc"}}),
    (
        "/uuid/0f6e7e36-4b4e-4c1c-9d6b-1c8e2b2a7f10",
        {"ident": "0f6e7e36-4b4e-4c1c-9d6b-1c8e2b2a7f10", "version": 4},
    ),
    (
        "/scalars?flag=yes&ratio=2.5&when=2024-05-06T07:08:09Z&day=2024-05-06"
        "&ident=12345678-1234-5678-1234-567812345678&amount=1.10&color=blue&level=2&mode=slow&size=3&either=5",
        {
            "flag": True,
            "ratio": 2.5,
            "when": "2024-05-06T07:08:09+00:00",
            "day": "2024-05-06",
            "ident": "12345678-1234-5678-1234-567812345678",
            "amount": "1.10",
            "color": "blue",
            "level": 2,
            "mode": "slow",
            "size": 3,
            "either": "5",
            "types": ["bool", "float", "datetime", "date", "UUID", "Decimal", "Color", "Level", "str"],
        },
    ),
    ("/scalars?flag=0&either=x", {**{"flag": False, "either": "x"}}),
]


@pytest.mark.parametrize(("url", "expected"), OK_GET, ids=[u for u, _ in OK_GET])
def test_query_and_path_parameters_bind(client: TestClient, url: str, expected: dict[str, Any]) -> None:
    r = client.get(url)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {k: body[k] for k in expected} == expected


# (method, url, json body or None, [(loc, type), ...]) for requests that must be refused
BAD: list[tuple[str, str, Any, list[tuple[list[Any], str]]]] = [
    ("GET", "/search?limit=x", None, [(["query", "limit"], "int_parsing")]),
    ("GET", "/search?limit=1.5", None, [(["query", "limit"], "int_parsing")]),
    ("GET", "/required", None, [(["query", "q"], "missing"), (["query", "n"], "missing")]),
    ("GET", "/required?q=a&n=", None, [(["query", "n"], "int_parsing")]),
    (
        "GET",
        "/scalars?flag=maybe&ratio=x&when=never&day=2024-13-01&ident=nope&amount=abc&color=green&level=9&mode=warp",
        None,
        [
            (["query", "flag"], "bool_parsing"),
            (["query", "ratio"], "float_parsing"),
            (["query", "when"], "datetime_parsing"),
            (["query", "day"], "date_parsing"),
            (["query", "ident"], "uuid_parsing"),
            (["query", "amount"], "decimal_parsing"),
            (["query", "color"], "enum"),
            (["query", "level"], "enum"),
            (["query", "mode"], "literal_error"),
        ],
    ),
    ("GET", "/items/abc", None, [(["path", "item_id"], "int_parsing")]),
    ("GET", "/uuid/not-a-uuid", None, [(["path", "ident"], "uuid_parsing")]),
    ("POST", "/point", None, [(["body"], "missing")]),
    ("POST", "/point", {"y": "a"}, [(["body", "x"], "missing"), (["body", "y"], "int_parsing")]),
    ("POST", "/point", [1, 2], [(["body"], "dict_type")]),
    (
        "POST",
        "/shape",
        {"name": "s", "points": [{"x": 1}, {"x": "b"}, 3], "tags": "t"},
        [
            (["body", "points", 1, "x"], "int_parsing"),
            (["body", "points", 2], "dict_type"),
            (["body", "tags"], "list_type"),
        ],
    ),
    ("POST", "/shape", {"name": "", "points": []}, [(["body"], "value_error")]),
    ("POST", "/movie", {"title": 1}, [(["body", "title"], "string_type"), (["body", "year"], "missing")]),
    ("POST", "/person", {"age": "old"}, [(["body", "name"], "missing"), (["body", "age"], "int_parsing")]),
    (
        "POST",
        "/item",
        {"price": -1, "tags": [1]},
        [
            (["body", "name"], "missing"),
            (["body", "price"], "greater_than"),
            (["body", "tags", 0], "string_type"),
        ],
    ),
    ("POST", "/order", {"item": "x", "quantity": "2"}, [(["body", "quantity"], "value_error")]),
    ("POST", "/order", {"quantity": 2}, [(["body", "item"], "missing")]),
    ("POST", "/points", [{"x": 1}, {"x": None}], [(["body", 1, "x"], "int_type")]),
    ("POST", "/counts", {"a": "x"}, [(["body", "a"], "int_parsing")]),
]


@pytest.mark.parametrize(("method", "url", "body", "expected"), BAD, ids=[f"{m} {u}" for m, u, _, _ in BAD])
def test_invalid_input_is_a_422_naming_each_field(
    client: TestClient, method: str, url: str, body: Any, expected: list[tuple[list[Any], str]]
) -> None:
    r = client.request(method, url, json=body) if body is not None else client.request(method, url)
    assert r.status_code == 422, r.text
    payload = r.json()
    assert payload["error"] == "validation failed" and payload["status"] == 422
    assert [(e["loc"], e["type"]) for e in payload["detail"]] == expected
    assert all(isinstance(e["msg"], str) and e["msg"] for e in payload["detail"])


def test_invalid_json_body_is_a_422(client: TestClient) -> None:
    for url in ("/point", "/item", "/order"):
        r = client.post(url, content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422, (url, r.text)
        assert r.json()["detail"][0]["type"] == "json_invalid"
        assert r.json()["detail"][0]["loc"][0] == "body"


OK_BODY: list[tuple[str, Any, Any]] = [
    ("/point", {"x": 1}, {"x": 1, "y": 0}),
    ("/point", {"x": "2", "y": 3.0, "extra": "ignored"}, {"x": 2, "y": 3}),
    (
        "/shape",
        {"name": "tri", "points": [{"x": 1}, {"x": 2, "y": 2}], "tags": ["b", "a", "a"]},
        {"name": "tri", "n": 2, "first": {"x": 1, "y": 0}, "tags": ["a", "b"]},
    ),
    ("/movie", {"title": "Alien", "year": 1979}, {"title": "Alien", "year": 1979}),
    ("/person", {"name": "Ada"}, {"name": "Ada", "age": 0}),
    (
        "/item?dry_run=true",
        {"name": "pen", "price": 2},
        {"item": {"name": "pen", "price": 2.0, "tags": []}, "dry_run": True},
    ),
    ("/order", {"item": "x", "quantity": 2}, {"item": "x", "quantity": 2}),
    ("/points", [{"x": 1}, {"x": 2}], {"sum": 3}),
    ("/counts", {"a": 1, "b": "2"}, {"a": 1, "b": 2}),
    ("/optional-body", {"x": 5}, {"p": {"x": 5, "y": 0}}),
]


@pytest.mark.parametrize(("url", "body", "expected"), OK_BODY, ids=[u for u, _, _ in OK_BODY])
def test_json_body_binds(client: TestClient, url: str, body: Any, expected: Any) -> None:
    r = client.post(url, json=body)
    assert r.status_code == 200, r.text
    assert r.json() == expected


def test_optional_body_may_be_absent(client: TestClient) -> None:
    assert client.post("/optional-body").json() == {"p": None}


# -- streams: a stream that cannot start answers 422, and its generator never runs ------------


def test_streams_refuse_bad_input_before_starting() -> None:
    app = RatApp()
    started: list[str] = []

    @app.sse("/sync")
    def sync_stream(request_data: Any, n: int) -> Iterator[dict[str, int]]:
        started.append("sync")
        for i in range(n):
            yield {"i": i}

    @app.sse_json("/async/<room>")
    async def async_stream(room: str, since: int = 0) -> AsyncIterator[dict[str, Any]]:
        started.append("async")
        yield {"room": room, "since": since}

    @app.chunk("/lines", methods="POST")
    def lines(p: Point) -> Iterator[str]:
        started.append("chunk")
        yield f"{p.x}\n"

    with TestClient(app) as client:
        for url in ("/sync?n=many", "/sync", "/async/a?since=yesterday"):
            r = client.get(url)
            assert r.status_code == 422, (url, r.text)
            assert r.headers["content-type"].startswith("application/json")
        assert client.post("/lines", json={"x": "?"}).status_code == 422
        assert started == []
        with client.sse("/sync?n=2") as events:
            assert [events.next_event(timeout=5).json() for _ in range(2)] == [{"i": 0}, {"i": 1}]
        with client.sse("/async/lobby?since=3") as events:
            assert events.next_event(timeout=5).json() == {"room": "lobby", "since": 3}
        assert client.post("/lines", json={"x": 4}).text == "4\n"


# -- every call style binds ---------------------------------------------------------------------


def test_async_threaded_and_inline_handlers_all_bind() -> None:
    app = RatApp()
    threads: dict[str, str] = {}

    @app.json("/plain")
    def plain(request_data: Any, n: int = 0) -> dict[str, int]:
        threads["plain"] = threading.current_thread().name
        return {"n": n}

    @app.json("/inline", inline=True)
    def inline(n: int = 0) -> dict[str, int]:
        threads["inline"] = threading.current_thread().name
        return {"n": n}

    @app.json("/async")
    async def coroutine(n: int = 0) -> dict[str, int]:
        return {"n": n}

    with TestClient(app) as client:
        for path in ("/plain", "/inline", "/async"):
            assert client.get(f"{path}?n=3").json() == {"n": 3}
            assert client.get(f"{path}?n=x").status_code == 422
    assert threads["plain"] != threads["inline"]


# -- RAT compatibility: no annotations, no change ---------------------------------------------


def test_unannotated_handlers_behave_as_before() -> None:
    app = RatApp()

    @app.json("/kw")
    def kw(request_data, q="", limit=10):  # type: ignore[no-untyped-def]
        return {"q": q, "limit": limit, "query": request_data["query_params"].get("q")}

    @app.json("/items/<item_id>")
    def item(request_data, item_id):  # type: ignore[no-untyped-def]
        return {"item_id": item_id}

    @app.json("/anyreq")
    def anyreq(req: Any, q: str = "") -> dict[str, Any]:
        return {"method": req["method"], "q": q}

    @app.json("/dictreq")
    def dictreq(data: dict[str, Any]) -> dict[str, Any]:
        return {"path": data["path"]}

    @app.json("/captured")
    def captured(request_data: Any, _index: int = 7) -> dict[str, int]:  # a captured value, not a parameter
        return {"index": _index}

    with TestClient(app) as client:
        assert client.get("/kw?q=rat&limit=5").json() == {"q": "", "limit": 10, "query": "rat"}
        assert client.get("/items/42").json() == {"item_id": "42"}
        assert client.get("/anyreq?q=x").json() == {"method": "GET", "q": "x"}
        assert client.get("/dictreq").json() == {"path": "/dictreq"}
        assert client.get("/captured?_index=x").json() == {"index": 7}
    for path in ("/kw", "/items/1", "/captured"):
        assert app.router.match("GET", path).endpoint.plan.binder is None  # type: ignore[union-attr]
    inline = RatApp()
    inline.json("/x", inline=True)(lambda request_data: {})
    assert inline.router.match("GET", "/x").endpoint.plan.fast  # type: ignore[union-attr]


def test_unresolvable_annotation_leaves_the_parameter_untyped(caplog: pytest.LogCaptureFixture) -> None:
    app = RatApp()
    namespace: dict[str, Any] = {}
    exec(
        "def handler(request_data, limit: 'NoSuchType' = 10):\n    return {'limit': limit}\n",
        namespace,
    )
    with caplog.at_level(logging.WARNING, logger="rat_engine.params.types"):
        app.json("/h")(namespace["handler"])
    assert "cannot be resolved" in caplog.text
    with TestClient(app) as client:
        assert client.get("/h?limit=5").json() == {"limit": 10}


# -- registration errors name the handler -----------------------------------------------------


def _two_bodies(a: Point, b: Person) -> None: ...


def _upload_body(p: Point) -> None: ...


def _bad_query(request_data: Any, cb: threading.Event) -> None: ...


def _bad_path(ev: threading.Event) -> None: ...


REGISTRATION_ERRORS: list[tuple[str, Any, dict[str, Any], str]] = [
    ("/a", _two_bodies, {}, "two body parameters"),
    ("/b", _upload_body, {"stream_body": True}, "stream_body=True"),
    ("/c", _bad_query, {}, "cannot be read as"),
    ("/d/<ev>", _bad_path, {}, "path parameter 'ev'"),
]


@pytest.mark.parametrize(("rule", "func", "options", "message"), REGISTRATION_ERRORS)
def test_registration_refuses_what_cannot_be_read(
    rule: str, func: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(RouteError, match=message):
        RatApp().route(rule, methods="POST", **options)(func)


def test_an_optional_unreadable_parameter_keeps_its_default(caplog: pytest.LogCaptureFixture) -> None:
    app = RatApp()

    @app.json("/x")
    def x(request_data: Any, cb: threading.Event | None = None) -> dict[str, Any]:
        return {"cb": cb is None}

    assert "keeps its default" in caplog.text
    with TestClient(app) as client:
        assert client.get("/x?cb=1").json() == {"cb": True}


# -- the 422 can be shaped by the application -----------------------------------------------


def test_errorhandler_shapes_the_422() -> None:
    app = RatApp()

    @app.json("/n")
    def n(request_data: Any, n: int) -> dict[str, int]:
        return {"n": n}

    @app.errorhandler(RequestValidationError)
    def invalid(request_data: Any, exc: RequestValidationError) -> Any:
        return {"problems": [".".join(map(str, e["loc"])) for e in exc.errors]}, 400

    with TestClient(app) as client:
        r = client.get("/n?n=x")
        assert r.status_code == 400 and r.json() == {"problems": ["query.n"]}
