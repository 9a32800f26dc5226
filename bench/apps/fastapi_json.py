"""FastAPI route returning a dict, on uvicorn (httptools + uvloop, no access log).

BENCH_VARIANT=async (the default): ``async def``, run on the event loop.
BENCH_VARIANT=def: a plain ``def``, which FastAPI runs in its threadpool
(``anyio.to_thread.run_sync``, 40 tokens by default) for every request.
"""

import os

from _common import PAYLOAD
from _uvicorn import run
from fastapi import FastAPI

app = FastAPI()
variant = os.environ.get("BENCH_VARIANT", "async")

if variant == "async":

    @app.get("/json")
    async def j():
        return dict(PAYLOAD)

elif variant == "def":

    @app.get("/json")
    def j():
        return dict(PAYLOAD)

else:
    raise SystemExit(f"unknown BENCH_VARIANT {variant!r} (async, def)")


if __name__ == "__main__":
    run(app)
