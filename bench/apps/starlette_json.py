"""Starlette JSONResponse on uvicorn (httptools + uvloop, no access log)."""

from _common import PAYLOAD
from _uvicorn import run
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def j(request):
    return JSONResponse(PAYLOAD)


app = Starlette(routes=[Route("/json", j)])

if __name__ == "__main__":
    run(app)
