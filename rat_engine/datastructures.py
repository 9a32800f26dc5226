"""Case-insensitive headers, query parameters and uploaded files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import parse_qsl

__all__ = ["Headers", "QueryParams", "UploadedFile", "parse_query"]


class Headers(dict[str, str]):
    """A ``dict`` of headers whose keys are stored lower-case and looked up case-insensitively.

    It stays a real dict (``dict(headers)``, ``json.dumps(headers)`` work as with RAT Engine's
    plain dict); repeated request headers are joined with ``", "`` as RFC 9110 allows, and
    every received value stays available through :meth:`getlist`.
    """

    __slots__ = ("_multi",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        self._multi: dict[str, list[str]] | None = None
        if items is not None:
            pairs = items.items() if isinstance(items, Mapping) else items
            for key, value in pairs:
                self.add(key, value)

    @classmethod
    def from_asgi(cls, raw: Iterable[tuple[bytes, bytes]]) -> Headers:
        """Build from ASGI header pairs (names already lower-case per the ASGI spec)."""
        return cls.from_asgi_counted(raw)[0]

    @classmethod
    def from_asgi_counted(cls, raw: Iterable[tuple[bytes, bytes]]) -> tuple[Headers, int]:
        """:meth:`from_asgi`, and the pairs' size in bytes (names and values; PERF: counted in
        the same pass, for the request's header-size limit)."""
        headers = cls()
        setitem = dict.__setitem__
        size = count = 0
        for name, value in raw:
            size += len(name) + len(value)
            count += 1
            setitem(headers, name.decode("latin-1"), value.decode("latin-1"))
        if len(headers) != count:  # a repeated name: the slow path, which joins its values
            headers = cls()
            for name, value in raw:
                headers.add(name.decode("latin-1"), value.decode("latin-1"))
        return headers, size

    def add(self, key: str, value: str) -> None:
        """Append a value, keeping earlier ones (for repeated headers such as Set-Cookie)."""
        key = key.lower()
        existing = dict.get(self, key)
        if existing is None:
            dict.__setitem__(self, key, value)
            return
        if self._multi is None:
            self._multi = {}
        values = self._multi.setdefault(key, [existing])
        values.append(value)
        separator = "; " if key == "cookie" else ", "
        dict.__setitem__(self, key, existing + separator + value)

    def getlist(self, key: str) -> list[str]:
        key = key.lower()
        if self._multi is not None and key in self._multi:
            return list(self._multi[key])
        value = dict.get(self, key)
        return [] if value is None else [value]

    def raw_items(self) -> list[tuple[str, str]]:
        """Every (name, value) pair, repeated headers not joined."""
        out: list[tuple[str, str]] = []
        for key, value in dict.items(self):
            if self._multi is not None and key in self._multi:
                out.extend((key, v) for v in self._multi[key])
            else:
                out.append((key, value))
        return out

    def __getitem__(self, key: str) -> str:
        return dict.__getitem__(self, key.lower())

    def __setitem__(self, key: str, value: str) -> None:
        key = key.lower()
        if self._multi is not None:
            self._multi.pop(key, None)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        key = key.lower()
        if self._multi is not None:
            self._multi.pop(key, None)
        dict.__delitem__(self, key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and dict.__contains__(self, key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, key.lower(), default)

    def pop(self, key: str, *default: Any) -> Any:
        key = key.lower()
        if self._multi is not None:
            self._multi.pop(key, None)
        return dict.pop(self, key, *default)

    def setdefault(self, key: str, default: str = "") -> str:
        return dict.setdefault(self, key.lower(), default)

    def update(self, *args: Any, **kwargs: str) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def clear(self) -> None:
        self._multi = None
        dict.clear(self)

    def __ior__(self, other: Any) -> Headers:  # type: ignore[override,misc]
        self.update(other)
        return self

    def copy(self) -> Headers:
        clone = Headers()
        for key, value in self.raw_items():
            clone.add(key, value)
        return clone


class QueryParams(dict[str, str]):
    """Parsed query string: ``params["a"]`` is the last value, :meth:`getlist` gives all."""

    __slots__ = ("_lists",)

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._lists: dict[str, list[str]] = {}
        for key, value in pairs:
            self._lists.setdefault(key, []).append(value)
            dict.__setitem__(self, key, value)

    def getlist(self, key: str) -> list[str]:
        return list(self._lists.get(key, ()))


def parse_query(query_string: str) -> QueryParams:
    """Parse ``a=1&b=2&a=3``; blank values are kept; bad percent-escapes are left as text."""
    if not query_string:
        return QueryParams()
    return QueryParams(parse_qsl(query_string, keep_blank_values=True, errors="replace"))


@dataclass(slots=True)
class UploadedFile:
    """A file part of a ``multipart/form-data`` body.

    ``file`` is a spooled temporary file (kept in memory while small, on disk when large), or,
    for ``request_data.save_files(directory)``, the saved file itself (``path`` says where).
    ``data`` reads it whole, :meth:`save` copies it to a path in chunks.
    """

    field_name: str
    filename: str
    content_type: str
    file: IO[bytes]
    size: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    path: str | None = None

    @property
    def data(self) -> bytes:
        self.file.seek(0)
        return self.file.read()

    def save(self, path: str, chunk_size: int = 1 << 16) -> int:
        """Copy the upload to ``path``; returns the number of bytes written."""
        self.file.seek(0)
        written = 0
        with open(path, "wb") as out:
            while chunk := self.file.read(chunk_size):
                out.write(chunk)
                written += len(chunk)
        return written
