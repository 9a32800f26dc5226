"""Helpers shared by the test tiers (plain functions and classes; the fixtures live in
``tests/conftest.py``). ``tests/`` is on ``sys.path`` (rootdir conftest), so import them as
``from support.net import wait_until``.

* :mod:`support.net` -- ports and polling: ``free_port``, ``port_open``, ``wait_for_port``, ``wait_until``.
* :mod:`support.live` -- real servers: ``run_live`` (in-process, background thread),
  ``live_subprocess`` / ``LiveProcess`` (a child process), ``run_example`` (an ``examples/`` script).
* :mod:`support.http` -- a raw-socket HTTP/1.1 client: ``RawResponse``, ``raw_http``, ``raw_request``,
  ``get``, ``fetch_json``, ``decode_chunked``.
* :mod:`support.sse` -- SSE clients: ``HttpSSE`` (httpx), ``RawSSE`` (blocking socket),
  ``AsyncSSE`` (asyncio), ``sse_data`` and ``parse_sse_body``.
* :mod:`support.broadcast` -- broadcast ids and Redis probes, and the multi-process broadcast app.
* :mod:`support.core_app` -- the core HTTP test app (routing, request_data, return values, files).
* :mod:`support.malformed` -- a small strict app and the hypothesis generator of malformed requests.
* :mod:`support.redis_server` -- ``RedisServer`` (a real ``redis-server`` process).
* :mod:`support.redis_sentinel` -- ``sentinel_setup`` (a primary, replicas and three sentinels,
  ready once the sentinels know each other and the replicas).
* :mod:`support.redis_cluster` -- ``cluster_setup`` (three primaries from ``redis-cli --cluster create``).
* :mod:`support.prereq` -- ``require_or_skip`` (skip, or fail under ``RAT_REQUIRE_ALL=1``).
* :mod:`support.browser` -- ``browser_page`` (headless Chromium through Playwright).
* :mod:`support.docs_site` -- ``build_site`` (``mkdocs build --strict``), ``serve_directory`` (static files).
* :mod:`support.tls` -- ``certificate`` (the development certificate), ``client_context``,
  ``tls_connect`` (ALPN), ``https_request`` (raw HTTP/1.1 over TLS).

Nothing here runs at import time except definitions.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
