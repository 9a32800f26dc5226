"""A hand-written ASGI app on the same uvicorn: the floor any ASGI framework there stands on."""

import json

from _common import PAYLOAD
from _uvicorn import run

BODY = json.dumps(PAYLOAD, separators=(",", ":")).encode()
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())],
}
NOT_FOUND = {"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/json":
        await send(START)
        await send({"type": "http.response.body", "body": BODY})
    else:
        await send(NOT_FOUND)
        await send({"type": "http.response.body", "body": b""})


if __name__ == "__main__":
    run(app)
