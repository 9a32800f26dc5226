"""Which content coding a response gets: ``Accept-Encoding`` (RFC 9110 12.5.3) against what
is enabled and installed. Pure: strings in, a choice out."""

from __future__ import annotations

from collections.abc import Iterable

from .config import CompressionType

__all__ = ["choose_encoding", "parse_accept_encoding"]

_BY_TOKEN = {kind.value: kind for kind in CompressionType}


def parse_accept_encoding(header: str) -> dict[str, float]:
    """``"gzip;q=0.8, br, *;q=0"`` -> ``{"gzip": 0.8, "br": 1.0, "*": 0.0}`` (lower-cased;
    a malformed q-value counts as 0: an unreadable preference is not a yes)."""
    weights: dict[str, float] = {}
    for part in header.split(","):
        token, _, params = part.strip().partition(";")
        token = token.strip().lower()
        if not token:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
                if not 0.0 <= quality <= 1.0:
                    quality = 0.0
        weights[token] = max(quality, weights.get(token, 0.0)) if token in weights else quality
    return weights


def choose_encoding(
    accept_encoding: str | None,
    usable: Iterable[CompressionType],
    preference: Iterable[CompressionType],
) -> CompressionType | None:
    """The coding to use, or None for the body as it is (identity).

    The client's highest q-value wins; ties go to ``preference`` order. ``*`` stands for every
    coding the client did not name. No header at all means "no preference", which RFC 9110
    allows to be any coding; we send identity then, as browsers always send the header and
    a client without it (a script) may not decode.
    """
    if not accept_encoding:
        return None
    weights = parse_accept_encoding(accept_encoding)
    wildcard = weights.get("*", 0.0)
    usable_set = set(usable)
    best: CompressionType | None = None
    best_q = 0.0
    for kind in preference:
        if kind not in usable_set:
            continue
        q = weights.get(kind.value, wildcard)
        if q > best_q:
            best, best_q = kind, q
    return best
