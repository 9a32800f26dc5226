"""Flask streaming Response (text/event-stream) over the same blocking sync generator, on
gunicorn gthread with 1 worker and max(1000, clients of the run) threads: one thread per open
stream (BENCH_SSE_CLIENTS, set by run_bench.py)."""

from _common import progress_frames, sse_clients
from _gunicorn import run
from flask import Flask, Response

app = Flask(__name__)


@app.get("/api/progress/<session_id>")
def progress_stream(session_id):
    return Response(progress_frames(session_id), mimetype="text/event-stream")


if __name__ == "__main__":
    threads = max(1000, sse_clients())
    run(app, threads=threads, worker_connections=2 * threads)
