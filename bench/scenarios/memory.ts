// `npm run bench:memory`: does sidecache stay inside the memory it is given? With
// `cache.maxSizeBytes` = 32 MiB (`--cap-mib`), each fill sends distinct cacheable responses through
// a fresh process (the ordinary miss-and-store path of a reverse route to the bench origin) and
// reads that process's peak RSS (VmHWM) and its RSS and entry count at the end, beside Varnish with
// `-s malloc,32m` (its cache worker process) as the anchor. Then: idle RSS right after start, and
// RSS after a cache-hit load on one 2 KiB entry against a bare node:http server serving the same
// bytes, with the same load in the same run; beside each row, the CPU the process used per request
// (from /proc: noisy on a shared machine, unlike RSS). With `--tiers` the idle row and each fill
// are repeated with the Redis and memcached tiers on (where redis-server / memcached are installed).
// See docs/BENCHMARKS.md ("Memory").
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LISTENING_PREFIX, parseListening } from '../harness/child-contract.js';
import { type Child, READY_TIMEOUT_MS } from '../harness/children.js';
import { type Harness, metric, runScript, withConfigFile } from '../harness/harness.js';
import { sendEach } from '../harness/load.js';
import { cpuSeconds, statusMib } from '../harness/proc.js';
import { columnLines, fixed } from '../harness/report.js';
import { findBinary, startTierServer, startVarnish } from '../targets/caches.js';
import { startOrigin, type TargetContext } from '../targets/index.js';
import { ROUTE_NAME } from '../targets/route-table.js';
import { launcherLine, sidecacheBuildLabel, startSidecache } from '../targets/sidecache.js';

const MiB = 1024 * 1024;

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'cap-mib': { type: 'string', default: '32' },
    'hit-seconds': { type: 'string' },
    tiers: { type: 'boolean', default: false },
    'no-varnish': { type: 'boolean', default: false },
    only: { type: 'string' },
    json: { type: 'string', default: 'bench/results/memory.json' },
    'no-launcher-flags': { type: 'boolean', default: false },
    'node-flags': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(
    'npm run bench:memory [-- --quick] [--cap-mib 32] [--hit-seconds 15] [--tiers] [--no-varnish] [--only 8k,512,mix,idle,hit] [--json PATH] [--no-launcher-flags | --node-flags="FLAGS"]',
  );
  process.exit(0);
}
const quick = values.quick;
const capBytes = Math.round(Number(values['cap-mib']) * MiB);
const hitMs = Number(values['hit-seconds'] ?? (quick ? 3 : 15)) * 1000;
const only = values.only === undefined ? null : new Set(values.only.split(','));
const scale = quick ? 0.1 : 1;

/**
 * The bench runs sidecache as the installed command does (launcherLine: the CLI's first line);
 * neither its environment nor its flags with --no-launcher-flags; --node-flags replaces the flags alone.
 */
function launcher(): { env: Record<string, string>; flags: string[] } {
  if (values['no-launcher-flags'] && values['node-flags'] === undefined) return { env: {}, flags: [] };
  const line = launcherLine();
  const words = (text: string): string[] => text.split(/\s+/).filter((w) => w !== '');
  return {
    env: values['no-launcher-flags'] ? {} : line.env,
    flags: values['node-flags'] !== undefined ? words(values['node-flags']) : line.flags,
  };
}
const { env: launcherEnv, flags: nodeArgs } = launcher();

interface Fill {
  readonly name: string;
  readonly description: string;
  readonly count: number;
  /** Body bytes of response i. */
  readonly bytes: (i: number) => number;
}

const FILLS: readonly Fill[] = [
  { name: '8k', description: 'distinct 8 KiB', count: Math.round(40_000 * scale), bytes: () => 8192 },
  { name: '512', description: 'distinct 512 B', count: Math.round(150_000 * scale), bytes: () => 512 },
  {
    name: 'mix',
    description: 'mix: 1 in 8 is 1 MiB, the rest 8 KiB and 64 KiB',
    count: Math.round(4_000 * scale),
    bytes: (i) => (i % 8 === 0 ? MiB : i % 2 === 0 ? 65_536 : 8192),
  },
];
const FILL_CONCURRENCY = 16;
/**
 * A fill may take 30 s plus this long per 1,000 responses and per MiB sent before it is cut short
 * (a failure): generous, so that a loaded machine slows a fill without failing it.
 */
const FILL_MS_PER_1000 = 10_000;
const FILL_MS_PER_MIB = 100;
const HIT_CONNECTIONS = 32;
const HIT_BYTES = 2048;
const IDLE_SETTLE_MS = 2_000;

interface Row {
  readonly test: string;
  readonly target: string;
  readonly sent: number | null;
  readonly entries: number | null;
  readonly peakRssMib: number | null;
  readonly endRssMib: number | null;
  /** CPU time the process used per request (the fill's or the hit load's), in µs; null if unknown. */
  readonly cpuUsPerReq: number | null;
  readonly note: string;
}

/** Runs `body`, which sends `requests(result)` requests, and the CPU µs `pid` used per request. */
async function cpuPerRequest<T>(
  pid: number,
  body: () => Promise<T>,
  requests: (r: T) => number,
): Promise<{ result: T; cpuUsPerReq: number | null }> {
  const before = cpuSeconds(pid);
  const result = await body();
  const after = cpuSeconds(pid);
  const n = requests(result);
  return {
    result,
    cpuUsPerReq: before === null || after === null || n === 0 ? null : ((after - before) * 1e6) / n,
  };
}

function configYaml(extra = ''): string {
  return `cache:\n  maxSizeBytes: ${capBytes}\n  maxEntryBytes: ${2 * MiB}\n${extra}`;
}

/** Sends GET /origin/sized/BYTES/RUN-i for every i of the fill to `url`; bounded in time. */
function fillTarget(url: string, fill: Fill): Promise<number> {
  const run = Date.now().toString(36);
  return sendEach(url, fill.count, (i) => `/${ROUTE_NAME}/sized/${fill.bytes(i)}/${run}-${i}`, {
    concurrency: FILL_CONCURRENCY,
    deadline:
      Date.now() +
      30_000 +
      (fill.count / 1000) * FILL_MS_PER_1000 +
      (fillBytes(fill) / MiB) * FILL_MS_PER_MIB,
  });
}

function fillBytes(fill: Fill): number {
  let bytes = 0;
  for (let i = 0; i < fill.count; i++) bytes += fill.bytes(i);
  return bytes;
}

/** `varnishstat` MAIN.n_object of the instance in `workDir`, or null. */
function varnishObjects(workDir: string): Promise<number | null> {
  const bin = findBinary('varnishstat');
  if (bin === null) return Promise.resolve(null);
  return new Promise((resolve) => {
    execFile(bin, ['-n', workDir, '-1', '-f', 'MAIN.n_object'], { timeout: 10_000 }, (_err, out) => {
      const m = /MAIN\.n_object\s+(\d+)/.exec(String(out));
      resolve(m ? Number(m[1]) : null);
    });
  });
}

const sidecacheEntries = (adminUrl: string) => metric(adminUrl, 'sidecache_cache_entries');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function stopped<T>(child: Child, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } finally {
    await child.stop();
  }
}

/** A fresh sidecache with the cap (and `extra` config under `cache:`) for `body`, stopped afterwards. */
function withSidecache<T>(
  ctx: TargetContext,
  extra: string,
  body: (sc: { url: string; adminUrl: string; child: Child }) => Promise<T>,
): Promise<T> {
  return withConfigFile(configYaml(extra), async (path) => {
    const sc = await startSidecache(ctx.children, {
      origin: ctx.origin.url,
      nodeArgs,
      env: launcherEnv,
      serveArgs: ['--config', path],
    });
    return stopped(sc.child, () => body(sc));
  });
}

/** Peak and current RSS of one process. */
const rss = (pid: number) => ({ peakRssMib: statusMib(pid, 'VmHWM'), endRssMib: statusMib(pid) });

function sidecacheFill(ctx: TargetContext, fill: Fill, label: string, extra = ''): Promise<Row> {
  return withSidecache(ctx, extra, async (sc) => {
    const { result: sent, cpuUsPerReq } = await cpuPerRequest(
      sc.child.pid,
      () => fillTarget(sc.url, fill),
      (n) => n,
    );
    const entries = await sidecacheEntries(sc.adminUrl);
    return {
      test: fill.description,
      target: label,
      sent,
      entries,
      ...rss(sc.child.pid),
      cpuUsPerReq,
      note: '',
    };
  });
}

async function varnishFill(ctx: TargetContext, fill: Fill): Promise<Row> {
  const v = await startVarnish(ctx.children, ctx.origin.url, `${Math.round(capBytes / MiB)}m`);
  return stopped(v.child, async () => {
    const { result: sent, cpuUsPerReq } = await cpuPerRequest(
      v.child.pid,
      () => fillTarget(v.url, fill),
      (n) => n,
    );
    const entries = await varnishObjects(join(v.dir, 'work'));
    const target = `varnish -s malloc,${Math.round(capBytes / MiB)}m`;
    return {
      test: fill.description,
      target,
      sent,
      entries,
      ...rss(v.child.pid),
      cpuUsPerReq,
      note: 'cache worker process',
    };
  });
}

function sidecacheIdle(ctx: TargetContext, label: string, extra = ''): Promise<Row> {
  return withSidecache(ctx, extra, async (sc) => {
    await sleep(IDLE_SETTLE_MS);
    return {
      test: 'idle after start',
      target: label,
      sent: null,
      entries: null,
      ...rss(sc.child.pid),
      cpuUsPerReq: null,
      note: '',
    };
  });
}

/**
 * The reference: a bare node:http server answering every request with the same 2 KiB from memory,
 * in plain JavaScript (bench/targets/bare-node.ts runs through tsx, whose loader alone adds about
 * 30 MiB of RSS), with no flags.
 */
const BARE_NODE_JS = `
const http = require('node:http');
const body = Buffer.alloc(${HIT_BYTES}, 0x61);
const headers = { 'content-type': 'application/octet-stream', 'content-length': String(body.length), 'cache-control': 'public, max-age=3600' };
const server = http.createServer((req, res) => { res.writeHead(200, headers); res.end(req.method === 'HEAD' ? undefined : body); });
server.listen(0, '127.0.0.1', () => process.stdout.write(${JSON.stringify(LISTENING_PREFIX)} + JSON.stringify({ port: server.address().port }) + '\\n'));
process.stdin.on('end', () => process.exit(0)).resume();
process.on('SIGTERM', () => process.exit(0));
`;

async function startBareNode(ctx: TargetContext): Promise<{ url: string; child: Child }> {
  const child = ctx.children.spawn({
    label: 'bare-node',
    command: process.execPath,
    args: ['-e', BARE_NODE_JS],
  });
  const port = await child.waitForLine(parseListening, READY_TIMEOUT_MS).catch(async (err: Error) => {
    await child.stop();
    throw new Error(`${err.message}\n${child.outputTail()}`);
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

/** The hit load on `url`: its req/s, and the CPU µs per request of `pid` (the process that served). */
async function hitLoad(
  h: Harness,
  pid: number,
  url: string,
  target: string,
  requestTarget: string,
): Promise<{ rps: string; cpuUsPerReq: number | null }> {
  const { result: r, cpuUsPerReq } = await cpuPerRequest(
    pid,
    () =>
      h.load.run({
        request: { connectUrl: url, requestTarget, host: new URL(url).host },
        connections: HIT_CONNECTIONS,
        durationMs: hitMs,
      }),
    (res) => res.requests,
  );
  if (r.non2xx > 0 || r.socketErrors > 0)
    throw new Error(`hit load on ${target}: ${r.non2xx} non-2xx, ${r.socketErrors} socket errors`);
  return { rps: `${fixed(r.rps, 0)} req/s`, cpuUsPerReq };
}

async function hitRows(h: Harness, ctx: TargetContext): Promise<Row[]> {
  const path = `/sized/${HIT_BYTES}/hot`;
  const test = `after ${hitMs / 1000} s hit load, one 2 KiB entry`;
  const bare = await startBareNode(ctx);
  const bareRow = await stopped(bare.child, async () => {
    const idle = statusMib(bare.child.pid);
    const { rps, cpuUsPerReq } = await hitLoad(h, bare.child.pid, bare.url, 'bare-node', path);
    const note = `${rps}; idle ${fixed(idle ?? 0, 1)} MiB`;
    const target = 'bare node:http';
    return { test, target, sent: null, entries: null, ...rss(bare.child.pid), cpuUsPerReq, note };
  });
  const scRow = await withSidecache(ctx, '', async (sc) => {
    const warm = await fetch(`${sc.url}/${ROUTE_NAME}${path}`, { signal: AbortSignal.timeout(5000) });
    await warm.arrayBuffer();
    const idle = statusMib(sc.child.pid);
    const { rps, cpuUsPerReq } = await hitLoad(h, sc.child.pid, sc.url, 'sidecache', `/${ROUTE_NAME}${path}`);
    const note = `${rps}; idle ${fixed(idle ?? 0, 1)} MiB`;
    const entries = await sidecacheEntries(sc.adminUrl);
    return { test, target: 'sidecache', sent: null, entries, ...rss(sc.child.pid), cpuUsPerReq, note };
  });
  const ratio =
    scRow.endRssMib !== null && bareRow.endRssMib !== null ? scRow.endRssMib / bareRow.endRssMib : null;
  return [bareRow, { ...scRow, note: `${scRow.note}; ${ratio === null ? '?' : fixed(ratio, 2)}x bare` }];
}

/** `body` beside a fresh Redis or memcached server (redis-server / memcached), sidecache's tier. */
async function withTier<T>(
  ctx: TargetContext,
  kind: 'redis' | 'memcached',
  body: (label: string, extra: string) => Promise<T>,
): Promise<T> {
  const tier = await startTierServer(ctx.children, kind);
  const extra =
    kind === 'redis'
      ? `  redis:\n    url: redis://127.0.0.1:${tier.port}\n`
      : `  memcached:\n    servers: ["127.0.0.1:${tier.port}"]\n`;
  return stopped(tier.child, () => body(`sidecache + ${kind} tier`, extra));
}

function table(rows: readonly Row[]): string {
  const cap = capBytes / MiB;
  const over = (v: number | null): string =>
    v === null ? '-' : `${v - cap >= 0 ? '+' : ''}${fixed(v - cap, 0)}`;
  return columnLines(
    [
      'test',
      'target',
      'sent',
      'entries',
      'peak RSS MiB',
      'peak - cap',
      'RSS at end MiB',
      'CPU µs/req',
      'note',
    ],
    rows.map((r) => [
      r.test,
      r.target,
      r.sent === null ? '-' : String(r.sent),
      r.entries === null ? '-' : String(r.entries),
      r.peakRssMib === null ? '-' : fixed(r.peakRssMib, 1),
      r.test.startsWith('distinct') || r.test.startsWith('mix') ? over(r.peakRssMib) : '-',
      r.endRssMib === null ? '-' : fixed(r.endRssMib, 1),
      r.cpuUsPerReq === null ? '-' : fixed(r.cpuUsPerReq, 0),
      r.note,
    ]),
    2,
  ).join('\n');
}

await runScript({ pin: false, json: values.json }, async (h) => {
  const ctx: TargetContext = { children: h.children, origin: await startOrigin(h.children) };
  const want = (name: string): boolean => only === null || only.has(name);
  const withVarnish = !values['no-varnish'] && findBinary('varnishd') !== null;
  const rows: Row[] = [];
  const failures: string[] = [];
  const attempt = async (what: string, run: () => Promise<Row | Row[]>): Promise<void> => {
    try {
      const r = await run();
      rows.push(...(Array.isArray(r) ? r : [r]));
      process.stderr.write(`done: ${what}\n`);
    } catch (err) {
      failures.push(`${what}: ${(err as Error).message}`);
      process.stderr.write(`FAILED: ${what}: ${(err as Error).message}\n`);
    }
  };
  if (want('idle')) await attempt('idle', () => sidecacheIdle(ctx, 'sidecache'));
  for (const fill of FILLS) {
    if (!want(fill.name)) continue;
    await attempt(`${fill.name} sidecache`, () => sidecacheFill(ctx, fill, 'sidecache'));
    if (withVarnish) await attempt(`${fill.name} varnish`, () => varnishFill(ctx, fill));
  }
  if (want('hit')) await attempt('hit', () => hitRows(h, ctx));
  if (values.tiers) {
    for (const kind of ['redis', 'memcached'] as const) {
      if (want('idle'))
        await attempt(`${kind} idle`, () =>
          withTier(ctx, kind, (label, extra) => sidecacheIdle(ctx, label, extra)),
        );
      for (const fill of FILLS.filter((f) => want(f.name)))
        await attempt(`${kind} ${fill.name}`, () =>
          withTier(ctx, kind, (label, extra) => sidecacheFill(ctx, fill, label, extra)),
        );
    }
  }
  const header = [
    ...h.header,
    `cache cap ${capBytes / MiB} MiB (sidecache cache.maxSizeBytes, varnish -s malloc); fills with ${FILL_CONCURRENCY} connections; sidecache ${sidecacheBuildLabel()}, launcher environment: ${
      Object.entries(launcherEnv)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ') || 'none'
    }, node flags: ${nodeArgs.join(' ') || 'none'}${quick ? '; --quick: a tenth of each fill' : ''}`,
    ...(withVarnish ? [] : ['varnish: not installed or --no-varnish (apt-get install -y varnish)']),
  ];
  const text = [...header, '', table(rows), ...(failures.length ? ['', 'FAILED:', ...failures] : [])].join(
    '\n',
  );
  return { table: text, results: { capBytes, rows, failures }, failed: failures.length > 0 };
});
