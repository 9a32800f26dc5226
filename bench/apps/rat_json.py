"""rat_engine /json in variants (env BENCH_VARIANT): sync (plain def on the handler thread
pool, the default), inline (plain def, inline=True: on the event loop), async; typed (inline,
``q: str`` and ``limit: int`` read from the query string by their annotations)."""

import os

from _common import HOST, PAYLOAD, port
from rat_engine import RatApp

app = RatApp(name="bench")
variant = os.environ.get("BENCH_VARIANT", "sync")

if variant == "sync":

    @app.json("/json")
    def j(request_data):
        return dict(PAYLOAD)

elif variant == "inline":

    @app.json("/json", inline=True)
    def j(request_data):
        return dict(PAYLOAD)

elif variant == "async":

    @app.json("/json")
    async def j(request_data):
        return dict(PAYLOAD)

elif variant == "typed":

    @app.json("/json", inline=True)
    def j(request_data, q: str = "", limit: int = 10):
        return {"hello": q, "n": limit}

else:
    raise SystemExit(f"unknown BENCH_VARIANT {variant!r} (sync, inline, async, typed)")

if __name__ == "__main__":
    app.run(HOST, port(), log_level="warning", access_log=False)
