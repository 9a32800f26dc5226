"""The uvicorn settings shared by the Starlette, FastAPI and raw-ASGI apps: the same ones
rat_engine's app.run() uses (httptools, uvloop, no access log, no server header)."""

import uvicorn
from _common import BACKLOG, HOST, port


def run(app) -> None:
    uvicorn.run(
        app,
        host=HOST,
        port=port(),
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
        server_header=False,
        backlog=BACKLOG,
        lifespan="off",
    )
