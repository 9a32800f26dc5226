"""Upload a file with a real progress bar: the multipart body is streamed to disk and progress
is published on a broadcast channel as the bytes arrive (see examples/07_upload_channels.py)."""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from typing import Any

from .. import FileResponse, HTTPException, RatApp

SESSION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
UPLOAD_DIR = os.environ.get("RAT_DEMO_UPLOAD_DIR") or os.path.join(tempfile.gettempdir(), "rat_demo_uploads")
MAX_UPLOAD = 512 * 1024 * 1024


def _folder(session_id: str) -> str:
    if not SESSION.match(session_id):
        raise HTTPException(400, "invalid session id")
    return os.path.join(UPLOAD_DIR, session_id)


def register(app: RatApp) -> None:
    @app.sse("/api/uploads/<session_id>/progress")
    async def upload_progress(request_data: dict[str, Any], session_id: str) -> Any:
        _folder(session_id)
        subscription = app.broadcast.subscribe(
            f"upload:{session_id}",
            request_data["last_event_id"] or "0",
            policy="coalesce",
            coalesce_key=lambda message: message.data.get("type"),
        )
        yield {"type": "init", "session_id": session_id}
        async for message in subscription:
            yield message
            if isinstance(message.data, dict) and message.data.get("type") == "completed":
                return

    @app.json("/api/uploads/<session_id>", methods=["POST"], stream_body=True, max_body_size=MAX_UPLOAD)
    async def upload(request_data: Any, session_id: str) -> dict[str, Any]:
        folder = _folder(session_id)
        os.makedirs(folder, exist_ok=True)
        channel = f"upload:{session_id}"
        last = {"percent": -1, "at": 0.0}

        async def on_progress(received: int, total: int) -> None:
            percent = int(100 * received / total) if total else 0
            now = time.monotonic()
            if (percent != last["percent"] and now - last["at"] >= 0.05) or received == total:
                last.update(percent=percent, at=now)
                await app.broadcast.apublish(
                    channel, {"type": "progress", "progress": percent, "received": received}
                )

        form = await request_data.save_files(folder, on_progress)
        uploaded = form.files.get("file")
        if uploaded is None:
            raise HTTPException(400, 'no file field named "file"')
        meta = {
            "filename": os.path.basename(uploaded.filename) or "upload.bin",
            "content_type": uploaded.content_type,
            "file_size": uploaded.size,
            "path": uploaded.path,
        }
        with open(os.path.join(folder, "meta.json"), "w", encoding="utf-8") as handle:
            json.dump(meta, handle)
        done = {
            "type": "completed",
            "filename": meta["filename"],
            "file_size": meta["file_size"],
            "download_url": f"/api/uploads/{session_id}/download",
            "progress": 100,
        }
        await app.broadcast.apublish(channel, done)
        return done

    @app.file("/api/uploads/<session_id>/download")
    def download(request_data: dict[str, Any], session_id: str) -> FileResponse:
        try:
            with open(os.path.join(_folder(session_id), "meta.json"), encoding="utf-8") as handle:
                meta = json.load(handle)
        except FileNotFoundError:
            raise HTTPException(404, "no such upload") from None
        return FileResponse(meta["path"], media_type=meta["content_type"], filename=meta["filename"])
