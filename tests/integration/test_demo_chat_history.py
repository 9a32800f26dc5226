"""The demo's chat stream opens with the history the app keeps (issue 15, item 11), without a
browser: a client with no Last-Event-ID gets every kept message once, in order; a client that
reconnects with Last-Event-ID gets only what came after it. (The same in Chromium, with a
reload and a real EventSource reconnect: tests/browser/test_demo_site.py.)"""

from __future__ import annotations

import uuid
from typing import Any

from rat_engine.testing import TestClient


def chat_events(client: TestClient, until_id: str, last_event_id: str | None = None) -> list[tuple[str, Any]]:
    """(id, message) of the chat events the stream sends, up to the one with ``until_id``."""
    got: list[tuple[str, Any]] = []
    with client.sse("/api/chat/stream", last_event_id=last_event_id) as events:
        while not got or got[-1][0] != until_id:
            event = events.next_event(timeout=3)
            assert event.event == "chat", event
            assert event.id is not None
            got.append((event.id, event.json()))
    return got


def test_a_new_client_gets_the_history_and_a_reconnecting_one_only_what_it_missed() -> None:
    from rat_engine.demo import app

    tag = uuid.uuid4().hex[:8]
    texts = [f"{tag} {word}" for word in ("one", "two", "three")]
    with TestClient(app) as client:
        ids = []
        for text in texts:
            response = client.post("/api/chat", json={"name": "Ann", "text": text})
            assert response.status_code == 200, response.text
            ids.append(response.json()["id"])

        history = chat_events(client, ids[-1])  # a new tab: no Last-Event-ID
        assert [message["text"] for _, message in history][-3:] == texts
        assert [event_id for event_id, _ in history][-3:] == ids
        assert len({event_id for event_id, _ in history}) == len(history), "a message came twice"
        assert all(message["name"] for _, message in history)

        # EventSource reconnecting after the first of them: the two it missed, nothing older.
        resumed = chat_events(client, ids[-1], last_event_id=ids[0])
        assert [(event_id, message["text"]) for event_id, message in resumed] == list(
            zip(ids[1:], texts[1:], strict=True)
        )
