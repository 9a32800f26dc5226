"""A typed rat_engine app: mypy --strict must accept it (checked by tests/test_typing.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from rat_engine import HTTPException, JSONResponse, RatApp, RequestData, Response, SSEEvent
from rat_engine.broadcast import Subscription
from rat_engine.testing import TestClient

app = RatApp(name="typed", sse_ping_interval=5.0)


@app.json("/items/<int:item_id>")
def get_item(request_data: RequestData, item_id: int) -> dict[str, Any]:
    if item_id < 0:
        raise HTTPException(404, "no such item")
    return {"id": item_id, "q": request_data["query_params"].get("q")}


@app.html("/")
async def index(request_data: RequestData) -> str:
    return "<h1>typed</h1>"


@app.custom("/csv")
def csv(request_data: RequestData) -> tuple[str, str]:
    return "a,b\n1,2\n", "text/csv"


@app.sse("/count")
def count(request_data: RequestData) -> Iterator[str]:
    for i in range(3):
        yield str(i)


@app.sse("/events", ping_interval=1.0)
async def events(request_data: RequestData) -> AsyncIterator[SSEEvent]:
    yield SSEEvent({"k": "v"}, event="update", id=1)


@app.sse("/room/<name>")
def room(request_data: RequestData, name: str) -> Subscription:
    return app.broadcast.subscribe(f"room:{name}", request_data["last_event_id"])


@app.after_request
def add_header(response: Response) -> Response:
    response.headers["x-typed"] = "1"
    return response


@app.errorhandler(404)
def not_found(error: HTTPException) -> JSONResponse:
    return JSONResponse({"missing": error.detail}, 404)


def check() -> int:
    with TestClient(app) as client:
        status: int = client.get("/items/3").status_code
        with client.sse("/count") as stream:
            first: str = stream.next_event(timeout=2).data
        assert first == "0"
        return status
