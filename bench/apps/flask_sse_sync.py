"""Flask streaming Response (text/event-stream) over the same blocking sync generator, on
gunicorn gthread with 1 worker and 1000 threads: one thread per open stream."""

from _common import progress_frames
from _gunicorn import run
from flask import Flask, Response

app = Flask(__name__)


@app.get("/api/progress/<session_id>")
def progress_stream(session_id):
    return Response(progress_frames(session_id), mimetype="text/event-stream")


if __name__ == "__main__":
    run(app, threads=1000, worker_connections=2000)
