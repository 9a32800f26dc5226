"""The Python SSE clients people use most read rat_engine's keep-alives, ``retry:`` preamble and
shutdown farewell without phantom events: httpx-sse, and the openai SDK (whose decoder is a copy
of httpx-sse's) against an OpenAI-compatible ``/v1/chat/completions`` stream with event ids.

Before the fix, ``: ping\\n\\n`` after an ``id:`` reached httpx-sse as ``{"data": "", "id": "2"}``
and made ``openai``'s stream iterator raise ``JSONDecodeError``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse
from openai import APIError, OpenAI
from support.live import run_live

from rat_engine import RatApp, SSEEvent

TOKENS = ["Hel", "lo", ", ", "wor", "ld"]
PAUSE = 0.35  # between tokens: with ping_interval=0.1, pings fall between events that carry ids


def chunk(n: int, content: str | None, finish: str | None = None) -> dict[str, Any]:
    delta = {"content": content} if content is not None else {}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "rat-test",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def openai_error(exc: BaseException) -> Any:
    """The error shape OpenAI-compatible clients understand (docs/streaming.md, LLM recipe)."""
    return {"error": {"message": str(exc), "type": "server_error"}}


def build_app() -> RatApp:
    app = RatApp(name="openai_compatible", sse_retry=1500)

    @app.sse("/v1/chat/completions", methods=["POST"], ping_interval=0.1)
    async def completions(request_data: Any) -> AsyncIterator[Any]:
        body = request_data.json()
        assert body["stream"] is True
        for n, token in enumerate(TOKENS, 1):
            yield SSEEvent(chunk(n, token), id=n)
            await asyncio.sleep(PAUSE)
        yield SSEEvent(chunk(len(TOKENS) + 1, None, "stop"), id=len(TOKENS) + 1)
        yield "data: [DONE]\n\n"

    @app.sse("/v1/failing/chat/completions", methods=["POST"], on_error=openai_error)
    async def failing(request_data: Any) -> AsyncIterator[Any]:
        yield SSEEvent(chunk(1, "partial"), id=1)
        raise RuntimeError("the model backend went away")

    @app.sse("/forever", ping_interval=0.1)
    async def forever(request_data: Any) -> AsyncIterator[Any]:
        n = 0
        while True:
            n += 1
            yield SSEEvent({"n": n}, id=n)
            await asyncio.sleep(PAUSE)

    return app


@pytest.fixture(scope="module")
def server() -> Any:
    with run_live(build_app()) as handle:
        yield handle


def test_openai_sdk_streams_every_token_through_pings(server: Any) -> None:
    client = OpenAI(base_url=server.url + "/v1", api_key="not-needed", max_retries=0, timeout=20)
    stream = client.chat.completions.create(
        model="rat-test", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    contents, finishes = [], []
    for part in stream:  # a phantom empty event here raised JSONDecodeError
        assert part.choices, part
        contents.append(part.choices[0].delta.content)
        finishes.append(part.choices[0].finish_reason)
    assert [c for c in contents if c] == TOKENS
    assert finishes[-1] == "stop"


def test_openai_sdk_raises_on_an_error_mid_stream(server: Any) -> None:
    client = OpenAI(base_url=server.url + "/v1/failing", api_key="not-needed", max_retries=0, timeout=20)
    stream = client.chat.completions.create(
        model="rat-test", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    seen = []
    with pytest.raises(APIError, match="the model backend went away"):
        for part in stream:
            seen.append(part.choices[0].delta.content)
    assert seen == ["partial"]  # what came before the error still arrived


def test_httpx_sse_sees_no_empty_events(server: Any) -> None:
    with (
        httpx.Client(timeout=20) as client,
        connect_sse(client, "POST", server.url + "/v1/chat/completions", json={"stream": True}) as source,
    ):
        events = list(source.iter_sse())
    assert [e.data for e in events if not e.data] == []  # no phantom events
    assert [e.id for e in events[:-1]] == [str(n) for n in range(1, len(TOKENS) + 2)]
    assert events[-1].data == "[DONE]"
    assert events[0].retry == 1500  # the preamble joined the first event's block


def test_the_shutdown_farewell_is_no_event_either() -> None:
    app = build_app()
    events: list[Any] = []
    with run_live(app) as handle:
        done = threading.Event()

        def read() -> None:
            with (
                httpx.Client(timeout=20) as client,
                connect_sse(client, "GET", handle.url + "/forever") as source,
            ):
                try:
                    for event in source.iter_sse():
                        events.append(event)
                except httpx.HTTPError:
                    pass
            done.set()

        reader = threading.Thread(target=read)
        reader.start()
        deadline = time.monotonic() + 10
        while len(events) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        handle.stop()
        reader.join(15)
    assert done.is_set()
    assert len(events) >= 2
    assert all(json.loads(e.data)["n"] == i for i, e in enumerate(events, 1))  # nothing empty at the end
