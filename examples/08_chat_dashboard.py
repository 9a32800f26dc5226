"""A chat room and a live dashboard that every open browser tab shares, on broadcast channels.

* ``POST /api/chat`` publishes to the ``chat`` channel; ``GET /api/chat/stream`` returns the
  subscription itself (the fast path: no thread, each message encoded once for all tabs).
  A tab that reconnects gets what it missed through ``Last-Event-ID``.
* A background task publishes server stats to ``dashboard`` once a second; its subscribers use
  the ``coalesce`` policy: a slow tab skips to the latest numbers instead of queueing old ones.

Run: python examples/08_chat_dashboard.py   and open http://localhost:8087/ in two tabs.
With several workers: RAT_BROADCAST_URL=redis://127.0.0.1:6379/0 rat-engine run examples.08_chat_dashboard:app --workers 2
"""
from __future__ import annotations

import asyncio
import os
import time

from rat_engine import HTTPException, RatApp

app = RatApp(name="chat_dashboard", broadcast_history=200)
_tasks: list[asyncio.Task] = []


@app.json("/api/chat", methods=["POST"])
async def post_message(request_data):
    message = request_data.json()
    name = str(message.get("name", "")).strip()[:40] or "anonymous"
    text = str(message.get("text", "")).strip()[:500]
    if not text:
        raise HTTPException(400, "empty message")
    message_id = await app.broadcast.apublish("chat", {"name": name, "text": text, "at": time.time()}, event="chat")
    return {"id": message_id}


@app.sse("/api/chat/stream")
def chat_stream(request_data):
    # A reconnect resumes after its Last-Event-ID; a new tab ("0") gets the kept history first.
    return app.broadcast.subscribe("chat", request_data["last_event_id"] or "0")


@app.sse("/api/dashboard/stream")
def dashboard_stream(request_data):
    return app.broadcast.subscribe("dashboard", policy="coalesce", max_backlog=4)


async def publish_stats() -> None:
    while True:
        stats = app.stats()
        await app.broadcast.apublish(
            "dashboard",
            {
                "time": time.strftime("%H:%M:%S"),
                "open_streams": stats["open_streams"],
                "events_sent": stats["events_sent_total"],
                "pid": os.getpid(),
            },
            event="stats",
        )
        await asyncio.sleep(1)


@app.on_startup
async def start_dashboard() -> None:
    _tasks.append(asyncio.get_running_loop().create_task(publish_stats()))


@app.on_shutdown
async def stop_dashboard() -> None:
    for task in _tasks:
        task.cancel()
    _tasks.clear()


PAGE = """<!doctype html><meta charset="utf-8"><title>chat + dashboard</title>
<style>body{font:16px system-ui;max-width:40rem;margin:2rem auto} #messages{border:1px solid #ccc;height:14rem;overflow:auto;padding:.5rem}
.stat{display:inline-block;margin-right:1.5rem}</style>
<h1>Chat</h1>
<div id="messages"></div>
<form id="form"><input id="name" placeholder="name" size="10"> <input id="text" placeholder="message" size="30"> <button>Send</button></form>
<h2>Dashboard</h2>
<div><span class="stat">time <b id="time">-</b></span><span class="stat">open streams <b id="open">-</b></span>
<span class="stat">events sent <b id="sent">-</b></span></div>
<script>
const chat = new EventSource('/api/chat/stream');
chat.addEventListener('chat', (e) => {
  const m = JSON.parse(e.data);
  const line = document.createElement('div');
  line.className = 'message';
  line.textContent = m.name + ': ' + m.text;
  document.getElementById('messages').append(line);
});
const dash = new EventSource('/api/dashboard/stream');
dash.addEventListener('stats', (e) => {
  const s = JSON.parse(e.data);
  document.getElementById('time').textContent = s.time;
  document.getElementById('open').textContent = s.open_streams;
  document.getElementById('sent').textContent = s.events_sent;
});
document.getElementById('form').onsubmit = async (e) => {
  e.preventDefault();
  const text = document.getElementById('text');
  await fetch('/api/chat', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({name: document.getElementById('name').value, text: text.value})});
  text.value = '';
};
</script>"""


@app.html("/")
def index(request_data):
    return PAGE



if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("RAT_PORT", 8087)))
