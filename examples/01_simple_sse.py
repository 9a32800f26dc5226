"""Seed guide §基本用法 1: a simple SSE endpoint (verbatim), plus the lines that start it.

Run: python examples/01_simple_sse.py   then   curl -N http://localhost:8087/api/events
"""
from rat_engine import RatApp
import json
import time

app = RatApp(name="sse_demo")

@app.sse("/api/events")
def event_stream(request_data):
    """简单的事件流"""
    for i in range(10):
        yield json.dumps({
            'type': 'counter',
            'value': i,
            'timestamp': time.time()
        })
        time.sleep(1)


if __name__ == "__main__":
    import os

    app.run(host="127.0.0.1", port=int(os.environ.get("RAT_PORT", 8087)))
