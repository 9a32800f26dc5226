"""Parse ``application/x-www-form-urlencoded`` and ``multipart/form-data`` bodies.

Multipart parsing is done by python-multipart (the maintained parser Starlette uses), fed
incrementally by :class:`MultipartReader`. Where file parts go is a choice: spooled temporary
files for ``request_data.files()`` (in memory while small), or files on disk written as the
bytes arrive for ``request_data.save_files(directory)`` (uploads that never sit in memory).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable
from typing import IO, Any

from python_multipart.multipart import MultipartParser, parse_options_header

from .datastructures import QueryParams, UploadedFile, parse_query
from .exceptions import HTTPException

__all__ = ["FormData", "MultipartReader", "multipart_boundary", "parse_form"]

#: Upload parts larger than this spill from memory to a temporary file.
SPOOL_MAX_SIZE = 1024 * 1024

#: Opens the destination of a file part, given (field name, client filename).
FileFactory = Callable[[str, str], tuple[IO[bytes], str | None]]


def spooled_file(field_name: str, filename: str) -> tuple[IO[bytes], str | None]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_SIZE), None


def disk_file_in(directory: str) -> FileFactory:
    """File parts written to ``directory`` under a random name (never the client's filename)."""

    def open_file(field_name: str, filename: str) -> tuple[IO[bytes], str | None]:
        path = os.path.join(directory, uuid.uuid4().hex)
        return open(path, "wb"), path

    return open_file


class FormData:
    """Fields (``str`` values, last one wins in ``fields``; :meth:`QueryParams.getlist` for all) and files."""

    __slots__ = ("fields", "files")

    def __init__(self, fields: QueryParams, files: dict[str, UploadedFile]) -> None:
        self.fields = fields
        self.files = files

    def close(self) -> None:
        """Release the uploads' temporary files."""
        for upload in self.files.values():
            upload.file.close()


def multipart_boundary(content_type: str) -> bytes | None:
    """The boundary of a ``multipart/form-data`` content type; None for other types.

    Raises:
        HTTPException: 400 for multipart without a boundary.
    """
    media_type, options = parse_options_header(content_type)
    if media_type != b"multipart/form-data":
        return None
    boundary = options.get(b"boundary")
    if not boundary:
        raise HTTPException(400, "multipart body without a boundary")
    return bytes(boundary)


def parse_form(content_type: str, body: bytes) -> FormData:
    """Parse a whole form body by its content type; anything else yields an empty form.

    Raises:
        HTTPException: 400 for a malformed multipart body.
    """
    media_type, _ = parse_options_header(content_type)
    if media_type == b"application/x-www-form-urlencoded":
        return FormData(parse_query(body.decode("utf-8", errors="replace")), {})
    boundary = multipart_boundary(content_type)
    if boundary is None:
        return FormData(QueryParams(), {})
    reader = MultipartReader(boundary)
    reader.feed(body)
    return reader.finish()


class MultipartReader:
    """Incremental multipart parser: :meth:`feed` chunks as they arrive, then :meth:`finish`.

    Raises (from feed/finish):
        HTTPException: 400 for a malformed body; files opened so far are closed.
    """

    def __init__(self, boundary: bytes, open_file: FileFactory = spooled_file) -> None:
        self._open_file = open_file
        self._fields: list[tuple[str, str]] = []
        self._files: dict[str, UploadedFile] = {}
        self._part: dict[str, Any] = {}
        self._header_field = b""
        self._header_value = b""
        callbacks = {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
        }
        self._parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]

    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except Exception as exc:
            self._abort()
            raise HTTPException(400, f"malformed multipart body: {exc}") from exc

    def finish(self) -> FormData:
        try:
            self._parser.finalize()
        except Exception as exc:
            self._abort()
            raise HTTPException(400, f"malformed multipart body: {exc}") from exc
        return FormData(QueryParams(self._fields), self._files)

    def _abort(self) -> None:
        for upload in self._files.values():
            upload.file.close()
        handle = self._part.get("file")
        if handle is not None:
            handle.close()

    # -- parser callbacks ---------------------------------------------------------------------
    def _on_part_begin(self) -> None:
        self._part = {"headers": {}, "data": bytearray(), "file": None, "size": 0, "path": None}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        name = self._header_field.decode("latin-1").lower()
        self._part["headers"][name] = self._header_value.decode("latin-1")
        self._header_field = self._header_value = b""

    def _on_headers_finished(self) -> None:
        part = self._part
        _, params = parse_options_header(part["headers"].get("content-disposition", ""))
        part["name"] = params.get(b"name", b"").decode("utf-8", errors="replace")
        filename = params.get(b"filename")
        if filename is not None:
            part["filename"] = filename.decode("utf-8", errors="replace")
            part["file"], part["path"] = self._open_file(part["name"], part["filename"])

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        chunk = data[start:end]
        part["size"] += len(chunk)
        if part["file"] is not None:
            part["file"].write(chunk)
        else:
            part["data"] += chunk

    def _on_part_end(self) -> None:
        part = self._part
        name = part["name"]
        if part["file"] is None:
            self._fields.append((name, part["data"].decode("utf-8", errors="replace")))
            return
        handle = part["file"]
        if part["path"] is not None:
            handle.close()  # saved to disk: reopen for reading on demand
            handle = open(part["path"], "rb")  # noqa: SIM115 - owned by the UploadedFile
        else:
            handle.seek(0)
        self._files[name] = UploadedFile(
            field_name=name,
            filename=part["filename"],
            content_type=part["headers"].get("content-type", "application/octet-stream"),
            file=handle,
            size=part["size"],
            headers=dict(part["headers"]),
            path=part["path"],
        )
        part["file"] = None
