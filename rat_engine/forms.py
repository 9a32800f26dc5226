"""Parse ``application/x-www-form-urlencoded`` and ``multipart/form-data`` bodies.

Multipart parsing is done by python-multipart (the maintained parser Starlette uses); files
are written to spooled temporary files, so a large upload does not sit whole in memory.
"""

from __future__ import annotations

import tempfile
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

from .datastructures import QueryParams, UploadedFile, parse_query
from .exceptions import HTTPException

__all__ = ["FormData", "parse_form"]

#: Upload parts larger than this spill from memory to a temporary file.
SPOOL_MAX_SIZE = 1024 * 1024


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


def parse_form(content_type: str, body: bytes) -> FormData:
    """Parse a form body by its content type; anything else yields an empty form.

    Raises:
        HTTPException: 400 for a malformed multipart body.
    """
    media_type, options = parse_options_header(content_type)
    if media_type == b"application/x-www-form-urlencoded":
        return FormData(parse_query(body.decode("utf-8", errors="replace")), {})
    if media_type != b"multipart/form-data":
        return FormData(QueryParams(), {})
    boundary = options.get(b"boundary")
    if not boundary:
        raise HTTPException(400, "multipart body without a boundary")
    return _parse_multipart(boundary, body)


def _parse_multipart(boundary: bytes, body: bytes) -> FormData:
    fields: list[tuple[str, str]] = []
    files: dict[str, UploadedFile] = {}
    state: dict[str, Any] = {}

    def on_part_begin() -> None:
        state.update(headers={}, data=bytearray(), file=None, size=0)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header_field"] = state.get("header_field", b"") + data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["header_value"] = state.get("header_value", b"") + data[start:end]

    def on_header_end() -> None:
        name = state.pop("header_field", b"").decode("latin-1").lower()
        state["headers"][name] = state.pop("header_value", b"").decode("latin-1")

    def on_headers_finished() -> None:
        disposition, params = parse_options_header(state["headers"].get("content-disposition", ""))
        state["name"] = params.get(b"name", b"").decode("utf-8", errors="replace")
        filename = params.get(b"filename")
        if filename is not None:
            state["file"] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_SIZE)
            state["filename"] = filename.decode("utf-8", errors="replace")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        state["size"] += len(chunk)
        if state["file"] is not None:
            state["file"].write(chunk)
        else:
            state["data"] += chunk

    def on_part_end() -> None:
        name = state["name"]
        if state["file"] is None:
            fields.append((name, state["data"].decode("utf-8", errors="replace")))
            return
        handle = state["file"]
        handle.seek(0)
        files[name] = UploadedFile(
            field_name=name,
            filename=state["filename"],
            content_type=state["headers"].get("content-type", "application/octet-stream"),
            file=handle,
            size=state["size"],
            headers=dict(state["headers"]),
        )

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:
        for upload in files.values():
            upload.file.close()
        if state.get("file") is not None:
            state["file"].close()
        raise HTTPException(400, f"malformed multipart body: {exc}") from exc
    return FormData(QueryParams(fields), files)
