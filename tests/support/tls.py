"""TLS for tests: a development certificate and an ``ssl`` client that offers ALPN protocols.

``certificate(directory)`` makes (or reuses) rat_engine's self-signed certificate for
``localhost``, ``127.0.0.1`` and ``::1`` in ``directory``; ``client_context(cafile, alpn)`` is a
verifying client context that trusts it; ``tls_connect`` returns the handshaken socket (its
``selected_alpn_protocol()`` says what the server chose); ``https_request`` sends raw HTTP/1.1
bytes over TLS and reads the response to EOF.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from . import HOST
from .http import RawResponse
from .prereq import require_or_skip

HOSTNAMES = ("localhost", "127.0.0.1", "::1")


def certificate(directory: Path, hostnames: Sequence[str] = HOSTNAMES) -> Any:
    """rat_engine's development certificate in ``directory`` (``.certfile``, ``.keyfile``).
    Skips (fails under ``RAT_REQUIRE_ALL=1``) without the ``cryptography`` package."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        require_or_skip("cryptography", "pip install 'rat_engine[tls]'")
    from rat_engine.server.tls import development_certificate

    return development_certificate(hostnames, directory)


def client_context(cafile: str | None, alpn: Sequence[str] = ("h2", "http/1.1")) -> ssl.SSLContext:
    """A client context that verifies the server against ``cafile`` (None: no verification)
    and offers ``alpn``."""
    if cafile is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=cafile)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


@contextlib.contextmanager
def tls_connect(
    port: int,
    cafile: str | None,
    alpn: Sequence[str] = ("h2", "http/1.1"),
    server_hostname: str = "localhost",
    timeout: float = 5.0,
) -> Iterator[ssl.SSLSocket]:
    """A TLS connection to 127.0.0.1:``port`` (handshake done), closed on exit."""
    context = client_context(cafile, alpn)
    with socket.create_connection((HOST, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=server_hostname) as sock:
            yield sock


def https_request(
    port: int,
    request: bytes,
    cafile: str | None,
    alpn: Sequence[str] = ("http/1.1",),
    server_hostname: str = "localhost",
    timeout: float = 5.0,
) -> tuple[RawResponse, str | None]:
    """Send ``request`` (raw HTTP/1.1 bytes; add ``Connection: close``) over TLS and read until
    the server closes; returns the response and the ALPN protocol the server selected."""
    start = time.monotonic()
    buf = b""
    closed = False
    with tls_connect(port, cafile, alpn, server_hostname, timeout) as sock:
        selected = sock.selected_alpn_protocol()
        sock.sendall(request)
        while True:
            try:
                data = sock.recv(65536)
            except (TimeoutError, ssl.SSLError, OSError):
                closed = True
                break
            if not data:
                closed = True
                break
            buf += data
    return RawResponse.parse(buf, closed, time.monotonic() - start), selected
