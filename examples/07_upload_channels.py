"""The seed's upload-progress flow rebuilt on broadcast channels.

* The browser opens ``EventSource('/api/progress/<session>')`` and then POSTs the file.
* ``POST /api/upload/<session>`` streams the multipart body straight to disk
  (``stream_body=True`` + ``request_data.save_files``) and publishes progress to the channel
  ``upload:<session>`` as the bytes arrive, then a ``completed`` message with the download URL.
* ``GET /api/progress/<session>`` subscribes to that channel. Nothing is polled, and nothing
  lives in process memory: run it with several workers and Redis and the upload, the progress
  stream and the download may each be served by a different process:

      RAT_BROADCAST_URL=redis://127.0.0.1:6379/0 rat-engine run examples.07_upload_channels:app --workers 4

  (``python examples/07_upload_channels.py`` runs one process with the in-memory backend.)
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import time

from rat_engine import FileResponse, HTTPException, RatApp

app = RatApp(name="upload_channels")
UPLOAD_DIR = os.environ.get("RAT_UPLOAD_DIR") or os.path.join(tempfile.gettempdir(), "rat_uploads")
SESSION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def session_dir(session_id: str) -> str:
    if not SESSION.match(session_id):
        raise HTTPException(400, "invalid session id")
    return os.path.join(UPLOAD_DIR, session_id)


@app.sse("/api/progress/<session_id>")
async def progress_stream(request_data, session_id):
    session_dir(session_id)
    # "0" replays the channel from its start, so progress published before this subscription
    # registered is not lost; a reconnecting browser sends its own Last-Event-ID instead.
    subscription = app.broadcast.subscribe(
        f"upload:{session_id}",
        request_data["last_event_id"] or "0",
        policy="coalesce",  # a slow client gets the latest progress, not a backlog
        coalesce_key=lambda message: message.data.get("type"),
    )
    yield {"type": "init", "session_id": session_id}
    async for message in subscription:
        yield message
        if message.data.get("type") == "completed":
            return


@app.json("/api/upload/<session_id>", methods=["POST"], stream_body=True, max_body_size=2 * 1024**3)
async def upload(request_data, session_id):
    folder = session_dir(session_id)
    os.makedirs(folder, exist_ok=True)
    channel = f"upload:{session_id}"
    last = {"percent": -1, "at": 0.0}

    async def on_progress(received: int, total: int) -> None:
        percent = int(100 * received / total) if total else 0
        now = time.monotonic()
        # At most one message per percent and per 50 ms: enough for a smooth bar.
        if percent != last["percent"] and now - last["at"] >= 0.05 or received == total:
            last.update(percent=percent, at=now)
            await app.broadcast.apublish(channel, {"type": "progress", "progress": percent, "received": received})

    form = await request_data.save_files(folder, on_progress)
    upload = form.files.get("file")
    if upload is None:
        raise HTTPException(400, 'no file field named "file"')
    meta = {
        "filename": os.path.basename(upload.filename) or "upload.bin",
        "content_type": upload.content_type,
        "file_size": upload.size,
        "path": upload.path,
    }
    with open(os.path.join(folder, "meta.json"), "w", encoding="utf-8") as handle:
        json.dump(meta, handle)
    done = {
        "type": "completed",
        "session_id": session_id,
        "filename": meta["filename"],
        "file_size": meta["file_size"],
        "download_url": f"/api/download/{session_id}",
        "progress": 100,
    }
    await app.broadcast.apublish(channel, done)
    return done


@app.file("/api/download/<session_id>")
def download(request_data, session_id):
    try:
        with open(os.path.join(session_dir(session_id), "meta.json"), encoding="utf-8") as handle:
            meta = json.load(handle)
    except FileNotFoundError:
        raise HTTPException(404, "no such upload") from None
    return FileResponse(meta["path"], media_type=meta["content_type"], filename=meta["filename"])


PAGE = """<!doctype html><meta charset="utf-8"><title>upload</title>
<style>body{font:16px system-ui;margin:2rem} progress{width:20rem}</style>
<h1>Upload with live progress</h1>
<form id="form"><input type="file" id="file" name="file"> <button>Upload</button></form>
<p><progress id="bar" max="100" value="0"></progress> <span id="status">idle</span></p>
<p><a id="link"></a></p>
<script>
document.getElementById('form').onsubmit = (e) => {
  e.preventDefault();
  const file = document.getElementById('file').files[0];
  if (!file) return;
  const session = crypto.randomUUID().replaceAll('-', '');
  const es = new EventSource('/api/progress/' + session);
  es.onmessage = (event) => {
    const data = JSON.parse(event.data);
    if (data.type === 'init') {
      const body = new FormData(); body.append('file', file);
      fetch('/api/upload/' + session, {method: 'POST', body});
    } else if (data.type === 'progress') {
      document.getElementById('bar').value = data.progress;
      document.getElementById('status').textContent = data.progress + ' %';
    } else if (data.type === 'completed') {
      document.getElementById('bar').value = 100;
      document.getElementById('status').textContent = 'completed';
      const link = document.getElementById('link');
      link.href = data.download_url; link.textContent = 'download ' + data.filename;
      es.close();
    }
  };
};
</script>"""


@app.html("/")
def index(request_data):
    return PAGE


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("RAT_PORT", 8087)))
