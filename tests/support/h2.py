"""HTTP/2 without a socket: rat_engine's protocol on a fake transport, the ``h2`` library as
the client.

    async with H2Pair(app) as pair:
        stream = pair.request("/sse")          # HEADERS (+ END_STREAM)
        await pair.settle()                    # let the application run
        events = pair.read()                   # h2 events the client received

The transport records what the server wrote and whether it closed; ``pair.client`` is a
client-side ``h2.connection.H2Connection``; :meth:`H2Pair.send` feeds its output to the server.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings

from rat_engine.server.protocol import RatHttpProtocol


class FakeTransport:
    """What the server's protocol needs of an asyncio transport, recording every write."""

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.data = bytearray()
        self.closed = False
        self.aborted = False
        self.reading_paused = False

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.data += data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.aborted = True
        self.close()

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Any:
        return self.protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)


class H2Pair:
    """rat_engine's protocol (switched to HTTP/2 by prior knowledge) and an h2 client."""

    def __init__(
        self,
        app: Any,
        *,
        client_settings: dict[int, int] | None = None,
        header_timeout: float = 10.0,
        keep_alive_timeout: float = 5.0,
        max_concurrent_streams: int = 128,
    ) -> None:
        self.app = app
        self.client_settings = client_settings or {}
        self.header_timeout = header_timeout
        self.keep_alive_timeout = keep_alive_timeout
        self.max_concurrent_streams = max_concurrent_streams
        self.client = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.server_state = SimpleNamespace(
            connections=set(), tasks=set(), default_headers=[], total_requests=0
        )
        self.transport: FakeTransport = None  # type: ignore[assignment]
        self.received: list[Any] = []

    async def __aenter__(self) -> H2Pair:
        config = SimpleNamespace(
            loaded=True,
            loaded_app=self.app,
            root_path="",
            timeout_keep_alive=self.keep_alive_timeout,
            limit_concurrency=None,
        )
        protocol_class = type(
            "RatHttpProtocol",
            (RatHttpProtocol,),
            {
                "h2c_enabled": True,
                "header_timeout": self.header_timeout,
                "h2_max_concurrent_streams": self.max_concurrent_streams,
            },
        )
        protocol = protocol_class(config, self.server_state, {}, asyncio.get_running_loop())
        self.transport = FakeTransport(protocol)
        protocol.connection_made(self.transport)
        self.client.initiate_connection()
        if self.client_settings:
            self.client.update_settings(self.client_settings)
        self.send()
        await self.settle()
        self.read()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if not self.transport.closed:
            self.transport.close()
        await self.settle()
        for task in list(self.server_state.tasks):
            task.cancel()
        await asyncio.sleep(0)

    @property
    def server(self) -> Any:
        """The protocol serving the connection now (HTTP/2 after the switch)."""
        return self.transport.protocol

    def send(self, data: bytes | None = None) -> None:
        """Feed the client's pending output (or ``data``) to the server."""
        data = self.client.data_to_send() if data is None else data
        if data and not self.transport.closed:
            self.transport.protocol.data_received(data)

    def request(
        self, path: str, method: str = "GET", body: bytes = b"", headers: list[tuple[str, str]] | None = None
    ) -> int:
        stream_id = self.client.get_next_available_stream_id()
        fields = [(":method", method), (":path", path), (":scheme", "http"), (":authority", "test")]
        fields += headers or []
        self.client.send_headers(stream_id, fields, end_stream=not body)
        if body:
            self.client.send_data(stream_id, body, end_stream=True)
        self.send()
        return stream_id

    def read(self, ack: bool = True) -> list[Any]:
        """Events from what the server wrote since the last read (its PINGs/SETTINGS acked;
        with ``ack``, the DATA too: the server's windows reopen, as a reading client's do)."""
        data = bytes(self.transport.data)
        self.transport.data.clear()
        events = self.client.receive_data(data) if data else []
        self.received += events
        if ack:
            for event in events:
                if isinstance(event, h2.events.DataReceived) and event.flow_controlled_length:
                    self.client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        self.send()
        return events

    async def settle(self, rounds: int = 20) -> None:
        for _ in range(rounds):
            await asyncio.sleep(0)

    def body(self, stream_id: int, events: list[Any] | None = None) -> bytes:
        """Bytes of DATA received on ``stream_id`` (acknowledged, so the server may send more)."""
        out = b""
        for event in self.received if events is None else events:
            if isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                out += event.data
        return out

    def ack(self, stream_id: int, events: list[Any]) -> None:
        """Hand back the window for the DATA in ``events`` on ``stream_id``."""
        for event in events:
            if isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                self.client.acknowledge_received_data(event.flow_controlled_length, stream_id)
        self.send()


def of_type(events: list[Any], kind: type) -> list[Any]:
    return [event for event in events if isinstance(event, kind)]


SETTINGS = h2.settings.SettingCodes
