"""rat_engine, the h2 scenario (bench/run --scenario h2): HTTP/2 over cleartext (h2c, prior
knowledge), ``app.run(..., h2c=True)``.

/stream  ``@app.sse`` async generator: BENCH_H2_EVENTS x ``yield {"i": i, "v": "hello"}``
         (on the wire ``data: {"i":0,"v":"hello"}\\n\\n``, the peers' asgi_h2.py sends the same bytes)
/json    ``@app.json`` ``async def`` returning ``{"hello": "world", "n": 1}``
"""

import os

from _common import BACKLOG, HOST, PAYLOAD, port
from rat_engine import RatApp

app = RatApp(name="bench_h2", max_streams=20_000)


def h2_events() -> int:
    return int(os.environ.get("BENCH_H2_EVENTS", "1000"))


@app.sse("/stream")
async def stream(request_data):
    for i in range(h2_events()):
        yield {"i": i, "v": "hello"}


@app.json("/json")
async def j(request_data):
    return dict(PAYLOAD)


if __name__ == "__main__":
    app.run(HOST, port(), log_level="warning", access_log=False, backlog=BACKLOG, h2c=True)
