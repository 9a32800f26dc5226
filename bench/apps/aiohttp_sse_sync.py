"""(Named aiohttp_sse_sync.py, not aiohttp_sse.py, which would shadow the aiohttp_sse package.)
aiohttp + aiohttp-sse over the same blocking sync generator, each next() run in the loop's
default executor (the documented way to call blocking code from asyncio). The default
executor has min(32, os.cpu_count() + 4) threads."""

import asyncio

import uvloop
from _common import BACKLOG, HOST, port, progress
from aiohttp import web
from aiohttp_sse import sse_response

_END = object()


async def progress_stream(request):
    gen = progress(request.match_info["session_id"])
    loop = asyncio.get_running_loop()
    async with sse_response(request) as resp:
        while True:
            item = await loop.run_in_executor(None, next, gen, _END)
            if item is _END:
                break
            await resp.send(item)
    return resp


app = web.Application()
app.router.add_get("/api/progress/{session_id}", progress_stream)

if __name__ == "__main__":
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(app, host=HOST, port=port(), access_log=None, backlog=BACKLOG, print=None)
