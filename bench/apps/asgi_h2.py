"""The h2 scenario's peers: one ASGI app served over HTTP/2 by hypercorn or granian.

Env BENCH_H2_SERVER picks the server: ``hypercorn`` (its asyncio worker on uvloop, pure-Python
HTTP/2 with the ``h2`` library) or ``granian`` (``--interface asgi --http 2 --loop uvloop``, 1
worker, Rust HTTP/2). Both take HTTP/2 over cleartext with prior knowledge (h2c), as h2load
sends it to an http:// URL. Env BENCH_H2_APP picks the app:

``starlette`` (default)
    /stream  ``StreamingResponse(media_type="text/event-stream")`` over an async generator of
             BENCH_H2_EVENTS events ``data: {"i":i,"v":"hello"}\\n\\n``: the bytes rat_engine's
             ``@app.sse`` async generator sends for ``yield {"i": i, "v": "hello"}``
    /json    ``JSONResponse({"hello": "world", "n": 1})``
``raw``
    the same two routes as a hand-written ASGI callable: the floor of each server.
"""

import json
import os
import sys

from _common import BACKLOG, HOST, PAYLOAD, port


def h2_events() -> int:
    return int(os.environ.get("BENCH_H2_EVENTS", "1000"))


def frame(i: int) -> bytes:
    return b"data: " + json.dumps({"i": i, "v": "hello"}, separators=(",", ":")).encode() + b"\n\n"


SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
BODY = json.dumps(PAYLOAD, separators=(",", ":")).encode()
JSON_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def events():
    for i in range(h2_events()):
        yield frame(i)


def starlette_app():
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    async def stream(request):
        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"cache-control": "no-cache"}
        )

    async def j(request):
        return JSONResponse(PAYLOAD)

    return Starlette(routes=[Route("/stream", stream), Route("/json", j)])


async def raw_app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        for i in range(h2_events()):
            await send({"type": "http.response.body", "body": frame(i), "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/json":
        await send({"type": "http.response.start", "status": 200, "headers": JSON_HEADERS})
        await send({"type": "http.response.body", "body": BODY})
    else:
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


variant = os.environ.get("BENCH_H2_APP", "starlette")
if variant == "starlette":
    app = starlette_app()
elif variant == "raw":
    app = raw_app
else:
    raise SystemExit(f"unknown BENCH_H2_APP {variant!r} (starlette, raw)")


def serve_hypercorn() -> None:
    import asyncio
    import signal

    import uvloop
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{HOST}:{port()}"]
    config.backlog = BACKLOG
    config.accesslog = None
    config.loglevel = "WARNING"
    # hypercorn closes a connection after 1000 requests by default (h2load does not reconnect).
    config.keep_alive_max_requests = 10**9
    stop = asyncio.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(app, config, shutdown_trigger=stop.wait, mode="asgi")

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(main())


def serve_granian() -> None:
    from pathlib import Path

    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.log import LogLevels

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    os.environ["PYTHONPATH"] = here + os.pathsep + os.environ.get("PYTHONPATH", "")
    Granian(
        "asgi_h2:app",
        address=HOST,
        port=port(),
        interface=Interfaces.ASGI,
        http=HTTPModes.http2,
        loop=Loops.uvloop,
        workers=1,
        backlog=BACKLOG,
        log_level=LogLevels.warning,
        log_access=False,
        working_dir=Path(here),
    ).serve()


if __name__ == "__main__":
    server = os.environ.get("BENCH_H2_SERVER", "hypercorn")
    if server == "hypercorn":
        serve_hypercorn()
    elif server == "granian":
        serve_granian()
    else:
        raise SystemExit(f"unknown BENCH_H2_SERVER {server!r} (hypercorn, granian)")
