"""FastAPI StreamingResponse (text/event-stream) over the same blocking sync generator.
Starlette iterates a sync iterator with iterate_in_threadpool: one anyio worker thread per
next() call, and anyio's default limiter allows 40 at once."""

from _common import progress_frames
from _uvicorn import run
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

app = FastAPI()


@app.get("/api/progress/{session_id}")
async def progress_stream(session_id: str):
    return StreamingResponse(progress_frames(session_id), media_type="text/event-stream")


if __name__ == "__main__":
    run(app)
