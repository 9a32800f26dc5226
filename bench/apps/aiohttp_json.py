"""aiohttp web.json_response on uvloop (as aiohttp's GunicornUVLoopWebWorker would), no access log."""

import asyncio

import uvloop
from _common import BACKLOG, HOST, PAYLOAD, port
from aiohttp import web


async def j(request):
    return web.json_response(PAYLOAD)


app = web.Application()
app.router.add_get("/json", j)

if __name__ == "__main__":
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(app, host=HOST, port=port(), access_log=None, backlog=BACKLOG, print=None)
