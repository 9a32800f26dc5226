"""``CompressionConfig``: which encodings, from what size, for which content.

RAT Engine's shape: keyword arguments (``CompressionConfig(min_size=1024, level=6,
enable_brotli=True, ...)``) and chainable builder methods named like them
(``CompressionConfig().min_size(1024).level(6).enable_gzip().disable_lz4()``). Why the values
are read through other names (``minimum_size``, ``compression_level``, ``encodings``): in Python
an attribute and a method cannot share a name, and the builder names are RAT's.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

__all__ = ["CompressionConfig", "CompressionType", "DEFAULT_EXCLUDED_TYPES", "DEFAULT_EXCLUDED_EXTENSIONS"]


class CompressionType(enum.StrEnum):
    """An HTTP content coding (the value is its ``Content-Encoding`` token)."""

    GZIP = "gzip"
    DEFLATE = "deflate"
    BROTLI = "br"
    ZSTD = "zstd"
    LZ4 = "lz4"


#: Content that is compressed already (compressing it again costs CPU and saves nothing).
DEFAULT_EXCLUDED_TYPES = (
    "image/",
    "video/",
    "audio/",
    "font/woff",
    "font/woff2",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/zstd",
    "application/x-7z-compressed",
    "application/x-rar-compressed",
    "application/x-bzip2",
    "application/x-xz",
    "application/pdf",
    "application/octet-stream",
    "application/wasm",
)
DEFAULT_EXCLUDED_EXTENSIONS = (
    "jpg", "jpeg", "png", "gif", "webp", "avif", "ico", "mp3", "mp4", "webm", "ogg",
    "zip", "gz", "tgz", "bz2", "xz", "zst", "br", "7z", "rar", "pdf", "woff", "woff2",
)  # fmt: skip


class CompressionConfig:
    """Response compression settings (see the module docstring for the two ways to build one).

    Args:
        min_size: Bodies smaller than this many bytes are sent as they are (streams are
            always compressed: their size is not known in advance).
        level: 1 (fastest) to 9 (smallest); mapped onto each codec's own scale.
        enable_gzip: Offer gzip.
        enable_deflate: Offer deflate.
        enable_brotli: Offer br (needs ``pip install 'rat_engine[compression]'``).
        enable_zstd: Offer zstd (needs ``pip install 'rat_engine[compression]'``).
        enable_lz4: Accepted for RAT Engine's API; lz4 has no HTTP content coding that
            browsers accept, so it is never used.
        excluded_content_types: Content types (or prefixes ending in ``/``) never compressed,
            added to the built-in list of already-compressed types.
        excluded_extensions: File extensions (without the dot) of request paths never compressed.
    """

    __slots__ = ("_min_size", "_level", "_enabled", "_excluded_types", "_excluded_extensions")

    def __init__(
        self,
        min_size: int = 1024,
        level: int = 6,
        enable_gzip: bool = True,
        enable_deflate: bool = True,
        enable_brotli: bool = True,
        enable_zstd: bool = True,
        enable_lz4: bool = False,
        excluded_content_types: Iterable[str] | None = None,
        excluded_extensions: Iterable[str] | None = None,
    ) -> None:
        self._min_size = 0
        self._level = 6
        self.min_size(min_size).level(level)
        flags = {
            CompressionType.GZIP: enable_gzip,
            CompressionType.DEFLATE: enable_deflate,
            CompressionType.BROTLI: enable_brotli,
            CompressionType.ZSTD: enable_zstd,
            CompressionType.LZ4: enable_lz4,
        }
        self._enabled = {kind for kind, on in flags.items() if on}
        self._excluded_types: tuple[str, ...] = DEFAULT_EXCLUDED_TYPES
        self._excluded_extensions: tuple[str, ...] = DEFAULT_EXCLUDED_EXTENSIONS
        self.exclude_content_types(excluded_content_types or ())
        self.exclude_extensions(excluded_extensions or ())

    # -- builder (RAT Engine's names; each returns the config) ----------------------------------
    def min_size(self, size: int) -> CompressionConfig:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"min_size must be an int >= 0, got {size!r}")
        self._min_size = size
        return self

    def level(self, level: int) -> CompressionConfig:
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 9:
            raise ValueError(f"level must be an int from 1 to 9, got {level!r}")
        self._level = level
        return self

    def _switch(self, kind: CompressionType, on: bool) -> CompressionConfig:
        (self._enabled.add if on else self._enabled.discard)(kind)
        return self

    def enable_gzip(self) -> CompressionConfig:
        return self._switch(CompressionType.GZIP, True)

    def disable_gzip(self) -> CompressionConfig:
        return self._switch(CompressionType.GZIP, False)

    def enable_deflate(self) -> CompressionConfig:
        return self._switch(CompressionType.DEFLATE, True)

    def disable_deflate(self) -> CompressionConfig:
        return self._switch(CompressionType.DEFLATE, False)

    def enable_brotli(self) -> CompressionConfig:
        return self._switch(CompressionType.BROTLI, True)

    def disable_brotli(self) -> CompressionConfig:
        return self._switch(CompressionType.BROTLI, False)

    def enable_zstd(self) -> CompressionConfig:
        return self._switch(CompressionType.ZSTD, True)

    def disable_zstd(self) -> CompressionConfig:
        return self._switch(CompressionType.ZSTD, False)

    def enable_lz4(self) -> CompressionConfig:
        return self._switch(CompressionType.LZ4, True)

    def disable_lz4(self) -> CompressionConfig:
        return self._switch(CompressionType.LZ4, False)

    def exclude_content_types(self, content_types: Iterable[str]) -> CompressionConfig:
        self._excluded_types += tuple(t.strip().lower() for t in content_types if t.strip())
        return self

    def exclude_extensions(self, extensions: Iterable[str]) -> CompressionConfig:
        self._excluded_extensions += tuple(e.strip().lower().lstrip(".") for e in extensions if e.strip())
        return self

    # -- reading -----------------------------------------------------------------------------------
    @property
    def minimum_size(self) -> int:
        return self._min_size

    @property
    def compression_level(self) -> int:
        return self._level

    @property
    def encodings(self) -> frozenset[CompressionType]:
        """The encodings switched on (whether installed or not)."""
        return frozenset(self._enabled)

    @property
    def excluded_content_types(self) -> tuple[str, ...]:
        return self._excluded_types

    @property
    def excluded_extensions(self) -> tuple[str, ...]:
        return self._excluded_extensions

    def excludes(self, content_type: str | None, path: str) -> bool:
        """True when a response of ``content_type`` for ``path`` must not be compressed."""
        if content_type:
            media = content_type.split(";", 1)[0].strip().lower()
            for excluded in self._excluded_types:
                if media == excluded or (excluded.endswith("/") and media.startswith(excluded)):
                    return True
        dot = path.rfind(".")
        if dot > path.rfind("/"):
            return path[dot + 1 :].lower() in self._excluded_extensions
        return False

    def __repr__(self) -> str:
        names = ", ".join(sorted(kind.value for kind in self._enabled))
        return f"CompressionConfig(min_size={self._min_size}, level={self._level}, encodings=[{names}])"
