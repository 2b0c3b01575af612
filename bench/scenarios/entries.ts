// `npm run bench:entries`: does a cache hit stay as cheap with a million stored entries as with a
// thousand? One sidecache process is filled in steps (1k, then up to 100k, then up to 1M small
// responses, each key once, through its reverse route: the ordinary miss-and-store path), and after
// each step the entry count is read from /metrics and hits are measured on random stored keys
// (wrk-keys.lua). Reports entries, RSS, req/s, p50/p99, CPU µs/req, and the upstream requests seen
// during the hit window (0 when every request was a hit). See bench/README.md ("Entries sweep").
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type Harness,
  metricSum,
  metricValue,
  READY_TIMEOUT_MS,
  repoRoot,
  runSweepScript,
  sidecacheConfigFile,
} from '../harness/harness.js';
import { columnLines, fixed } from '../harness/report.js';
import { rssMib } from '../harness/rss.js';
import { type KeysResult, runWrkKeys } from '../harness/wrk-keys.js';
import { sidecacheBuild, startOrigin, startSidecache } from '../targets/index.js';
import { ROUTE_NAME } from './requests.js';

export interface EntriesOptions {
  readonly sizes: readonly number[];
  readonly fillConnections: number;
  readonly connections: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

export interface EntriesRow {
  readonly target: number;
  /** sidecache_cache_entries after the fill. */
  readonly entries: number | null;
  readonly fillS: number;
  readonly fillRps: number;
  readonly rssMib: number | null;
  readonly hits: KeysResult | null;
  readonly cpuUsPerReq: number | null;
  /** Upstream requests sidecache made during the hit window (should be 0). */
  readonly upstreamDuringHits: number | null;
  readonly failure: string | null;
}

const GiB = 1024 ** 3;
/** Room for a million small entries (about 1 kB each as the store counts them). */
const ENTRIES_CONFIG = `cache:\n  maxSizeBytes: ${4 * GiB}\n  maxEntryBytes: 65536\n`;
const KEY_PREFIX = `/${ROUTE_NAME}/small/k`;
/** A fill step may take this long per 1,000 keys (plus 30 s) before it is cut short. */
const FILL_MS_PER_1000 = 2_000;

/** The row of a step that failed before anything (or before the hits) was measured. */
function notMeasured(target: number, failure: string): EntriesRow {
  return {
    target,
    entries: null,
    fillS: 0,
    fillRps: 0,
    rssMib: null,
    hits: null,
    cpuUsPerReq: null,
    upstreamDuringHits: null,
    failure,
  };
}

export async function runEntriesSweep(
  h: Harness,
  opts: EntriesOptions,
): Promise<{ rows: EntriesRow[]; table: string }> {
  const config = sidecacheConfigFile(ENTRIES_CONFIG);
  const rows: EntriesRow[] = [];
  try {
    const origin = await startOrigin(h.children, repoRoot, READY_TIMEOUT_MS);
    const sidecache = await startSidecache(
      { children: h.children, repoRoot, origin, readyTimeoutMs: READY_TIMEOUT_MS },
      {
        serveArgs: ['--config', config.path],
        nodeArgs: ['--max-old-space-size=8192'],
        fromSource: sidecacheBuild(repoRoot).fromSource,
      },
    );
    h.pinning.isolate(sidecache.child.pid, [origin.child.pid, process.pid]);
    const wrkDeps = { children: h.children, pinning: h.pinning, benchDir: join(repoRoot, 'bench') };
    const keys = { connectUrl: sidecache.url, host: new URL(sidecache.url).host, prefix: KEY_PREFIX };
    let filledTo = 0;
    for (const size of opts.sizes) {
      try {
        const started = performance.now();
        const fill = await runWrkKeys(wrkDeps, {
          ...keys,
          from: filledTo,
          to: size,
          mode: 'fill',
          connections: opts.fillConnections,
          durationMs: 30_000 + ((size - filledTo) / 1000) * FILL_MS_PER_1000,
          stopWhen: async () =>
            ((await metricValue(sidecache.adminUrl, 'sidecache_cache_entries')) ?? 0) >= size,
        });
        const fillS = (performance.now() - started) / 1000;
        if (fill.non2xx + fill.socketErrors > 0)
          throw new Error(`fill: ${fill.non2xx} non-2xx, ${fill.socketErrors} socket errors/timeouts`);
        const entries = await metricValue(sidecache.adminUrl, 'sidecache_cache_entries');
        const fillRps = (size - filledTo) / fillS;
        filledTo = size;
        const filled = { entries, fillS, fillRps };
        if (entries === null || entries < size) {
          rows.push({
            ...notMeasured(size, `the fill stored ${entries} of ${size} entries`),
            ...filled,
            rssMib: rssMib(sidecache.child.pid),
          });
          break;
        }
        const hitPlan = {
          ...keys,
          from: 0,
          to: size,
          mode: 'random' as const,
          connections: opts.connections,
        };
        if (opts.warmupMs > 0) await runWrkKeys(wrkDeps, { ...hitPlan, durationMs: opts.warmupMs });
        const upstreamBefore = await metricSum(sidecache.adminUrl, 'sidecache_upstream_requests_total');
        const cpuBefore = h.cpu?.cpuSeconds(sidecache.child.pid) ?? null;
        const hits = await runWrkKeys(wrkDeps, { ...hitPlan, durationMs: opts.durationMs });
        const cpuAfter = h.cpu?.cpuSeconds(sidecache.child.pid) ?? null;
        const upstreamDuringHits =
          (await metricSum(sidecache.adminUrl, 'sidecache_upstream_requests_total')) - upstreamBefore;
        rows.push({
          target: size,
          ...filled,
          rssMib: rssMib(sidecache.child.pid),
          hits,
          cpuUsPerReq:
            cpuBefore !== null && cpuAfter !== null && hits.requests > 0
              ? ((cpuAfter - cpuBefore) * 1e6) / hits.requests
              : null,
          upstreamDuringHits,
          failure:
            hits.requests === 0
              ? 'no hit completed'
              : hits.non2xx + hits.socketErrors > 0
                ? `${hits.non2xx} non-2xx, ${hits.socketErrors} socket errors/timeouts`
                : null,
        });
      } catch (err) {
        rows.push(notMeasured(size, (err as Error).message));
        break;
      }
    }
    await Promise.all([sidecache.child.stop(), origin.child.stop()]);
  } finally {
    config.remove();
  }
  return { rows, table: formatEntries(rows, h, opts) };
}

/** RSS growth per stored entry from the previous step to this one (bytes), or null. */
function rssPerEntry(prev: EntriesRow | undefined, r: EntriesRow): number | null {
  if (prev?.rssMib == null || r.rssMib === null || prev.entries === null || r.entries === null) return null;
  const added = r.entries - prev.entries;
  return added > 0 ? ((r.rssMib - prev.rssMib) * 1024 * 1024) / added : null;
}

export function formatEntries(rows: readonly EntriesRow[], h: Harness, opts: EntriesOptions): string {
  const columns = [
    'entries',
    'fill s',
    'fill req/s',
    'RSS MiB',
    'ΔRSS B/entry',
    'hit req/s',
    'p50 ms',
    'p99 ms',
    'CPU µs/req',
    'upstream',
    'errors',
  ];
  const body = rows.map((r, i) => [
    r.entries === null ? `- (${r.target})` : String(r.entries),
    fixed(r.fillS, 1),
    fixed(r.fillRps, 0),
    fixed(r.rssMib, 0),
    fixed(rssPerEntry(rows[i - 1], r), 0),
    fixed(r.hits?.rps, 0),
    fixed(r.hits?.p50Ms, 3),
    fixed(r.hits?.p99Ms, 3),
    fixed(r.cpuUsPerReq, 1),
    r.upstreamDuringHits === null ? '-' : String(r.upstreamDuringHits),
    r.failure ? 'FAILED' : String((r.hits?.non2xx ?? 0) + (r.hits?.socketErrors ?? 0)),
  ]);
  return [
    `entries sweep: ${h.header[0]}`,
    ...h.header.slice(1),
    `sidecache: ${sidecacheBuild(repoRoot).label}, cache.maxSizeBytes ${ENTRIES_CONFIG.match(/maxSizeBytes: (\d+)/)?.[1]}; ` +
      `32-byte bodies, key = path ${KEY_PREFIX}<n>; fill: keys in order, pass after pass, ${opts.fillConnections} connections, until /metrics shows the count`,
    `hits: random stored keys, ${opts.connections} connections, ${opts.warmupMs / 1000} s warm-up + ${opts.durationMs / 1000} s; ` +
      'RSS: VmRSS of sidecache after the hits; ΔRSS B/entry: its growth per entry added since the previous step; upstream: requests sidecache sent upstream during the hit window',
    '',
    ...columnLines(columns, body, 0),
    ...rows.filter((r) => r.failure).map((r) => `FAILED at ${r.target} entries: ${r.failure}`),
  ].join('\n');
}

function parseEntriesArgs(argv: readonly string[]): EntriesOptions & { pin: boolean; json: string } {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      quick: { type: 'boolean' },
      sizes: { type: 'string' },
      duration: { type: 'string' },
      'no-pin': { type: 'boolean' },
      json: { type: 'string' },
    },
  });
  const quick = values.quick === true;
  const sizes = (values.sizes ?? (quick ? '100,1000' : '1000,100000,1000000')).split(',').map(Number);
  if (
    sizes.some(
      (n, i) => !Number.isInteger(n) || n < 1 || n > 5_000_000 || (i > 0 && n <= (sizes[i - 1] as number)),
    )
  ) {
    throw new Error(`--sizes: "${values.sizes}" is not an increasing list of integers in [1, 5000000]`);
  }
  const duration = Number(values.duration ?? (quick ? 0.5 : 5));
  if (!Number.isFinite(duration) || duration <= 0 || duration > 120)
    throw new Error(`--duration: "${values.duration}" is not in (0, 120] s`);
  return {
    sizes,
    fillConnections: 64,
    connections: 32,
    warmupMs: quick ? 200 : 1000,
    durationMs: Math.round(duration * 1000),
    pin: values['no-pin'] !== true,
    json: values.json ?? 'bench/results/entries.json',
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const opts = parseEntriesArgs(process.argv.slice(2));
  await runSweepScript(opts, async (h) => {
    const { rows, table } = await runEntriesSweep(h, opts);
    return {
      table,
      results: { rows },
      failed: rows.some((r) => r.failure) || rows.length < opts.sizes.length,
    };
  });
}
