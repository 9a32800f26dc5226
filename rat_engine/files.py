"""Serve a file from disk in chunks, with conditional requests and single byte ranges.

* Content type by extension (``mimetypes``), overridable.
* ``ETag`` (size + mtime) and ``Last-Modified``; ``If-None-Match`` / ``If-Modified-Since`` give 304.
* ``Range: bytes=a-b`` / ``a-`` / ``-n`` gives 206 with ``Content-Range``; an unsatisfiable range
  gives 416. Several ranges at once are answered with the whole file (200), which RFC 9110
  allows; multipart/byteranges is rarely worth its complexity.
* Reads happen on a worker thread, 64 KiB at a time: the file never sits whole in memory.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import stat
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

from . import _json
from ._types import Receive, Scope, Send
from .exceptions import HTTPException
from .responses import Response

__all__ = ["FileResponse", "safe_join"]

CHUNK_SIZE = 64 * 1024


def safe_join(root: str | os.PathLike[str], relative: str) -> Path:
    """Resolve ``relative`` under ``root``; 404 if it escapes (``..``, absolute, symlink out)."""
    base = Path(root).resolve()
    if "\0" in relative:
        raise HTTPException(404)
    candidate = (base / relative.lstrip("/")).resolve()
    if candidate != base and base not in candidate.parents:
        raise HTTPException(404)
    return candidate


class FileResponse(Response):
    """Stream the file at ``path``.

    Args:
        path: The file. A missing file or a directory is a 404.
        media_type: Overrides the type guessed from the extension.
        filename: If given, sent as ``Content-Disposition: attachment``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        status: int = 200,
        headers: dict[str, str] | None = None,
        media_type: str | None = None,
        filename: str | None = None,
    ) -> None:
        super().__init__(b"", status, headers)
        self.path = os.fspath(path)
        try:
            self.stat = os.stat(self.path)
        except (OSError, ValueError):
            raise HTTPException(404, "file not found") from None
        if not stat.S_ISREG(self.stat.st_mode):
            raise HTTPException(404, "file not found")
        guessed, _ = mimetypes.guess_type(self.path)
        self.media_type = media_type or guessed or "application/octet-stream"
        if filename is not None:
            from urllib.parse import quote

            self.headers["content-disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
        self.etag = f'"{self.stat.st_size:x}-{int(self.stat.st_mtime_ns):x}"'
        self.headers.setdefault("etag", self.etag)
        self.headers.setdefault("last-modified", formatdate(self.stat.st_mtime, usegmt=True))
        self.headers.setdefault("accept-ranges", "bytes")

    def _not_modified(self, request_headers: dict[str, str]) -> bool:
        if_none_match = request_headers.get("if-none-match")
        if if_none_match is not None:
            tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            return "*" in tags or self.etag in tags
        if_modified_since = request_headers.get("if-modified-since")
        if if_modified_since:
            try:
                since = parsedate_to_datetime(if_modified_since).timestamp()
            except (TypeError, ValueError):
                return False
            return int(self.stat.st_mtime) <= since
        return False

    def _range(self, header: str | None, if_range: str | None) -> tuple[int, int] | None:
        """The (start, end-inclusive) to send, None for the whole file; 416 if unsatisfiable."""
        size = self.stat.st_size
        if not header or not header.startswith("bytes=") or "," in header:
            return None
        if if_range is not None and if_range.strip() != self.etag:
            return None
        first, _, last = header[6:].strip().partition("-")
        try:
            if first == "":
                length = int(last)
                if length <= 0:
                    raise ValueError
                start, end = max(0, size - length), size - 1
            else:
                start = int(first)
                end = int(last) if last else size - 1
        except ValueError:
            return None
        if start >= size or start > end or start < 0:
            raise HTTPException(416, "range not satisfiable", {"content-range": f"bytes */{size}"})
        return start, min(end, size - 1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.status_code == 200 and self._not_modified(request_headers):
            await Response(b"", 304, {"etag": self.etag})(scope, receive, send)
            return
        status, start, length = self.status_code, 0, self.stat.st_size
        if self.status_code == 200:
            try:
                selected = self._range(request_headers.get("range"), request_headers.get("if-range"))
            except HTTPException as exc:
                self.status_code = exc.status_code  # for the access log
                body = _json.dumps({"error": exc.detail, "status": exc.status_code})
                await Response(body, exc.status_code, exc.headers, "application/json")(scope, receive, send)
                return
            if selected is not None:
                start, end = selected
                status, length = 206, end - start + 1
                self.headers["content-range"] = f"bytes {start}-{end}/{self.stat.st_size}"
        await send({"type": "http.response.start", "status": status, "headers": self.render_headers(length)})
        if scope.get("method") == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        loop = asyncio.get_running_loop()
        with open(self.path, "rb") as handle:
            handle.seek(start)
            remaining = length
            while remaining > 0:
                chunk = await loop.run_in_executor(None, handle.read, min(CHUNK_SIZE, remaining))
                if not chunk:
                    break  # the file shrank under us; the client sees a short body
                remaining -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
                self.bytes_sent += len(chunk)
        if remaining > 0 or length == 0:
            await send({"type": "http.response.body", "body": b""})
