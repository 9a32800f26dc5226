"""Opt-in observability: Prometheus metrics and a live status page.

``app.enable_metrics("/metrics")`` serves the Prometheus text format:

* ``rat_requests_total{method,status}`` and ``rat_request_duration_seconds`` (histogram; streams
  are counted when they end but kept out of the latency histogram, where their minutes-long
  durations would drown every other request);
* ``rat_streams_open``, ``rat_thread_streams``, ``rat_streams_opened_total``,
  ``rat_streams_rejected_total``, ``rat_stream_events_sent_total``, ``rat_stream_bytes_sent_total``,
  ``rat_streams_closed_total{reason}`` (client, finished, shutdown, send_timeout, max_duration);
* ``rat_broadcast_published_total``, ``rat_broadcast_delivered_total``,
  ``rat_broadcast_dropped_total``, ``rat_broadcast_subscribers``,
  ``rat_broadcast_publish_failures_total``; with Redis also ``rat_broadcast_primary{node}``
  (the primary in use), ``rat_broadcast_reconnects_total``, ``rat_broadcast_failovers_total``
  and ``rat_broadcast_last_interruption_seconds``.

``app.enable_status_page("/_status")`` serves a page listing open streams, events/s and
bytes/s, updated once a second over SSE, with charts of the last five minutes per route (inline
SVG drawn by the page, no dependency). Both expose operational data: guard them (e.g. with a
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
            _broker_metrics(metric, broadcast)
        return "\n".join(out) + "\n"


def _broker_metrics(metric: Any, broadcast: dict[str, Any]) -> None:
    """Publish failures, and for a Redis backend its primary, reconnects and failovers."""
    metric(
        "rat_broadcast_publish_failures_total",
        "counter",
        "Publishes refused because the broker was unavailable (or, with durability=replicated, "
        "no replica confirmed them).",
        [("", broadcast.get("publish_failures_total", 0))],
    )
    if "failovers_total" not in broadcast:
        return
    node = str(broadcast.get("node") or "").replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    metric(
        "rat_broadcast_primary",
        "gauge",
        "The broker node in use (its node label).",
        [(f'{{node="{node}"}}', 1)],
    )
    metric(
        "rat_broadcast_reconnects_total",
        "counter",
        "Times the live connection to the broker came back after it was lost.",
        [("", broadcast["reconnects_total"])],
    )
    metric(
        "rat_broadcast_failovers_total",
        "counter",
        "Reconnects that found another primary.",
        [("", broadcast["failovers_total"])],
    )
    if broadcast.get("last_interruption_seconds") is not None:
        metric(
            "rat_broadcast_last_interruption_seconds",
            "gauge",
            "How long live delivery stopped at the last reconnect or failover.",
            [("", round(broadcast["last_interruption_seconds"], 3))],
        )


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


def install_status_page(app: RatApp, path: str, *, header: str = "") -> None:
    """Serve the status page at ``path`` and its SSE feed at ``path/stream``.

    ``header`` is HTML put at the top of the page's body instead of its own title bar: a site's
    header and navigation (and the site's stylesheet) when the page is part of a site.
    """
    stream_path = path.rstrip("/") + "/stream"
    page = _STATUS_PAGE.replace("__STREAM__", stream_path).replace("__HEADER__", header or _STATUS_HEADER, 1)

    def status_page() -> str:
        return page

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


#: The page's own title bar, replaced by ``install_status_page(..., header=...)``.
_STATUS_HEADER = '<header class="status-bar"><span class="brand">rat_engine</span> status</header>'

# The page draws its charts itself (inline SVG, no library): each status event is one sample;
# the last five minutes of samples are kept in the page. Per route: open streams are counted
# from the listed streams, rates from the growth of their counters between two samples; what
# the listed streams do not explain (streams that closed in between, streams past the listed
# ones) is drawn as "other", so each stack adds up to the app's own total.
_STATUS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rat_engine status</title>
<style>
:root{--ink:#1f2328;--muted:#656d76;--line:#d8dee4;--accent:#1a7f64;--bg:#f6f8fa}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:var(--ink)}
.status-bar{background:var(--ink);color:#d0d7de;padding:.7rem 1.5rem}
.status-bar .brand{font-weight:700;color:#fff;font-size:1.1rem}
main{max-width:60rem;margin:1.5rem auto;padding:0 1.5rem}
h1{margin:.2rem 0 .3rem;line-height:1.25}
.lead{color:var(--muted);margin-top:0}
.live{display:inline-block;font-size:.85rem;font-weight:600;border-radius:999px;padding:0 .6rem;
  background:#eaeef2;color:var(--muted);vertical-align:middle}
.live.on{background:#dafbe1;color:#116329}
.live.off{background:#ffebe9;color:#b42318}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(17rem,1fr));gap:1rem;margin:1rem 0}
.chart{border:1px solid var(--line);border-radius:10px;padding:.8rem 1rem;margin:0;min-width:0}
.chart h2{font-size:1rem;margin:0;font-weight:600;color:var(--muted);display:flex;flex-wrap:wrap;
  justify-content:space-between;align-items:baseline;gap:0 .5rem}
.chart .now{font-size:1.6rem;font-weight:700;color:var(--ink);line-height:1.3;font-variant-numeric:tabular-nums}
.plot{position:relative;margin-top:.3rem}
.plot svg{display:block;width:100%;height:120px;background:var(--bg);border-radius:6px}
.plot .ymax{position:absolute;top:3px;left:5px;font-size:.75rem;color:var(--muted);
  background:rgba(246,248,250,.85);border-radius:3px;padding:0 .25rem;line-height:1.4}
.plot .empty{position:absolute;inset:0;display:flex;align-items:center;justify-content:center;
  color:var(--muted);font-size:.85rem}
.plot .empty[hidden]{display:none}
.axis{display:flex;justify-content:space-between;color:var(--muted);font-size:.75rem}
.legend{list-style:none;padding:0;margin:.4rem 0 0;font-size:.85rem}
.legend li{display:flex;gap:.4rem;align-items:center;min-width:0}
.legend i{width:.75rem;height:.75rem;border-radius:2px;flex:none}
.legend span{flex:1;min-width:0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.legend b{font-weight:600;font-variant-numeric:tabular-nums}
.totals{display:flex;flex-wrap:wrap;gap:.3rem 2rem;color:var(--muted)}
.totals b{color:var(--ink);font-variant-numeric:tabular-nums}
.totals[hidden]{display:none}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.92rem}
td,th{padding:.25rem .7rem;border-bottom:1px solid #eee;text-align:left;white-space:nowrap}
.num{text-align:right;font-variant-numeric:tabular-nums}
@media (max-width:40rem){main{padding:0 1rem}.status-bar{padding:.6rem 1rem}}
</style></head>
<body>
__HEADER__
<main>
<h1>Status <span class="live" id="live">connecting…</span></h1>
<p class="lead">Streams of this process, sampled every second over SSE; the charts keep the last
five minutes, split by route.</p>
<div class="charts">
<section class="chart" id="chart-open"><h2>Open streams <b class="now" id="open">-</b></h2>
<div class="plot"><svg viewBox="0 0 600 120" preserveAspectRatio="none" role="img"></svg>
<span class="ymax"></span><span class="empty">waiting for data…</span></div>
<div class="axis"><span class="from"></span><span>now</span></div><ul class="legend"></ul></section>
<section class="chart" id="chart-eps"><h2>Events / s <b class="now" id="eps">-</b></h2>
<div class="plot"><svg viewBox="0 0 600 120" preserveAspectRatio="none" role="img"></svg>
<span class="ymax"></span><span class="empty">waiting for data…</span></div>
<div class="axis"><span class="from"></span><span>now</span></div><ul class="legend"></ul></section>
<section class="chart" id="chart-bps"><h2>Bytes / s <b class="now" id="bps">-</b></h2>
<div class="plot"><svg viewBox="0 0 600 120" preserveAspectRatio="none" role="img"></svg>
<span class="ymax"></span><span class="empty">waiting for data…</span></div>
<div class="axis"><span class="from"></span><span>now</span></div><ul class="legend"></ul></section>
</div>
<p class="totals"><span>events sent <b id="events">-</b></span><span>bytes sent <b id="bytes">-</b></span>
<span>streams opened <b id="opened">-</b></span><span>refused <b id="rejected">-</b></span>
<span>closed <b id="closed">-</b></span></p>
<p class="totals" id="broker" hidden><span>broker <b id="broker-node">-</b></span>
<span>reconnects <b id="broker-reconnects">-</b></span><span>failovers <b id="broker-failovers">-</b></span>
<span>publish failures <b id="broker-failures">-</b></span></p>
<h2>Open streams</h2>
<div class="scroll"><table><thead><tr><th>id</th><th>route</th><th>client</th><th>kind</th>
<th class="num">age s</th><th class="num">events</th><th class="num">bytes</th></tr></thead>
<tbody id="streams"></tbody></table></div>
<p class="muted" id="more"></p>
</main>
<script>
const es = new EventSource('__STREAM__');
const KEEP_MS = 300000;
const WINDOWS = [30, 60, 120, 300];
const TOP_ROUTES = 6;
const OTHER = 'other';
const PALETTE = ['#1a7f64', '#0969da', '#bf3989', '#bc4c00', '#8250df', '#1b7c83', '#9a6700', '#cf222e'];
const SVG = 'http://www.w3.org/2000/svg';
const W = 600, H = 120;
const colors = new Map([[OTHER, '#afb8c1']]);
const colorOf = (route) => {
  if (!colors.has(route)) colors.set(route, PALETTE[(colors.size - 1) % PALETTE.length]);
  return colors.get(route);
};
const unit = (value, units) => {
  let i = 0;
  while (value >= 1000 && i < units.length - 1) { value /= 1000; i += 1; }
  return (i && value < 10 ? value.toFixed(1) : String(Math.round(value))) + units[i];
};
const fmtCount = (v) => String(Math.round(v));
const fmtRate = (v) => v >= 100 ? unit(v, ['', 'k', 'M']) : String(Math.round(v * 10) / 10);
const fmtBytes = (v) => unit(v, [' B', ' kB', ' MB', ' GB']);
const CHARTS = [
  {key: 'open', id: 'chart-open', label: 'open streams', format: fmtCount},
  {key: 'eps', id: 'chart-eps', label: 'events per second', format: fmtRate},
  {key: 'bps', id: 'chart-bps', label: 'bytes per second', format: fmtBytes},
];
let samples = [];
let previous = null;

const niceMax = (value) => {
  if (value <= 1) return 1;
  const step = Math.pow(10, Math.floor(Math.log10(value)));
  for (const m of [1, 2, 2.5, 5, 10]) if (value <= m * step) return m * step;
  return 10 * step;
};
const spanLabel = (seconds) => seconds < 60 ? seconds + ' s' : seconds / 60 + ' min';
const el = (name, attrs) => {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
};
const text = (id, value) => { document.getElementById(id).textContent = value; };

function sample(s, now) {
  const dt = previous ? Math.max((now - previous.t) / 1000, 0.2) : null;
  const restarted = previous !== null && s.events_sent_total < previous.events;
  const routes = new Map();
  const seen = new Map();
  for (const st of s.streams) {
    seen.set(st.id, st);
    if (!routes.has(st.route)) routes.set(st.route, {open: 0, eps: 0, bps: 0});
    const r = routes.get(st.route);
    r.open += 1;
    if (dt === null || restarted) continue;
    const before = previous.streams.get(st.id) || (st.age_seconds <= dt + 1 ? {events_sent: 0, bytes_sent: 0} : null);
    if (before === null) continue;
    r.eps += Math.max(0, st.events_sent - before.events_sent) / dt;
    r.bps += Math.max(0, st.bytes_sent - before.bytes_sent) / dt;
  }
  const rates = dt !== null && !restarted;
  previous = {t: now, streams: seen, events: s.events_sent_total};
  return {t: now, open: s.open_streams, routes,
          eps: rates ? s.events_per_second : null, bps: rates ? s.bytes_per_second : null};
}

function drawChart(chart, span, now) {
  const box = document.getElementById(chart.id);
  const svg = box.querySelector('svg');
  const points = samples.filter((x) => x[chart.key] !== null);
  const sums = new Map();
  for (const x of points) for (const [route, r] of x.routes) sums.set(route, (sums.get(route) || 0) + r[chart.key]);
  const top = [...sums].filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]).slice(0, TOP_ROUTES).map(([r]) => r);
  // values[j][i]: series i (the top routes, then "other") at sample j; stacked bottom to top.
  const values = points.map((x) => {
    const row = top.map((route) => (x.routes.get(route) || {})[chart.key] || 0);
    row.push(Math.max(0, x[chart.key] - row.reduce((a, b) => a + b, 0)));
    return row;
  });
  const series = [...top, OTHER].filter((route, i) => i < top.length || values.some((row) => row[i] > 0));
  const stacks = values.map((row) => { let level = 0; return row.map((v) => (level += v)); });
  const peak = Math.max(0, ...stacks.map((levels) => levels[levels.length - 1]));
  const max = niceMax(peak);
  const X = (t) => (W - (now - t) / span * W).toFixed(1);
  const Y = (v) => (H - v / max * (H - 6)).toFixed(1);
  svg.replaceChildren(el('line', {x1: 0, x2: W, y1: H / 2, y2: H / 2, stroke: '#d8dee4',
                                   'stroke-dasharray': '4 4', 'vector-effect': 'non-scaling-stroke'}));
  if (points.length >= 2) {
    series.forEach((route, i) => {
      const upper = stacks.map((levels, j) => X(points[j].t) + ',' + Y(levels[i]));
      const lower = stacks.map((levels, j) => X(points[j].t) + ',' + Y(i ? levels[i - 1] : 0)).reverse();
      const area = el('polygon', {points: upper.concat(lower).join(' '), fill: colorOf(route), 'fill-opacity': 0.8});
      area.dataset.route = route;
      svg.append(area);
    });
    const outline = stacks.map((levels, j) => X(points[j].t) + ',' + Y(levels[levels.length - 1]));
    svg.append(el('polyline', {points: outline.join(' '), fill: 'none', stroke: '#1f2328', 'stroke-width': 1.5,
                               class: 'total', 'vector-effect': 'non-scaling-stroke'}));
  }
  const last = values[values.length - 1];
  svg.dataset.samples = points.length;
  svg.dataset.max = peak;
  svg.dataset.routes = top.join(' ');
  svg.setAttribute('aria-label', chart.label + ', last ' + spanLabel(span / 1000)
                   + (last ? ', now ' + chart.format(points[points.length - 1][chart.key]) : ''));
  box.querySelector('.empty').hidden = points.length >= 2;
  box.querySelector('.ymax').textContent = points.length >= 2 ? chart.format(max) : '';
  box.querySelector('.from').textContent = '−' + spanLabel(span / 1000);
  box.querySelector('.legend').replaceChildren(...series.map((route) => {
    const li = document.createElement('li');
    const swatch = document.createElement('i');
    swatch.style.background = colorOf(route);
    const name = document.createElement('span');
    name.textContent = route;
    name.title = route === OTHER ? 'other routes, streams not listed, streams closed since the last sample' : route;
    const value = document.createElement('b');
    value.textContent = last ? chart.format(route === OTHER ? last[top.length] : last[top.indexOf(route)]) : '';
    li.append(swatch, name, value);
    return li;
  }));
}

function draw() {
  const now = Date.now();
  const age = samples.length ? (now - samples[0].t) / 1000 : 0;
  const span = (WINDOWS.find((w) => w >= age) || WINDOWS[WINDOWS.length - 1]) * 1000;
  for (const chart of CHARTS) drawChart(chart, span, now);
}

es.addEventListener('status', (e) => {
  const s = JSON.parse(e.data);
  const now = Date.now();
  samples.push(sample(s, now));
  samples = samples.filter((x) => now - x.t <= KEEP_MS);
  text('open', s.open_streams);
  text('eps', s.events_per_second);
  text('bps', fmtBytes(s.bytes_per_second));
  text('events', s.events_sent_total);
  text('bytes', fmtBytes(s.bytes_sent_total));
  text('opened', s.opened_total);
  text('rejected', s.rejected_total);
  text('closed', Object.entries(s.close_reasons).map(([k, v]) => k + ' ' + v).join(', ') || '0');
  const broker = s.broadcast && 'failovers_total' in s.broadcast ? s.broadcast : null;
  document.getElementById('broker').hidden = broker === null;
  if (broker) {
    text('broker-node', broker.node || 'not connected');
    text('broker-reconnects', broker.reconnects_total);
    text('broker-failovers', broker.failovers_total);
    text('broker-failures', broker.publish_failures_total);
  }
  const body = document.getElementById('streams');
  body.replaceChildren(...s.streams.map((st) => {
    const tr = document.createElement('tr');
    for (const [v, cls] of [[st.id], [st.route], [st.client], [st.kind], [st.age_seconds, 'num'],
                            [st.events_sent, 'num'], [st.bytes_sent, 'num']]) {
      const td = document.createElement('td'); td.textContent = v; if (cls) td.className = cls; tr.append(td);
    }
    return tr;
  }));
  text('more', s.open_streams > s.streams.length ? (s.open_streams - s.streams.length) + ' more open streams not listed' : '');
  draw();
});
es.onopen = () => { const live = document.getElementById('live'); live.textContent = 'live'; live.className = 'live on'; };
es.onerror = () => { const live = document.getElementById('live'); live.textContent = 'reconnecting…'; live.className = 'live off'; };
</script>
</body></html>"""
