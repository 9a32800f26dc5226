"""Opt-in observability: Prometheus metrics and a live status page.

``app.enable_metrics("/metrics")`` serves the Prometheus text format:

* ``rat_requests_total{method,status}`` and ``rat_request_duration_seconds`` (histogram; streams
  are counted when they end but kept out of the latency histogram, where their minutes-long
  durations would drown every other request);
* ``rat_streams_open``, ``rat_thread_streams``, ``rat_streams_opened_total``,
  ``rat_streams_rejected_total``, ``rat_stream_events_sent_total``, ``rat_stream_bytes_sent_total``,
  ``rat_streams_closed_total{reason}`` (client, finished, shutdown, send_timeout, max_duration);
* ``rat_broadcast_published_total``, ``rat_broadcast_delivered_total``,
  ``rat_broadcast_dropped_total``, ``rat_broadcast_subscribers``.

``app.enable_status_page("/_status")`` serves a page listing open streams, events/s and
bytes/s, updated once a second over SSE. Both expose operational data: guard them (e.g. with a
``before_request`` hook) before enabling them on a public address.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from .sse.event import SSEEvent

if TYPE_CHECKING:
    from .app import RatApp

__all__ = ["Metrics", "install_metrics", "install_status_page"]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Request counters and a latency histogram, updated by the dispatcher."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.bucket_counts = [0] * (len(BUCKETS) + 1)
        self.duration_sum = 0.0
        self.duration_count = 0

    def observe(self, method: str, status: int, seconds: float, stream: bool) -> None:
        self.requests[(method, status)] += 1
        if not stream:
            self.bucket_counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.duration_sum += seconds
            self.duration_count += 1

    def render(self, app: RatApp) -> str:
        out: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(f"{name}{labels} {_number(value)}" for labels, value in samples)

        metric(
            "rat_requests_total",
            "counter",
            "HTTP requests by method and status (streams counted when they end).",
            [(f'{{method="{m}",status="{s}"}}', n) for (m, s), n in sorted(self.requests.items())],
        )
        cumulative = 0
        samples: list[tuple[str, float]] = []
        for bound, count in zip((*BUCKETS, float("inf")), self.bucket_counts, strict=True):
            cumulative += count
            label = "+Inf" if bound == float("inf") else repr(bound)
            samples.append((f'_bucket{{le="{label}"}}', cumulative))
        samples += [("_sum", self.duration_sum), ("_count", self.duration_count)]
        out.append("# HELP rat_request_duration_seconds Time to answer a non-streaming request.")
        out.append("# TYPE rat_request_duration_seconds histogram")
        out.extend(f"rat_request_duration_seconds{suffix} {_number(v)}" for suffix, v in samples)

        stats = app.connections.stats()
        metric("rat_streams_open", "gauge", "Streams open now.", [("", stats["open_streams"])])
        metric(
            "rat_thread_streams",
            "gauge",
            "Open streams running a sync generator on a thread.",
            [("", stats["thread_streams"])],
        )
        metric("rat_streams_opened_total", "counter", "Streams started.", [("", stats["opened_total"])])
        metric(
            "rat_streams_rejected_total",
            "counter",
            "Streams refused by a limit (503/429).",
            [("", stats["rejected_total"])],
        )
        metric(
            "rat_stream_events_sent_total",
            "counter",
            "Events written to streams.",
            [("", stats["events_sent_total"])],
        )
        metric(
            "rat_stream_bytes_sent_total",
            "counter",
            "Bytes written to streams.",
            [("", stats["bytes_sent_total"])],
        )
        metric(
            "rat_streams_closed_total",
            "counter",
            "Streams ended, by reason.",
            [(f'{{reason="{r}"}}', n) for r, n in sorted(stats["close_reasons"].items())],
        )
        broadcast = app.stats().get("broadcast")
        if broadcast is not None:
            metric(
                "rat_broadcast_published_total",
                "counter",
                "Messages published by this process.",
                [("", broadcast["published_total"])],
            )
            metric(
                "rat_broadcast_delivered_total",
                "counter",
                "Messages handed to local subscribers.",
                [("", broadcast["delivered_total"])],
            )
            metric(
                "rat_broadcast_dropped_total",
                "counter",
                "Messages dropped for slow subscribers.",
                [("", broadcast["dropped_total"])],
            )
            metric(
                "rat_broadcast_subscribers", "gauge", "Local subscriptions.", [("", broadcast["subscribers"])]
            )
        return "\n".join(out) + "\n"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def install_metrics(app: RatApp, path: str) -> Metrics:
    metrics = Metrics()

    def metrics_endpoint() -> tuple[str, str]:
        return metrics.render(app), "text/plain; version=0.0.4; charset=utf-8"

    app.add_route(path, metrics_endpoint, ("GET",), kind="custom", inline=True)
    return metrics


#: Open streams listed on the status page (the rest are counted, not listed).
_STATUS_STREAMS_SHOWN = 50


def install_status_page(app: RatApp, path: str) -> None:
    stream_path = path.rstrip("/") + "/stream"

    def status_page() -> str:
        return _STATUS_PAGE.replace("__STREAM__", stream_path)

    async def status_stream() -> Any:
        stats = app.stats()
        last = (time.monotonic(), stats["events_sent_total"], stats["bytes_sent_total"])
        while True:
            now = time.monotonic()
            stats = app.stats()
            events, nbytes = stats["events_sent_total"], stats["bytes_sent_total"]
            elapsed = max(now - last[0], 1e-6)
            snapshot = {
                **stats,
                "events_per_second": round((events - last[1]) / elapsed, 1),
                "bytes_per_second": round((nbytes - last[2]) / elapsed, 1),
                "streams": [s.as_dict() for s in app.connections.streams()[:_STATUS_STREAMS_SHOWN]],
            }
            last = (now, events, nbytes)
            yield SSEEvent(snapshot, event="status")
            await asyncio.sleep(1)

    app.add_route(path, status_page, ("GET",), kind="html", inline=True)
    app.add_route(stream_path, status_stream, ("GET",), kind="sse")


_STATUS_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>rat_engine status</title>
<style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse}
td,th{padding:.2rem .8rem;border-bottom:1px solid #eee;text-align:left}.num{text-align:right}
.cards span{display:inline-block;margin-right:2rem}.cards b{font-size:1.4rem}</style>
<h1>rat_engine status</h1>
<div class="cards"><span>open streams<br><b id="open">-</b></span><span>events/s<br><b id="eps">-</b></span>
<span>bytes/s<br><b id="bps">-</b></span><span>events sent<br><b id="events">-</b></span></div>
<h2>Open streams</h2>
<table><thead><tr><th>id</th><th>route</th><th>client</th><th>kind</th><th class="num">age s</th>
<th class="num">events</th><th class="num">bytes</th></tr></thead><tbody id="streams"></tbody></table>
<script>
const es = new EventSource('__STREAM__');
es.addEventListener('status', (e) => {
  const s = JSON.parse(e.data);
  document.getElementById('open').textContent = s.open_streams;
  document.getElementById('eps').textContent = s.events_per_second;
  document.getElementById('bps').textContent = s.bytes_per_second;
  document.getElementById('events').textContent = s.events_sent_total;
  const body = document.getElementById('streams');
  body.replaceChildren(...s.streams.map((st) => {
    const tr = document.createElement('tr');
    for (const [v, cls] of [[st.id], [st.route], [st.client], [st.kind], [st.age_seconds, 'num'],
                            [st.events_sent, 'num'], [st.bytes_sent, 'num']]) {
      const td = document.createElement('td'); td.textContent = v; if (cls) td.className = cls; tr.append(td);
    }
    return tr;
  }));
});
</script></html>"""
