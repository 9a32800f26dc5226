"""A typed app for the OpenAPI tests (in-process and in Chromium): every parameter source, body
flavour, response kind and stream shape the document describes, with ``enable_openapi()`` on."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal, NotRequired, TypedDict

import attrs
import msgspec
import pydantic

from rat_engine import RatApp, SSEEvent


class Color(enum.Enum):
    red = "red"
    blue = "blue"


class Token(pydantic.BaseModel):
    """One token of a generated answer."""

    text: str
    index: int
    logprob: float | None = None


class Order(msgspec.Struct):
    item: str
    quantity: int = 1


@attrs.define
class Person:
    name: str
    age: int = 0


class Movie(TypedDict):
    title: str
    year: NotRequired[int]


@dataclasses.dataclass
class Point:
    """A point on the plane."""

    x: int
    y: int = 0
    color: Color = Color.red


@dataclasses.dataclass
class Tree:
    name: str
    children: list[Tree] = dataclasses.field(default_factory=list)


def build_app() -> RatApp:
    app = RatApp(name="typed-api")

    @app.json("/search", methods="GET")
    def search(request_data: Any, q: str = "", limit: int = 10, tags: list[str] = []) -> dict[str, Any]:  # noqa: B006
        """Search the catalogue.

        Echoes the parsed query: ``q`` and ``limit`` arrive typed."""
        return {"q": q, "limit": limit, "tags": tags}

    @app.json("/items/<item_id>", methods="GET")
    def get_item(item_id: int, color: Color = Color.red) -> Point:
        """One item, by a path parameter converted by its annotation."""
        return Point(item_id, color=color)

    @app.json("/items/<int:item_id>/at/<uuid:ref>", methods="GET")
    def item_at(item_id: int, ref: uuid.UUID, when: datetime.date | None = None) -> dict[str, Any]:
        return {"item_id": item_id, "ref": ref, "when": when}

    @app.json("/points", methods="POST")
    def add_points(points: list[Point], mode: Literal["add", "replace"] = "add") -> list[Point]:
        """Add points (a list of dataclasses as the body)."""
        return points

    @app.json("/tokens", methods="POST")
    def add_token(token: Token) -> Token:
        return token

    @app.json("/orders", methods=["POST", "PUT"])
    def place_order(order: Order) -> Order:
        return order

    @app.json("/people", methods="POST")
    def add_person(person: Person) -> Person:
        return person

    @app.json("/movies", methods="POST")
    def add_movie(movie: Movie) -> Movie:
        return movie

    @app.json("/trees", methods="POST")
    def add_tree(tree: Tree) -> Tree:
        return tree

    @app.json("/price", methods="GET")
    def price(amount: decimal.Decimal, pair: tuple[int, int] | None = None) -> dict[str, Any]:
        return {"amount": amount, "pair": pair}

    @app.route("/purge", methods="PURGE")
    def purge() -> dict[str, bool]:
        return {"purged": True}

    @app.json("/legacy")
    def legacy(request_data):  # type: ignore[no-untyped-def]
        """A RAT-style handler: no annotations."""
        return {"method": request_data["method"]}

    @app.html("/")
    def index() -> str:
        return "<h1>typed api</h1>"

    @app.sse("/stream/tokens")
    def stream_tokens(request_data: Any, n: int = 3) -> Iterator[Token]:
        """Tokens as server-sent events, one JSON object each."""
        for i in range(n):
            yield Token(text=f"t{i}", index=i)

    @app.sse("/stream/rooms/<room>")
    async def room_events(room: str, since: int = 0) -> AsyncIterator[SSEEvent[Point]]:
        """Events with a type and an id, each carrying a Point."""
        yield SSEEvent(Point(since), event="point", id=1)

    @app.sse_text("/stream/lines")
    def lines() -> Iterator[str]:
        yield "one"

    @app.json("/ndjson")
    def ndjson(n: int = 2) -> Iterator[Order]:
        for i in range(n):
            yield Order(f"o{i}", i)

    @app.file("/download")
    def download() -> str:
        return __file__

    @app.sse("/news")
    def news(request_data: Any) -> Any:
        return app.broadcast.subscribe("news", request_data["last_event_id"])

    app.enable_openapi(title="Typed API", version="1.2.3", description="rat_engine's typed handlers")
    return app
