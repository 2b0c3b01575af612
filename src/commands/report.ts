/**
 * `sidecache report`: reads a running instance's /metrics over its admin listener and prints a
 * short summary for humans (or the summary as JSON for scripts). See metrics/summary.ts for definitions.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { type Advice, suggestionLine } from '../advisor/suggest.js';
import { suggestedConfigText } from '../advisor/suggest-config.js';
import { type NotStoredReason, notStoredDetail } from '../cache/storability.js';
import type { HostPort } from '../config/runtime.js';
import { SidecacheError } from '../errors.js';
import { httpUrl } from '../log.js';
import { type MetricFamily, parsePromText } from '../metrics/prom-text.js';
import { type Summary, summarise } from '../metrics/summary.js';

export interface ReportOptions {
  /** Base URL of the admin listener, e.g. http://127.0.0.1:9090. */
  readonly admin: string;
  readonly json: boolean;
  readonly timeoutMs?: number;
  /** Bearer token for an admin listener with `admin.token` set. */
  readonly token?: string | undefined;
}

export class ReportError extends Error {
  override readonly name = 'ReportError';
}

/** Scrapes `${admin}/metrics` and summarises it. */
export async function fetchSummary(
  admin: string,
  timeoutMs = 5_000,
  token?: string | undefined,
): Promise<Summary> {
  return summarise(parsePromText(await readAdmin(admin, '/metrics', timeoutMs, token)), Date.now() / 1000);
}

/**
 * GET `path` (with its query) on the admin listener at `admin`; resolves the body of a 200.
 * ReportError says what went wrong: not a URL, unreachable, 401 (token missing or refused), or
 * another status (with the listener's own message when it sent JSON `{error}`).
 */
export async function readAdmin(
  admin: string,
  path: string,
  timeoutMs = 5_000,
  token?: string | undefined,
): Promise<string> {
  let url: URL;
  try {
    url = new URL(path, admin);
  } catch {
    throw new ReportError(`--admin: "${admin}" is not a URL, e.g. http://127.0.0.1:9090`);
  }
  try {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(timeoutMs),
      ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
    });
    if (res.status === 401) {
      throw new ReportError(
        `${url.href} answered 401: ${token ? 'the token was refused' : 'it needs a token'} (--token or SIDECACHE_ADMIN_TOKEN)`,
      );
    }
    const text = await res.text();
    if (!res.ok) {
      let detail = '';
      try {
        const error = (JSON.parse(text) as { error?: unknown }).error;
        if (typeof error === 'string') detail = `: ${error}`;
      } catch {
        // not JSON
      }
      throw new ReportError(`${url.href} answered ${res.status}${detail}`);
    }
    return text;
  } catch (err) {
    if (err instanceof ReportError) throw err;
    const inner = (err as { cause?: { code?: string; message?: string } }).cause;
    const cause = inner?.code ?? inner?.message ?? (err as Error).message;
    throw new ReportError(
      `cannot read ${url.href} (${cause}): is sidecache running with its admin listener?`,
    );
  }
}

/** The policy advisor's suggestions (`/advice.json`); null from an instance that has none. */
export async function fetchAdvice(admin: string, timeoutMs = 5_000, token?: string): Promise<Advice | null> {
  try {
    return JSON.parse(await readAdmin(admin, '/advice.json', timeoutMs, token)) as Advice;
  } catch (err) {
    if (err instanceof ReportError && / answered 404/.test(err.message)) return null;
    throw err;
  }
}

/** Suggestions listed by `sidecache report`. */
export const TOP_SUGGESTIONS = 5;

/** The whole report as text, or JSON when `json` (with the advisor's suggestions as `advice`). */
export async function runReport(opts: ReportOptions): Promise<string> {
  const [summary, advice] = await Promise.all([
    fetchSummary(opts.admin, opts.timeoutMs, opts.token),
    fetchAdvice(opts.admin, opts.timeoutMs, opts.token),
  ]);
  if (opts.json) return `${JSON.stringify({ ...summary, advice }, null, 2)}\n`;
  return formatReport(summary, opts.admin) + formatSuggestions(advice);
}

export function formatSuggestions(advice: Advice | null): string {
  if (advice === null) return '';
  if (advice.enabled === false)
    return `\nsuggested cache policy: none, ${advice.why ?? 'the policy advisor is off'}\n`;
  const lines = ['', 'suggested cache policy (sidecache report --suggest-config FILE writes it)'];
  if (advice.suggestions.length === 0)
    lines.push('  none yet: nothing observed is both repeated and unchanged');
  for (const s of advice.suggestions.slice(0, TOP_SUGGESTIONS)) lines.push(`  - ${suggestionLine(s)}`);
  if (advice.suggestions.length > TOP_SUGGESTIONS)
    lines.push(`  (${advice.suggestions.length - TOP_SUGGESTIONS} more in /advice.json)`);
  return `${lines.join('\n')}\n`;
}

/** Writes the suggested config to `file`; returns what to print. */
export async function writeSuggestedConfig(opts: {
  admin: string;
  token?: string | undefined;
  baseFile: string;
  file: string;
}): Promise<string> {
  const advice = await fetchAdvice(opts.admin, 5_000, opts.token);
  if (advice === null) throw new ReportError(`${opts.admin} has no /advice.json (an older sidecache?)`);
  if (advice.enabled === false)
    throw new ReportError(`${opts.admin}: ${advice.why ?? 'the policy advisor is off'}`);
  const text = suggestedConfigText(advice, readFileSync(opts.baseFile, 'utf8'), opts.baseFile);
  writeFileSync(opts.file, text, { mode: 0o600 });
  return `wrote ${opts.file}: ${advice.suggestions.length} suggestion(s) merged into ${opts.baseFile}\n${formatSuggestions(advice)}`;
}

/** Thresholds of `sidecache report --check`. */
export interface CheckThresholds {
  /** A route's hit ratio below this fails (routes without lookups are not judged). */
  readonly minHitRatio?: number | undefined;
  /** A route's p99 request duration above this (seconds) fails. */
  readonly maxP99Seconds?: number | undefined;
  /** Only these routes (all when empty). */
  readonly routes?: readonly string[] | undefined;
}

/** p99 of a route's request duration from histogram buckets: the upper bound of the bucket reaching 99%. */
export function routeP99(families: Map<string, MetricFamily>, route: string): number | null {
  const fam = families.get('sidecache_request_duration_seconds');
  if (!fam) return null;
  const buckets = fam.samples
    .filter((s) => s.name.endsWith('_bucket') && s.labels['route'] === route)
    .map((s) => ({
      le: s.labels['le'] === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels['le']),
      n: s.value,
    }))
    .sort((a, b) => a.le - b.le);
  const total = buckets.at(-1)?.n ?? 0;
  if (total === 0) return null;
  for (const b of buckets) if (b.n >= total * 0.99) return b.le;
  return null;
}

/** `report --check`: one line per judged route; `failed` when any crossed a threshold. */
export async function runCheck(
  admin: string,
  t: CheckThresholds,
  token?: string,
): Promise<{ failed: boolean; text: string }> {
  const families = parsePromText(await readAdmin(admin, '/metrics', 5_000, token));
  const summary = summarise(families, Date.now() / 1000);
  const lines: string[] = [];
  let failed = false;
  const wanted = t.routes && t.routes.length > 0 ? new Set(t.routes) : null;
  for (const r of summary.routes) {
    if (wanted && !wanted.has(r.route)) continue;
    if (r.requests === 0) continue;
    const p99 = routeP99(families, r.route);
    const problems: string[] = [];
    if (t.minHitRatio !== undefined && r.hitRatio !== null && r.hitRatio < t.minHitRatio)
      problems.push(`hit ratio ${percent(r.hitRatio)} < ${percent(t.minHitRatio)}`);
    if (t.maxP99Seconds !== undefined && p99 !== null && p99 > t.maxP99Seconds)
      problems.push(`p99 ≤ ${formatSeconds(p99)} bucket > ${formatSeconds(t.maxP99Seconds)}`);
    if (problems.length > 0) failed = true;
    lines.push(
      `${problems.length > 0 ? 'FAIL' : 'ok  '} ${r.route}: hit ratio ${percent(r.hitRatio)}, p99 ${p99 === null ? '–' : `≤ ${formatSeconds(p99)}`}` +
        (problems.length > 0 ? ` (${problems.join('; ')})` : ''),
    );
  }
  if (wanted)
    for (const name of wanted)
      if (!summary.routes.some((r) => r.route === name)) {
        failed = true;
        lines.push(`FAIL ${name}: no such route in the metrics`);
      }
  if (lines.length === 0) lines.push('no route has served requests yet');
  return { failed, text: `${lines.join('\n')}\n` };
}

export function formatSeconds(s: number): string {
  if (s >= 3600) return `${(s / 3600).toFixed(1)} h`;
  if (s >= 60) return `${(s / 60).toFixed(1)} min`;
  if (s >= 1) return `${s.toFixed(2)} s`;
  return `${(s * 1000).toFixed(1)} ms`;
}

const percent = (r: number | null): string => (r === null ? '–' : `${(r * 100).toFixed(1)}%`);

function savedLine(saved: Summary['savedSeconds']): string {
  return `${formatSeconds(saved.total)} (cache ${formatSeconds(saved.cache)}, connection ${formatSeconds(saved.connection)}, dns ${formatSeconds(saved.dns)})`;
}

function warmLine(w: Summary['warm']): string {
  if (w.startSeconds === null && !w.warming && w.openedAhead === 0) return 'off (no route origins kept warm)';
  const start = w.warming
    ? 'warm start running'
    : `warm start took ${w.startSeconds === null ? '–' : formatSeconds(w.startSeconds)}`;
  const reload =
    w.lastReloadSeconds === null
      ? ''
      : `; warming after the last config reload took ${formatSeconds(w.lastReloadSeconds)}`;
  return `${start}${reload}; ${w.idleConnections} idle connections now; ${w.openedAhead} opened ahead of need, ${w.usedAhead} used by requests`;
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

/** Upstream compression and refresh-ahead, when there is anything to say. */
export function warmthLines(w: Summary['warmth']): string[] {
  const lines: string[] = [];
  if (w.compressionRatio !== null) {
    lines.push(
      `compression  upstream bodies at ${(w.compressionRatio * 100).toFixed(1)}% of identity size ` +
        `(${formatBytes(w.compressedBytes)} received for ${formatBytes(w.identityBytes)}; ` +
        `${formatBytes(w.identityBytes - w.compressedBytes)} saved)`,
    );
  }
  const r = w.refreshAhead;
  const total = Object.values(r).reduce((a, b) => a + b, 0);
  if (total > 0 || w.refreshAheadDeferred > 0) {
    lines.push(
      `refresh-ahead ${total} revalidated before expiry (304: ${r['not_modified'] ?? 0}, 200: ${r['replaced'] ?? 0}, ` +
        `not stored: ${r['not_stored'] ?? 0}, errors: ${r['error'] ?? 0}; ${w.refreshAheadDeferred} deferred); ` +
        `${w.refreshAheadHits} hits kept fresh`,
    );
  }
  return lines;
}

/** The route setting that would store answers not stored for `reason`, as ` (set …)`; '' when none. */
function settingHint(reason: string): string {
  const detail = notStoredDetail(reason as NotStoredReason);
  const open = detail.indexOf(' (');
  return open < 0 ? '' : detail.slice(open);
}

export function formatReport(s: Summary, admin: string): string {
  const lines: string[] = [];
  const up = s.uptimeSeconds === null ? '' : `, up ${formatSeconds(s.uptimeSeconds)}`;
  lines.push(`sidecache at ${admin}${up}`);
  lines.push(
    `requests     ${s.requests}  (${s.inFlight} in flight)`,
    `hit ratio    ${percent(s.hitRatio)} of ${s.lookups} cache lookups; ${s.avoided} upstream requests avoided`,
    `time saved   ${savedLine(s.savedSeconds)}`,
    `keep-warm    ${warmLine(s.warm)}`,
  );
  lines.push(...warmthLines(s.warmth));
  const routes = s.routes.filter((r) => r.requests > 0 || r.savedSeconds.total > 0);
  if (routes.length > 0) {
    lines.push('', 'by route');
    const width = Math.max(...routes.map((r) => r.route.length));
    for (const r of routes) {
      lines.push(
        `  ${r.route.padEnd(width)}  ${String(r.requests).padStart(7)} req  hits ${percent(r.hitRatio).padStart(6)}  saved ${savedLine(r.savedSeconds)}`,
      );
      // Why origin answers were not stored, most frequent first, with the setting that would store them.
      const reasons = r.notStored.filter((n) => n.count > 0);
      if (reasons.length > 0) {
        lines.push(
          `  ${' '.repeat(width)}  not stored: ${reasons.map((n) => `${n.reason} ${n.count}${settingHint(n.reason)}`).join(', ')}`,
        );
      }
    }
  }
  if (s.origins.length > 0) {
    lines.push('', 'origins, slowest first (mean upstream time; reuse = requests on a pooled connection)');
    const width = Math.max(...s.origins.map((o) => o.origin.length));
    for (const o of s.origins) {
      const mean = o.meanUpstreamSeconds === null ? '–' : formatSeconds(o.meanUpstreamSeconds);
      const tls = o.meanTlsSeconds === null ? '' : `, TLS handshake ${formatSeconds(o.meanTlsSeconds)}`;
      const errors = o.connectErrors > 0 ? `, ${o.connectErrors} connect errors` : '';
      const idle = o.idleConnections === null ? '' : `, ${o.idleConnections} idle`;
      lines.push(
        `  ${o.origin.padEnd(width)}  ${mean.padStart(9)}  ${String(o.requests).padStart(6)} req  reuse ${percent(o.reuseRatio).padStart(6)}  ${o.connectionsOpened} connections${idle}${tls}${errors}`,
      );
    }
  }
  lines.push('', 'advice');
  for (const a of s.advice) lines.push(`  - ${a}`);
  return `${lines.join('\n')}\n`;
}

/** The yargs options of `sidecache report`. */
export const reportCommandOptions = {
  admin: {
    type: 'string',
    describe:
      'Base URL of the admin listener, e.g. http://127.0.0.1:9090 (default: the admin.listen that serve would use)',
  },
  json: { type: 'boolean', default: false, describe: 'Print the summary as JSON' },
  token: {
    type: 'string',
    describe: 'Admin bearer token, when the instance sets admin.token (env SIDECACHE_ADMIN_TOKEN)',
  },
} as const;

/** The options only `sidecache report` has (the advisor and the CI check). */
export const reportOnlyOptions = {
  'suggest-config': {
    type: 'string',
    describe:
      "Write the config serve read, with the running routes and the advisor's suggestions merged in (commented with their evidence), to this file",
  },
  check: {
    type: 'boolean',
    default: false,
    describe: 'Exit 2 when a route crosses --min-hit-ratio or --max-p99 (for CI)',
  },
  'min-hit-ratio': { type: 'number', describe: 'With --check: lowest acceptable hit ratio of a route (0-1)' },
  'max-p99': {
    type: 'number',
    describe:
      'With --check: highest acceptable p99 request duration of a route, seconds (histogram bucket bound)',
  },
  'check-route': { type: 'string', array: true, describe: 'With --check: judge only these routes' },
} as const;

/** The base URL to reach an admin listener bound to `listen` from this host (a wildcard bind: loopback). */
export function adminBaseUrl(listen: HostPort): string {
  return httpUrl(listen.host, listen.port);
}

/**
 * Runs `sidecache report`: prints the report, writes the suggested config, or checks thresholds
 * (exit 2 when one is crossed); exits 1 when the instance cannot be read or the config not written.
 */
export async function reportCommand(args: {
  admin: string;
  json: boolean;
  token?: string | undefined;
  suggestConfig?: { file: string; baseFile: string } | undefined;
  check?: CheckThresholds | undefined;
}): Promise<void> {
  const token = args.token ?? (process.env.SIDECACHE_ADMIN_TOKEN?.trim() || undefined);
  try {
    if (args.check) {
      const { failed, text } = await runCheck(args.admin, args.check, token);
      process.stdout.write(text);
      if (failed) process.exit(2);
      return;
    }
    if (args.suggestConfig) {
      process.stdout.write(await writeSuggestedConfig({ admin: args.admin, token, ...args.suggestConfig }));
      return;
    }
    process.stdout.write(await runReport({ admin: args.admin, json: args.json, token }));
  } catch (err) {
    if (err instanceof SidecacheError) {
      process.stderr.write(`sidecache report: ${err.code}\n${err.message.replace(/^/gm, '  ')}\n`);
      process.exit(1);
    }
    process.stderr.write(`sidecache report: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
