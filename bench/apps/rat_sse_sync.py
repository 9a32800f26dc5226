"""rat_engine, seed style: @app.sse over a plain generator that blocks in time.sleep.
rat_engine drives each sync-generator stream on its own small thread (max_thread_streams)."""

from _common import HOST, port, progress
from rat_engine import RatApp

app = RatApp(name="bench_sse")


@app.sse("/api/progress/<session_id>")
def progress_stream(request_data, session_id):
    yield from progress(session_id)


if __name__ == "__main__":
    app.run(HOST, port(), log_level="warning", access_log=False, backlog=4096)
