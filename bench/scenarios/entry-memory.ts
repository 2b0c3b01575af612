// `npm run bench:entry-memory`: what one stored entry really costs, against what the store counts.
// sidecache runs in this process (so that its heap can be measured after a forced GC); the bench
// origin is a child process; an undici Pool in this process fills N distinct keys through the
// reverse route (the ordinary miss-and-store path), then requests every key once more (hits: what
// a hit derives per entry is kept too). After each phase: forced GC, then V8 heap used, external
// memory, array buffers and RSS, as deltas per entry, next to `sidecache_cache_size_bytes` per
// entry (the store's own accounting). `--snapshot` adds a heap-snapshot diff (before the fill,
// after the hits) by object kind: what an entry is made of. See docs/BENCHMARKS.md ("Memory per
// entry").
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants, type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startTestSidecache } from '../../test/helpers/sidecache.js';
import { metric, withHarness } from '../harness/harness.js';
import { sendEach } from '../harness/load.js';
import { columnLines } from '../harness/report.js';
import { startOrigin } from '../targets/index.js';
import { ROUTE_NAME } from '../targets/route-table.js';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

export interface MemoryReading {
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
  readonly rss: number;
}

function reading(): MemoryReading {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss };
}

interface SnapshotSummary {
  /** self size and count by kind (`type:name`). */
  readonly byKind: Map<string, { bytes: number; count: number }>;
}

/** Writes a heap snapshot and sums node self sizes by kind; strings are grouped by their type. */
function snapshotSummary(): SnapshotSummary {
  gc();
  const file = v8.writeHeapSnapshot(join(tmpdir(), `sidecache-entry-memory-${process.pid}.heapsnapshot`));
  try {
    const snap = JSON.parse(readFileSync(file, 'utf8')) as {
      snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
      nodes: number[];
      strings: string[];
    };
    const fields = snap.snapshot.meta.node_fields;
    const types = snap.snapshot.meta.node_types[0];
    const stride = fields.length;
    const iType = fields.indexOf('type');
    const iName = fields.indexOf('name');
    const iSize = fields.indexOf('self_size');
    const byKind = new Map<string, { bytes: number; count: number }>();
    for (let n = 0; n < snap.nodes.length; n += stride) {
      const type = types[snap.nodes[n + iType] as number] as string;
      let name = snap.strings[snap.nodes[n + iName] as number] as string;
      if (type.includes('string') || type === 'number' || type === 'code' || type === 'closure') name = '';
      if (name.length > 60) name = `${name.slice(0, 57)}...`;
      const kind = `${type}${name === '' ? '' : `:${name}`}`;
      const k = byKind.get(kind) ?? { bytes: 0, count: 0 };
      k.bytes += snap.nodes[n + iSize] as number;
      k.count += 1;
      byKind.set(kind, k);
    }
    return { byKind };
  } finally {
    rmSync(file, { force: true });
  }
}

function snapshotDiff(what: string, a: SnapshotSummary, b: SnapshotSummary, entries: number): string {
  const rows: { kind: string; bytes: number; count: number }[] = [];
  for (const [kind, v] of b.byKind) {
    const before = a.byKind.get(kind) ?? { bytes: 0, count: 0 };
    rows.push({ kind, bytes: v.bytes - before.bytes, count: v.count - before.count });
  }
  rows.sort((x, y) => y.bytes - x.bytes);
  const total = rows.reduce((s, r) => s + r.bytes, 0);
  const lines = rows
    .filter((r) => Math.abs(r.bytes) / entries >= 2)
    .map(
      (r) =>
        `${(r.bytes / entries).toFixed(1).padStart(9)}  ${(r.count / entries).toFixed(2).padStart(8)}  ${r.kind}`,
    );
  return [
    `heap snapshot diff over ${what}, per entry (self sizes; kinds of at least 2 bytes per entry):`,
    `  bytes/e  objects/e  kind`,
    ...lines,
    `${(total / entries).toFixed(1).padStart(9)}            total`,
  ].join('\n');
}

/** GC pauses while `body` runs, by kind (major: mark-compact, the one that walks every live entry). */
async function gcDuring(
  body: () => Promise<void>,
): Promise<{ majors: number; majorMs: number; minors: number; minorMs: number }> {
  const g = { majors: 0, majorMs: 0, minors: 0, minorMs: 0 };
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        g.majors++;
        g.majorMs += e.duration;
      } else {
        g.minors++;
        g.minorMs += e.duration;
      }
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  try {
    await body();
    await new Promise((r) => setTimeout(r, 100)); // let the observer deliver
  } finally {
    obs.disconnect();
  }
  return g;
}

export interface MemoryRow {
  readonly phase: string;
  readonly entries: number;
  readonly storeBytes: number;
  readonly perEntry: MemoryReading;
  /** GC during the phase's requests. */
  readonly gc: { majors: number; majorMs: number; minors: number; minorMs: number };
  readonly seconds: number;
}

export async function measureEntryMemory(opts: {
  entries: number;
  connections: number;
  snapshot: boolean;
}): Promise<{ rows: MemoryRow[]; table: string; snapshot: string | null }> {
  return withHarness({ pin: false }, async (h) => {
    const origin = await startOrigin(h.children);
    const sc = await startTestSidecache({
      routes: [{ name: ROUTE_NAME, origin: origin.url }],
      cache: { maxSizeBytes: 4 * 1024 ** 3, maxEntryBytes: 65536 },
    });
    const key = (i: number): string => `/${ROUTE_NAME}/small/k${i}`;
    const send = (n: number, path: (i: number) => string) =>
      sendEach(sc.url, n, path, { concurrency: opts.connections });
    const storeBytes = async (): Promise<number> =>
      (await metric(sc.adminUrl, 'sidecache_cache_size_bytes')) ?? 0;
    const storeEntries = async (): Promise<number> =>
      (await metric(sc.adminUrl, 'sidecache_cache_entries')) ?? 0;
    try {
      // Warm-up: pools, JIT, metric label sets; these 2,000 entries are in the baseline.
      await send(2000, (i) => key(-1 - i));
      await send(2000, (i) => key(-1 - i));
      const entries0 = await storeEntries();
      const bytes0 = await storeBytes();
      const snapA = opts.snapshot ? snapshotSummary() : null;
      const base = reading();
      const n = opts.entries;
      let t = performance.now();
      const gcFill = await gcDuring(() => send(n, key).then(() => {}));
      const fillS = (performance.now() - t) / 1000;
      const filled = reading();
      const entries1 = await storeEntries();
      const bytes1 = await storeBytes();
      const snapFilled = opts.snapshot ? snapshotSummary() : null;
      t = performance.now();
      const gcHits = await gcDuring(() => send(n, key).then(() => {}));
      const hitS = (performance.now() - t) / 1000;
      const hit = reading();
      const entries2 = await storeEntries();
      const bytes2 = await storeBytes();
      const snapB = opts.snapshot ? snapshotSummary() : null;
      const per = (a: MemoryReading, b: MemoryReading, count: number): MemoryReading => ({
        heapUsed: (b.heapUsed - a.heapUsed) / count,
        external: (b.external - a.external) / count,
        arrayBuffers: (b.arrayBuffers - a.arrayBuffers) / count,
        rss: (b.rss - a.rss) / count,
      });
      const stored1 = entries1 - entries0;
      const stored2 = entries2 - entries0;
      if (stored1 !== n || stored2 !== n)
        throw new Error(`stored ${stored1} then ${stored2} of ${n} entries`);
      const rows: MemoryRow[] = [
        {
          phase: 'filled',
          entries: stored1,
          storeBytes: (bytes1 - bytes0) / stored1,
          perEntry: per(base, filled, n),
          gc: gcFill,
          seconds: fillS,
        },
        {
          phase: 'after hits',
          entries: stored2,
          storeBytes: (bytes2 - bytes0) / stored2,
          perEntry: per(base, hit, n),
          gc: gcHits,
          seconds: hitS,
        },
      ];
      const table = formatRows(rows, h.header[0] as string, n);
      const snapshot =
        snapA && snapFilled && snapB
          ? `${snapshotDiff('the fill', snapA, snapFilled, n)}\n\n${snapshotDiff('the hits', snapFilled, snapB, n)}`
          : null;
      return { rows, table, snapshot };
    } finally {
      await sc.close();
      await origin.child.stop();
    }
  });
}

function formatRows(rows: readonly MemoryRow[], machine: string, n: number): string {
  const columns = [
    'phase',
    'entries',
    'store B/e',
    'heap B/e',
    'external B/e',
    'RSS B/e',
    'heap+ext / store',
    'req/s',
    'major GCs',
    'major ms',
    'minor ms',
  ];
  const body = rows.map((r) => [
    r.phase,
    String(r.entries),
    r.storeBytes.toFixed(0),
    r.perEntry.heapUsed.toFixed(0),
    r.perEntry.external.toFixed(0),
    r.perEntry.rss.toFixed(0),
    ((r.perEntry.heapUsed + r.perEntry.external) / r.storeBytes).toFixed(2),
    (r.entries / r.seconds).toFixed(0),
    String(r.gc.majors),
    r.gc.majorMs.toFixed(0),
    r.gc.minorMs.toFixed(0),
  ]);
  return [
    `entry memory: ${machine}`,
    `${n} distinct 32-byte responses stored through the reverse route (in-process sidecache), then each hit once;`,
    'per entry (B/e): deltas after forced GC over the baseline before the fill; store: sidecache_cache_size_bytes;',
    'req/s: of the phase (client, sidecache and this measurement share one process); GCs: during the phase',
    '',
    ...columnLines(columns, body, 0),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      entries: { type: 'string' },
      connections: { type: 'string' },
      snapshot: { type: 'boolean' },
    },
  });
  const entries = Number(values.entries ?? 100_000);
  const connections = Number(values.connections ?? 32);
  if (!Number.isInteger(entries) || entries < 100 || entries > 2_000_000)
    throw new Error(`--entries: "${values.entries}" is not an integer in [100, 2000000]`);
  if (!Number.isInteger(connections) || connections < 1 || connections > 256)
    throw new Error(`--connections: "${values.connections}" is not an integer in [1, 256]`);
  const { table, snapshot } = await measureEntryMemory({
    entries,
    connections,
    snapshot: values.snapshot === true,
  });
  console.log(table);
  if (snapshot) console.log(`\n${snapshot}`);
  process.exit(0);
}
