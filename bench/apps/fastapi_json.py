"""FastAPI ``async def`` route returning a dict, on uvicorn (httptools + uvloop, no access log)."""

from _common import PAYLOAD
from _uvicorn import run
from fastapi import FastAPI

app = FastAPI()


@app.get("/json")
async def j():
    return dict(PAYLOAD)


if __name__ == "__main__":
    run(app)
