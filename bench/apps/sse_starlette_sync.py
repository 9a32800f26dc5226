"""sse-starlette EventSourceResponse over the same blocking sync generator (on FastAPI +
uvicorn). It also iterates sync iterators with iterate_in_threadpool (anyio, 40 threads)."""

from _common import progress
from _uvicorn import run
from fastapi import FastAPI
from sse_starlette.sse import EventSourceResponse

app = FastAPI()


@app.get("/api/progress/{session_id}")
async def progress_stream(session_id: str):
    return EventSourceResponse(progress(session_id))


if __name__ == "__main__":
    run(app)
