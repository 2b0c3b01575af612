// `npm run bench:entries`: does a cache hit stay as cheap with a million stored entries as with a
// thousand? One sidecache process is filled in steps (1k, then up to 100k, then up to 1M small
// responses, each key once, through its reverse route: the ordinary miss-and-store path), and after
// each step the entry count is read from /metrics and hits are measured on random stored keys
// (wrk-keys.lua). Reports entries, RSS, req/s, p50/p99, CPU µs/req, and the upstream requests seen
// during the hit window (0 when every request was a hit). See bench/README.md ("Entries sweep").
import { parseArgs } from 'node:util';
import { type Harness, integers, metric, runScript, seconds, withConfigFile } from '../harness/harness.js';
import { type KeysResult, runWrkKeys } from '../harness/load.js';
import { cpuSeconds, statusMib } from '../harness/proc.js';
import { columnLines, fixed } from '../harness/report.js';
import { startOrigin } from '../targets/index.js';
import { ROUTE_NAME } from '../targets/route-table.js';
import { sidecacheBuildLabel, startSidecache } from '../targets/sidecache.js';

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
  const rows: EntriesRow[] = [];
  const origin = await startOrigin(h.children);
  const sidecache = await withConfigFile(ENTRIES_CONFIG, (config) =>
    startSidecache(h.children, {
      origin: origin.url,
      serveArgs: ['--config', config],
      nodeArgs: ['--max-old-space-size=8192'],
    }),
  );
  h.pinning.isolate(sidecache.child.pid, [origin.child.pid, process.pid]);
  const entries = () => metric(sidecache.adminUrl, 'sidecache_cache_entries');
  const upstream = async () => (await metric(sidecache.adminUrl, 'sidecache_upstream_requests_total')) ?? 0;
  const keys = { connectUrl: sidecache.url, host: new URL(sidecache.url).host, prefix: KEY_PREFIX };
  let filledTo = 0;
  for (const size of opts.sizes) {
    try {
      const started = performance.now();
      const fill = await runWrkKeys(h, {
        ...keys,
        from: filledTo,
        to: size,
        mode: 'fill',
        connections: opts.fillConnections,
        durationMs: 30_000 + ((size - filledTo) / 1000) * FILL_MS_PER_1000,
        stopWhen: async () => ((await entries()) ?? 0) >= size,
      });
      const fillS = (performance.now() - started) / 1000;
      if (fill.non2xx + fill.socketErrors > 0)
        throw new Error(`fill: ${fill.non2xx} non-2xx, ${fill.socketErrors} socket errors/timeouts`);
      const filled = { entries: await entries(), fillS, fillRps: (size - filledTo) / fillS };
      filledTo = size;
      if (filled.entries === null || filled.entries < size) {
        const failure = `the fill stored ${filled.entries} of ${size} entries`;
        rows.push({ ...notMeasured(size, failure), ...filled, rssMib: statusMib(sidecache.child.pid) });
        break;
      }
      const hitPlan = { ...keys, from: 0, to: size, mode: 'random' as const, connections: opts.connections };
      if (opts.warmupMs > 0) await runWrkKeys(h, { ...hitPlan, durationMs: opts.warmupMs });
      const [upstreamBefore, cpuBefore] = [await upstream(), cpuSeconds(sidecache.child.pid)];
      const hits = await runWrkKeys(h, { ...hitPlan, durationMs: opts.durationMs });
      const cpuAfter = cpuSeconds(sidecache.child.pid);
      rows.push({
        target: size,
        ...filled,
        rssMib: statusMib(sidecache.child.pid),
        hits,
        cpuUsPerReq:
          cpuBefore !== null && cpuAfter !== null && hits.requests > 0
            ? ((cpuAfter - cpuBefore) * 1e6) / hits.requests
            : null,
        upstreamDuringHits: (await upstream()) - upstreamBefore,
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
    `sidecache: ${sidecacheBuildLabel()}, cache.maxSizeBytes ${ENTRIES_CONFIG.match(/maxSizeBytes: (\d+)/)?.[1]}; ` +
      `32-byte bodies, key = path ${KEY_PREFIX}<n>; fill: keys in order, pass after pass, ${opts.fillConnections} connections, until /metrics shows the count`,
    `hits: random stored keys, ${opts.connections} connections, ${opts.warmupMs / 1000} s warm-up + ${opts.durationMs / 1000} s; ` +
      'RSS: VmRSS of sidecache after the hits; ΔRSS B/entry: its growth per entry added since the previous step; upstream: requests sidecache sent upstream during the hit window',
    '',
    ...columnLines(columns, body, 0),
    ...rows.filter((r) => r.failure).map((r) => `FAILED at ${r.target} entries: ${r.failure}`),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      sizes: { type: 'string' },
      duration: { type: 'string' },
      'no-pin': { type: 'boolean' },
      json: { type: 'string' },
    },
  });
  const quick = values.quick === true;
  const sizes = integers('--sizes', values.sizes, quick ? '100,1000' : '1000,100000,1000000', 1, 5_000_000);
  if (sizes.some((n, i) => i > 0 && n <= (sizes[i - 1] as number)))
    throw new Error('--sizes: not increasing');
  const opts = {
    sizes,
    fillConnections: 64,
    connections: 32,
    warmupMs: quick ? 200 : 1000,
    durationMs: seconds('--duration', values.duration, quick ? 0.5 : 5, 0.1, 120),
    pin: values['no-pin'] !== true,
    json: values.json ?? 'bench/results/entries.json',
  };
  await runScript(opts, async (h) => {
    const { rows, table } = await runEntriesSweep(h, opts);
    const failed = rows.some((r) => r.failure) || rows.length < opts.sizes.length;
    return { table, results: { rows }, failed };
  });
}
