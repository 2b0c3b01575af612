/**
 * The status page at the admin listener's `/`: one self-contained HTML document (inline CSS and
 * script, no external assets; its Content-Security-Policy forbids them) that polls
 * `/status.json` every 2 s and shows what `sidecache report` shows: requests, hit ratio, time
 * saved by kind and by route, origins with their latency and connection reuse, advice, the policy
 * advisor's suggestions (src/advisor/), and two
 * small SVG charts (time saved per second and hit ratio) over the last 5 minutes, kept in the page.
 *
 * `/status.json` is the summary of one scrape of this instance's own registry (summary.ts), so
 * the page, the report and /metrics agree by construction.
 */
import type { Registry } from 'prom-client';
import { parsePromText } from '../metrics/prom-text.js';
import { type Summary, summarise } from '../metrics/summary.js';

export const STATUS_PAGE_CSP =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:";

export async function statusSummary(registry: Registry): Promise<Summary & { readonly at: number }> {
  const text = await registry.metrics();
  const now = Date.now();
  return { at: now, ...summarise(parsePromText(text), now / 1000) };
}

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sidecache status</title>
<style>
  :root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --accent: #1f6feb; --good: #1a7f37; --bg: #fff; }
  * { box-sizing: border-box; }
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); margin: 0; padding: 20px 28px; }
  h1 { font-size: 20px; margin: 0 0 2px; }
  h2 { font-size: 15px; margin: 22px 0 8px; }
  .muted { color: var(--muted); }
  .tiles { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 14px; }
  .tile { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; min-width: 160px; }
  .tile .v { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
  .tile .k { color: var(--muted); font-size: 12px; }
  .charts { display: flex; flex-wrap: wrap; gap: 16px; }
  .chart { border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; }
  .chart svg { display: block; }
  table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align: right; padding: 4px 10px; border-bottom: 1px solid var(--line); }
  th:first-child, td:first-child { text-align: left; }
  th { font-weight: 600; color: var(--muted); font-size: 12px; }
  #error { color: #b42318; }
  ul { margin: 0; padding-left: 20px; }
</style>
</head>
<body>
<h1>sidecache</h1>
<div class="muted"><span id="uptime">…</span> · updated <span id="updated">never</span> <span id="error"></span></div>
<div class="tiles">
  <div class="tile"><div class="v" id="requests" data-value="">…</div><div class="k">requests</div></div>
  <div class="tile"><div class="v" id="hit-ratio" data-value="">…</div><div class="k">hit ratio (<span id="lookups">0</span> lookups)</div></div>
  <div class="tile"><div class="v" id="avoided" data-value="">…</div><div class="k">upstream requests avoided</div></div>
  <div class="tile"><div class="v" id="saved-total" data-value="">…</div><div class="k">time saved</div></div>
  <div class="tile"><div class="v" id="in-flight" data-value="">…</div><div class="k">in flight</div></div>
</div>
<div class="muted" style="margin-top:6px">saved by kind: cache <span id="saved-cache" data-value="">…</span>, connection reuse <span id="saved-connection" data-value="">…</span>, DNS cache <span id="saved-dns" data-value="">…</span></div>

<h2>Last 5 minutes</h2>
<div class="charts">
  <div class="chart"><div class="muted">time saved per second</div><svg id="chart-saved" width="420" height="140" role="img" aria-label="time saved per second"></svg></div>
  <div class="chart"><div class="muted">hit ratio per interval</div><svg id="chart-hits" width="420" height="140" role="img" aria-label="hit ratio"></svg></div>
</div>

<h2>Routes</h2>
<table id="routes"><thead><tr><th>route</th><th>requests</th><th>hit ratio</th><th>avoided</th><th>saved: cache</th><th>connection</th><th>dns</th></tr></thead><tbody></tbody></table>

<h2>Origins <span class="muted">(slowest first)</span></h2>
<table id="origins"><thead><tr><th>origin</th><th>mean upstream</th><th>requests</th><th>reuse</th><th>connections</th><th>idle (warm)</th><th>TLS handshake</th><th>connect errors</th></tr></thead><tbody></tbody></table>

<h2>Advice</h2>
<ul id="advice"></ul>
<h2>Suggested cache policy</h2>
<div class="muted">From the traffic the cache did not answer; <code>sidecache report --suggest-config FILE</code> writes them into a config.</div>
<ul id="suggestions"></ul>

<script>
(function () {
  'use strict';
  var POLL_MS = 2000;
  var WINDOW_MS = 5 * 60 * 1000;
  var history = [];

  function $(id) { return document.getElementById(id); }
  function seconds(s) {
    if (s >= 3600) return (s / 3600).toFixed(1) + ' h';
    if (s >= 60) return (s / 60).toFixed(1) + ' min';
    if (s >= 1) return s.toFixed(2) + ' s';
    return (s * 1000).toFixed(1) + ' ms';
  }
  function percent(r) { return r === null || r === undefined ? '–' : (r * 100).toFixed(1) + '%'; }
  function setValue(id, raw, text) { var el = $(id); el.textContent = text; el.setAttribute('data-value', String(raw)); }
  function cell(row, text) { var td = document.createElement('td'); td.textContent = text; row.appendChild(td); }
  function fillTable(id, rows, columns) {
    var body = $(id).tBodies[0];
    body.textContent = '';
    rows.forEach(function (r) {
      var tr = document.createElement('tr');
      columns.forEach(function (c) { cell(tr, c(r)); });
      body.appendChild(tr);
    });
  }

  var SVG = 'http://www.w3.org/2000/svg';
  function drawChart(svg, points, maxY, format) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var w = Number(svg.getAttribute('width')), h = Number(svg.getAttribute('height'));
    var left = 66, bottom = 18, top = 8, right = 8;
    var plotW = w - left - right, plotH = h - top - bottom;
    function el(name, attrs, text) {
      var e = document.createElementNS(SVG, name);
      for (var k in attrs) e.setAttribute(k, attrs[k]);
      if (text !== undefined) e.textContent = text;
      svg.appendChild(e);
      return e;
    }
    el('line', { x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH, stroke: '#d0d5dd' });
    el('line', { x1: left, y1: top, x2: left, y2: top + plotH, stroke: '#d0d5dd' });
    el('text', { x: left - 6, y: top + 10, 'text-anchor': 'end', 'font-size': 10, fill: '#667085' }, format(maxY));
    el('text', { x: left - 6, y: top + plotH, 'text-anchor': 'end', 'font-size': 10, fill: '#667085' }, format(0));
    el('text', { x: left + plotW, y: h - 4, 'text-anchor': 'end', 'font-size': 10, fill: '#667085' }, 'now');
    el('text', { x: left, y: h - 4, 'font-size': 10, fill: '#667085' }, '-5 min');
    if (points.length < 1) {
      el('text', { x: left + plotW / 2, y: top + plotH / 2, 'text-anchor': 'middle', 'font-size': 11, fill: '#98a2b3' }, 'no data yet');
      return;
    }
    var now = Date.now();
    var coords = points.map(function (p) {
      var x = left + plotW * (1 - Math.min(1, (now - p.t) / WINDOW_MS));
      var y = top + plotH * (1 - (maxY > 0 ? Math.min(1, p.y / maxY) : 0));
      return x.toFixed(1) + ',' + y.toFixed(1);
    });
    el('polyline', { points: coords.join(' '), fill: 'none', stroke: '#1f6feb', 'stroke-width': 2, 'data-points': String(points.length) });
  }

  function render(s) {
    setValue('requests', s.requests, String(s.requests));
    setValue('hit-ratio', s.hitRatio === null ? '' : s.hitRatio, percent(s.hitRatio));
    $('lookups').textContent = String(s.lookups);
    setValue('avoided', s.avoided, String(s.avoided));
    setValue('saved-total', s.savedSeconds.total, seconds(s.savedSeconds.total));
    setValue('saved-cache', s.savedSeconds.cache, seconds(s.savedSeconds.cache));
    setValue('saved-connection', s.savedSeconds.connection, seconds(s.savedSeconds.connection));
    setValue('saved-dns', s.savedSeconds.dns, seconds(s.savedSeconds.dns));
    setValue('in-flight', s.inFlight, String(s.inFlight));
    $('uptime').textContent = s.uptimeSeconds === null ? '' : 'up ' + seconds(s.uptimeSeconds);
    $('updated').textContent = new Date(s.at).toLocaleTimeString();
    fillTable('routes', s.routes, [
      function (r) { return r.route; },
      function (r) { return String(r.requests); },
      function (r) { return percent(r.hitRatio); },
      function (r) { return String(r.avoided); },
      function (r) { return seconds(r.savedSeconds.cache); },
      function (r) { return seconds(r.savedSeconds.connection); },
      function (r) { return seconds(r.savedSeconds.dns); },
    ]);
    fillTable('origins', s.origins, [
      function (o) { return o.origin; },
      function (o) { return o.meanUpstreamSeconds === null ? '–' : seconds(o.meanUpstreamSeconds); },
      function (o) { return String(o.requests); },
      function (o) { return percent(o.reuseRatio); },
      function (o) { return String(o.connectionsOpened); },
      function (o) { return o.idleConnections === null ? '–' : String(o.idleConnections); },
      function (o) { return o.meanTlsSeconds === null ? '–' : seconds(o.meanTlsSeconds); },
      function (o) { return String(o.connectErrors); },
    ]);
    var advice = $('advice');
    advice.textContent = '';
    s.advice.forEach(function (a) { var li = document.createElement('li'); li.textContent = a; advice.appendChild(li); });
    var suggestions = $('suggestions');
    suggestions.textContent = '';
    var lines = s.suggestions || [];
    if (lines.length === 0) lines = ['none yet'];
    lines.forEach(function (a) { var li = document.createElement('li'); li.textContent = a; suggestions.appendChild(li); });

    history.push({ t: s.at, saved: s.savedSeconds.total, hits: s.hits, lookups: s.lookups });
    while (history.length > 0 && s.at - history[0].t > WINDOW_MS) history.shift();
    var savedRate = [], hitRatio = [];
    for (var i = 1; i < history.length; i++) {
      var a = history[i - 1], b = history[i];
      var dt = (b.t - a.t) / 1000;
      if (dt <= 0) continue;
      savedRate.push({ t: b.t, y: Math.max(0, (b.saved - a.saved) / dt) });
      var dl = b.lookups - a.lookups;
      if (dl > 0) hitRatio.push({ t: b.t, y: (b.hits - a.hits) / dl });
    }
    var maxRate = savedRate.reduce(function (m, p) { return Math.max(m, p.y); }, 0);
    drawChart($('chart-saved'), savedRate, maxRate > 0 ? maxRate : 1, function (v) { return seconds(v) + '/s'; });
    drawChart($('chart-hits'), hitRatio, 1, function (v) { return Math.round(v * 100) + '%'; });
  }

  function poll() {
    fetch('status.json', { cache: 'no-store' })
      .then(function (res) { if (!res.ok) throw new Error('status.json answered ' + res.status); return res.json(); })
      .then(function (s) { $('error').textContent = ''; render(s); })
      .catch(function (err) { $('error').textContent = '(' + err.message + ')'; })
      .then(function () { setTimeout(poll, POLL_MS); });
  }
  poll();
})();
</script>
</body>
</html>
`;
