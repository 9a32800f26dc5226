"""The floor for the S1 scenarios (fanout, fanout-10k, fanout-lone, latency) and S4 idle: a
hand-written asyncio Protocol on uvloop, no framework and no ASGI. GET /sub answers a bare
HTTP/1.1 head (``Connection: close``, body until close, no chunking) and keeps the transport; a
publisher frames each message once and calls ``transport.write(frame)`` for every subscriber.
What is left is the event loop, one write(2) per subscriber per message, and the kernel's
loopback TCP.

POST /start/<M>             M messages ``{"i": i}`` (sleep(0) every 4, like the peers), then
                            ``event: end``
POST /start_lone/<M>        fanout-lone: the same with sleep(0) after every message
GET /idle                   S4: the head and one event ``data: hi``, then nothing (the transport
                            is kept until the client closes)
POST /start_rate/<R>/<S>    R messages a second for S seconds, ``{"i": i, "t": time.time()}``
"""

import asyncio
import json
import time

import uvloop
from _common import BACKLOG, FANOUT_EVERY, HOST, LONE_EVERY, paced, port

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n"
END = b"event: end\ndata: END\n\n"
subscribers: set[asyncio.Transport] = set()
_tasks: set[asyncio.Task] = set()


def send_all(frame: bytes) -> None:
    for t in tuple(subscribers):
        t.write(frame)


async def publish(n: int, every: int) -> None:
    for i in range(n):
        send_all(b"data: " + json.dumps({"i": i}).encode() + b"\n\n")
        if i % every == 0:
            await asyncio.sleep(0)
    send_all(END)


async def publish_rate(rate: int, seconds: int) -> None:
    async for i in paced(rate, seconds):
        send_all(b"data: " + json.dumps({"i": i, "t": time.time()}).encode() + b"\n\n")
    send_all(END)


def respond(transport: asyncio.Transport, status: str, body: bytes) -> None:
    transport.write(
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n".encode()
        + body
    )
    transport.close()


class Proto(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        if self.buf is None:  # a subscriber: whatever it sends is ignored
            return
        self.buf += data
        if b"\r\n\r\n" not in self.buf:
            return
        method, path = self.buf.split(b"\r\n", 1)[0].split(b" ")[:2]
        self.buf = None
        parts = path.decode().strip("/").split("/")
        if method == b"GET" and path == b"/sub":
            self.transport.write(HEAD)
            subscribers.add(self.transport)
            return
        if method == b"GET" and path == b"/idle":
            self.transport.write(HEAD + b"data: hi\n\n")
            return
        if method == b"POST" and parts[0] == "start" and len(parts) == 2:
            coro = publish(int(parts[1]), FANOUT_EVERY)
        elif method == b"POST" and parts[0] == "start_lone" and len(parts) == 2:
            coro = publish(int(parts[1]), LONE_EVERY)
        elif method == b"POST" and parts[0] == "start_rate" and len(parts) == 3:
            coro = publish_rate(int(parts[1]), int(parts[2]))
        else:
            respond(self.transport, "404 Not Found", b"")
            return
        task = asyncio.get_running_loop().create_task(coro)
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
        respond(self.transport, "200 OK", json.dumps({"ok": True, "subscribers": len(subscribers)}).encode())

    def connection_lost(self, exc):
        subscribers.discard(self.transport)


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Proto, HOST, port(), backlog=BACKLOG)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main())
