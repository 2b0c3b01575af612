// `npm run soak -- [--quick]`: a bounded load (wrk on hits and misses, CONNECT tunnels), fuzz
// (malformed requests over raw TCP) and attack (attacks.ts) run against one sidecache process, kept
// apart from `npm test`; then SIGTERM must end it within shutdown.graceMs plus a margin. Only
// 127.0.0.1 traffic; every loop bounded in count and time. What each part checks: bench/README.md
// ("Soak"). Exit status 0 when every check passed, 1 otherwise, 2 for a bad option.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type AttackCount,
  runAttacks,
  runControls,
  startReflectingOrigin,
  startTruncatingOrigin,
} from '../../test/helpers/attacks.js';
import type { Child } from '../harness/children.js';
import { type Harness, integer, UsageError, withHarness } from '../harness/harness.js';
import { type LoadResult, runWrkScript } from '../harness/load.js';
import { cpuSeconds, statusMib } from '../harness/proc.js';
import { startSidecache } from '../targets/sidecache.js';

const USAGE = `usage: npm run soak -- [options]
  --quick            small run (CI): 200 connections for 3 s, 5,000 fuzz requests
  --connections N    wrk connections, split between hits and misses (default 1000)
  --seconds N        load duration, at most 30 (default 20)
  --tunnels N        CONNECT tunnel clients running alongside wrk (default 50; quick 10)
  --pool N           upstream.connectionsPerOrigin for the route (default: the config default, 32)
  --fuzz N           malformed requests (default 100,000; at most 60 s)
  --attacks N        attempts of each attack kind (default 40; quick 10)
  --only load|fuzz|attacks   run one part only
  --help             this text`;
let values: Record<string, string | boolean | undefined>;
try {
  const numeric = ['connections', 'seconds', 'tunnels', 'pool', 'fuzz', 'attacks'] as const;
  ({ values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      only: { type: 'string' },
      ...Object.fromEntries(numeric.map((n) => [n, { type: 'string' as const }])),
    },
  }));
  for (const n of numeric) if (values[n] !== undefined) integer(`--${n}`, values[n] as string, 0, 0, 1e9);
  if (values.only !== undefined && !['load', 'fuzz', 'attacks'].includes(values.only as string))
    throw new UsageError(`--only: "${values.only}" is not load, fuzz or attacks`);
} catch (err) {
  process.stderr.write(`soak: ${(err as Error).message}\n${USAGE}\n`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const QUICK = values.quick === true;
const num = (name: string, full: number, quick: number): number =>
  values[name] !== undefined ? Number(values[name]) : QUICK ? quick : full;
const LOAD = {
  connections: num('connections', 1000, 200),
  seconds: Math.min(30, num('seconds', 20, 3)),
  tunnels: num('tunnels', 50, 10),
};
const FUZZ = { requests: num('fuzz', 100_000, 5_000), seconds: QUICK ? 20 : 60 };
const ATTACKS = num('attacks', 40, 10);
const POOL = values.pool !== undefined ? Number(values.pool) : null;
const ONLY = (values.only as string | undefined) ?? null;
const FUZZ_CONCURRENCY = 64;
/** RSS bound for sidecache after the load, MiB. */
const RSS_LIMIT_MIB = 512;
/** After the load, pooled keep-alive connections to the origin may stay open (up to this many). */
const FD_SLACK = 40;

const failures: string[] = [];
const check = (ok: boolean, what: string): void => {
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'}  ${what}\n`);
  if (!ok) failures.push(what);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startOrigin(): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/hit')) {
      res.writeHead(200, { 'cache-control': 'public, max-age=600', 'content-type': 'text/plain' });
      res.end('hit body\n');
    } else {
      res.writeHead(200, { 'cache-control': 'no-store', 'content-type': 'text/plain' });
      res.end('miss body\n');
    }
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** shutdown.graceMs of the soaked process: after all of it, SIGTERM must end it within this (and a margin). */
const GRACE_MS = 5_000;

/** The attack probes' host on the intercept list (CONNECT to it is decrypted). */
const INTERCEPT_HOST = 'localhost';

/** sidecache from source (tsx), with the soak's routes, interception and limits, logging at info. */
async function startSoaked(
  h: Harness,
  dir: string,
  originPort: number,
  reflectPort: number,
  upgradePort: number,
) {
  const file = join(dir, 'soak.yaml');
  writeFileSync(
    file,
    [
      'log: { access: false }',
      'routes:',
      `  - { name: o, origin: "http://127.0.0.1:${originPort}"${POOL ? `, upstream: { connectionsPerOrigin: ${POOL} }` : ''} }`,
      `  - { name: r, origin: "http://127.0.0.1:${reflectPort}" }`,
      `allow: ["127.0.0.1", "${INTERCEPT_HOST}"]`,
      `intercept: ["${INTERCEPT_HOST}"]`,
      `tls: { caDir: "${join(dir, 'ca')}" }`,
      `egress: { ports: [80, 443, ${upgradePort}] }`,
      'limits: { maxConnectionsPerClient: 5000, headersTimeoutMs: 5000 }',
      `shutdown: { graceMs: ${GRACE_MS} }`,
      '',
    ].join('\n'),
  );
  return startSidecache(h.children, { fromSource: true, logLevel: 'info', serveArgs: ['--config', file] });
}

const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;
const rssMiB = (pid: number): number => statusMib(pid) ?? Number.NaN;

async function normalRequest(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/o/hit`, { signal: AbortSignal.timeout(5_000) });
    return res.status === 200 && (await res.text()) === 'hit body\n';
  } catch {
    return false;
  }
}

/** wrk (two threads) on one path of the soaked process, with its latency percentiles as a line. */
async function wrk(h: Harness, url: string, connections: number, seconds: number) {
  const { load } = await runWrkScript(h, {
    script: 'wrk-report.lua',
    connectUrl: new URL(url).origin,
    connections,
    durationMs: seconds * 1000,
    timeout: '10s',
    threads: 2,
    env: { BENCH_REQUEST_TARGET: new URL(url).pathname, BENCH_HOST: new URL(url).host },
  });
  const ms = (v: number) => `${v.toFixed(2)}ms`;
  return { ...load, latency: `p50 ${ms(load.p50Ms)}, p99 ${ms(load.p99Ms)}, max ${ms(load.maxMs)}` };
}

const summary = (r: LoadResult): string => `socket errors ${r.socketErrors} (timeouts ${r.timeouts})`;

// ---- tunnels -------------------------------------------------------------------------------------

interface TunnelLoadResult {
  tunnels: number;
  requests: number;
  errors: number;
  /** Error kinds and how often each happened. */
  errorKinds: Map<string, number>;
}

/** Requests sent through each tunnel before it is closed and a new one opened. */
const REQUESTS_PER_TUNNEL = 5;

/**
 * `clients` loops, each until the deadline: CONNECT to the origin through sidecache (a blind
 * tunnel: the origin is a route origin, so its port is allowed), then REQUESTS_PER_TUNNEL
 * keep-alive GETs of /hit inside the tunnel, then close. Every wait is bounded (10 s).
 */
async function tunnelLoad(
  proxyPort: number,
  originPort: number,
  clients: number,
  seconds: number,
): Promise<TunnelLoadResult> {
  const r: TunnelLoadResult = { tunnels: 0, requests: 0, errors: 0, errorKinds: new Map() };
  const deadline = Date.now() + seconds * 1000;
  const fail = (kind: string): void => {
    r.errors++;
    r.errorKinds.set(kind, (r.errorKinds.get(kind) ?? 0) + 1);
  };
  const oneTunnel = () =>
    new Promise<void>((resolve) => {
      const socket = connect(proxyPort, '127.0.0.1');
      let buf = '';
      let step = 0; // 0: waiting for the CONNECT answer; n > 0: waiting for response n
      let done = false;
      const finish = (error?: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (error) fail(error);
        socket.destroy();
        resolve();
      };
      let timer = setTimeout(() => finish(step === 0 ? 'connect-timeout' : 'request-timeout'), 10_000);
      const request = (): void => {
        step++;
        buf = '';
        clearTimeout(timer);
        timer = setTimeout(() => finish('request-timeout'), 10_000);
        socket.write(`GET /hit HTTP/1.1\r\nHost: 127.0.0.1:${originPort}\r\n\r\n`);
      };
      socket.on('connect', () =>
        socket.write(`CONNECT 127.0.0.1:${originPort} HTTP/1.1\r\nHost: 127.0.0.1:${originPort}\r\n\r\n`),
      );
      socket.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        if (step === 0) {
          if (!buf.includes('\r\n\r\n')) return;
          if (!buf.startsWith('HTTP/1.1 200')) return finish(`connect-${buf.slice(9, 12)}`);
          r.tunnels++;
          return request();
        }
        // Content-Length or chunked: the response is complete when its body (and last chunk) is in.
        if (!/hit body\n(\r\n0\r\n\r\n)?$/.test(buf)) return;
        if (!buf.startsWith('HTTP/1.1 200')) return finish(`status-${buf.slice(9, 12)}`);
        r.requests++;
        if (step >= REQUESTS_PER_TUNNEL || Date.now() >= deadline) return finish();
        request();
      });
      socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? 'socket-error'));
      socket.on('close', () => finish(step === 0 ? 'closed-before-200' : 'closed-mid-tunnel'));
    });
  const client = async () => {
    while (Date.now() < deadline) await oneTunnel();
  };
  await Promise.all(Array.from({ length: clients }, client));
  return r;
}

/** The kernel's count of connections dropped because a listen queue was full (machine-wide). */
function listenOverflows(): number {
  const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
  const names = lines.find((l) => l.startsWith('TcpExt:'))?.split(/\s+/) ?? [];
  const values = lines.filter((l) => l.startsWith('TcpExt:'))[1]?.split(/\s+/) ?? [];
  const i = names.indexOf('ListenOverflows');
  return i === -1 ? Number.NaN : Number(values[i]);
}

/** Idle and total jiffies of the whole machine, from /proc/stat. */
function machineCpu(): { idle: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] as string;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  return { idle: (v[3] ?? 0) + (v[4] ?? 0), total: v.reduce((a, b) => a + b, 0) };
}

/** Event-loop delay p99 and max of sidecache since the previous scrape (prom-client resets it). */
async function loopLag(admin: string): Promise<string> {
  try {
    const text = await (await fetch(`${admin}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    const get = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? Number.NaN);
    const ms = (x: number) => `${(x * 1000).toFixed(0)} ms`;
    return `p99 ${ms(get('nodejs_eventloop_lag_p99_seconds'))}, max ${ms(get('nodejs_eventloop_lag_max_seconds'))}; origin connections opened ${get('sidecache_upstream_connections_opened_total\\{origin="[^"]+"\\}')}`;
  } catch (err) {
    return `unknown (${String(err)})`;
  }
}

// ---- fuzz ---------------------------------------------------------------------------------------

/** mulberry32: a small seeded PRNG, so a failing run can be repeated with the same inputs. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeFuzzer(seed: number): () => Buffer {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));
  const token = () =>
    Array.from({ length: 1 + Math.floor(rnd() * 10) }, () =>
      pick([...'ABCDEFGHIJKLMNOPQRSTUVWXYZ-_!~']),
    ).join('');
  const methods = [
    'GET',
    'POST',
    'PUT',
    'HEAD',
    'DELETE',
    'CONNECT',
    'OPTIONS',
    'TRACE',
    'PATCH',
    'get',
    'G ET',
    '',
  ];
  const targets = [
    '/o/hit',
    '/o/miss',
    '/o/../etc',
    '/o/%2e%2e/x',
    '*',
    'http://127.0.0.1/o/hit',
    '127.0.0.1:443',
    '/o/\\..\\x',
    `/${'a'.repeat(9000)}`,
    '',
  ];
  const versions = ['HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9.9', 'HTTP/1.1 extra', 'HTTTP/1.1', ''];
  const badNames = ['Bad Name', 'X:Y', 'X\x00', '\x7fX', 'Ä', '', ' Host', 'Host '];
  const badValues = ['a\x00b', 'a\rb', 'a\nb', '\x7f', 'x'.repeat(20_000)];
  const framing = [
    ['Content-Length: 5', 'Transfer-Encoding: chunked'],
    ['Content-Length: 5', 'Content-Length: 6'],
    ['Content-Length: -1'],
    ['Content-Length: 1e3'],
    ['Transfer-Encoding: chunked', 'Transfer-Encoding: identity'],
    ['Transfer-Encoding: xchunked'],
    ['Transfer-Encoding : chunked'],
    ['Transfer-Encoding: chunked'],
    ['Content-Length: 99999999999999999999'],
  ];
  const bodies = [
    '',
    'hello',
    '5\r\nhello\r\n0\r\n\r\n',
    'zz\r\nhello\r\n0\r\n\r\n',
    '5\r\nhel',
    'ffffffffffffffff\r\n',
  ];
  const valid = () => `${pick(methods)} ${pick(targets)} ${pick(versions)}\r\nHost: 127.0.0.1\r\n\r\n`;
  return () => {
    switch (Math.floor(rnd() * 7)) {
      case 0: // random method, target and version
        return Buffer.from(`${token()} ${pick(targets)} ${pick(versions)}\r\nHost: x\r\n\r\n`);
      case 1: // broken request line
        return Buffer.from(
          pick([
            `${pick(methods)}\r\n\r\n`,
            `GET  /o/hit  HTTP/1.1\r\n\r\n`,
            `GET /o/hit HTTP/1.1\n\n`,
            `\r\n\r\nGET /o/hit HTTP/1.1\r\n\r\n`,
            `${bytes(40).toString('latin1')}\r\n\r\n`,
          ]),
        );
      case 2: // invalid header names and values, obs-fold, two Hosts
        return Buffer.from(
          `GET /o/hit HTTP/1.1\r\nHost: 127.0.0.1\r\n${pick([`${pick(badNames)}: v`, `X-A: ${pick(badValues)}`, 'X-A: a\r\n folded', 'Host: other'])}\r\n\r\n`,
          'latin1',
        );
      case 3: // CL/TE combinations
        return Buffer.from(
          `POST /o/miss HTTP/1.1\r\nHost: 127.0.0.1\r\n${pick(framing).join('\r\n')}\r\n\r\n${pick(bodies)}`,
        );
      case 4: {
        // truncation of an otherwise plausible request
        const whole = Buffer.from(
          `POST /o/miss HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n0123456789`,
        );
        return whole.subarray(0, Math.floor(rnd() * whole.length));
      }
      case 5: // random bytes
        return bytes(1 + Math.floor(rnd() * 200));
      default: // a valid-looking request built from the pieces (pipelined twice)
        return Buffer.from(valid() + valid());
    }
  };
}

interface FuzzResult {
  sent: number;
  answered: number;
  closedSilently: number;
  timedOut: number;
  errors: number;
  byStatus: Map<string, number>;
  /** Inputs that got a 5xx, by distinct answer (status line + reason; a small set), with one input each. */
  serverErrors: Map<string, { count: number; payload: Buffer; answer: string }>;
  elapsedMs: number;
}

async function fuzz(port: number, count: number, seconds: number): Promise<FuzzResult> {
  const next = makeFuzzer(0x5eed);
  const deadline = Date.now() + seconds * 1000;
  const r: FuzzResult = {
    sent: 0,
    answered: 0,
    closedSilently: 0,
    timedOut: 0,
    errors: 0,
    byStatus: new Map(),
    serverErrors: new Map(),
    elapsedMs: 0,
  };
  const started = Date.now();
  const one = (payload: Buffer) =>
    new Promise<void>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let head = '';
      let errored = false;
      socket.setTimeout(2_000, () => {
        r.timedOut++;
        socket.destroy();
      });
      socket.on('connect', () => socket.end(payload));
      socket.on('data', (d: Buffer) => {
        if (head.length < 1000) head += d.toString('latin1', 0, 1000);
      });
      socket.on('error', () => {
        errored = true;
      });
      socket.on('close', () => {
        const status = /^HTTP\/1\.[01] (\d)\d\d/.exec(head)?.[1];
        if (status) {
          r.answered++;
          r.byStatus.set(`${status}xx`, (r.byStatus.get(`${status}xx`) ?? 0) + 1);
          if (status === '5') {
            const line = head.split('\r\n', 1)[0] ?? '';
            const reason = /"reason":"([a-z_]+)"/.exec(head)?.[1] ?? '-';
            const key = `${line} reason=${reason}`;
            const seen = r.serverErrors.get(key);
            if (seen) seen.count++;
            else r.serverErrors.set(key, { count: 1, payload, answer: head });
          }
        } else if (errored) r.errors++;
        else r.closedSilently++;
        resolve();
      });
    });
  const worker = async () => {
    while (r.sent < count && Date.now() < deadline) {
      r.sent++;
      await one(next());
    }
  };
  await Promise.all(Array.from({ length: FUZZ_CONCURRENCY }, worker));
  r.elapsedMs = Date.now() - started;
  return r;
}

// ---- main ---------------------------------------------------------------------------------------

async function main(h: Harness): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-soak-'));
  const origin = await startOrigin();
  const originPort = (origin.address() as AddressInfo).port;
  const reflecting = await startReflectingOrigin();
  const truncating = await startTruncatingOrigin();
  let sc: Awaited<ReturnType<typeof startSoaked>> | null = null;
  try {
    sc = await startSoaked(h, dir, originPort, reflecting.port, truncating.port);
    const pid = sc.child.pid;
    process.stdout.write(
      `soak (${QUICK ? 'quick' : 'full'}): sidecache pid ${pid} at ${sc.url}, origin 127.0.0.1:${originPort}\n`,
    );
    check(await normalRequest(sc.url), 'warm-up request served');
    await sleep(200);
    const fdBefore = fdCount(pid);
    const rssBefore = rssMiB(pid);

    if (ONLY === null || ONLY === 'load') {
      // (a) load: wrk on a cached path and an uncached one, and CONNECT tunnels, all at once.
      const wrkConnections = Math.max(2, LOAD.connections);
      const half = Math.floor(wrkConnections / 2);
      process.stdout.write(
        `load: ${wrkConnections} wrk connections for ${LOAD.seconds} s (hits + misses), ${LOAD.tunnels} tunnel clients` +
          `${POOL ? `, pool ${POOL}` : ''}\n`,
      );
      await loopLag(sc.adminUrl); // resets the event-loop delay histogram
      const machineBefore = machineCpu();
      const overflowsBefore = listenOverflows();
      const cpuBefore = cpuSeconds(pid) ?? Number.NaN;
      const selfBefore = process.cpuUsage();
      const t0 = Date.now();
      const [hits, misses, tunnels] = await Promise.all([
        wrk(h, `${sc.url}/o/hit`, half, LOAD.seconds),
        wrk(h, `${sc.url}/o/miss`, wrkConnections - half, LOAD.seconds),
        tunnelLoad(Number(new URL(sc.url).port), originPort, LOAD.tunnels, LOAD.seconds),
      ]);
      const wall = (Date.now() - t0) / 1000;
      const machineAfter = machineCpu();
      const busy =
        1 - (machineAfter.idle - machineBefore.idle) / Math.max(1, machineAfter.total - machineBefore.total);
      const lag = await loopLag(sc.adminUrl);
      const overflows = listenOverflows() - overflowsBefore;
      const self = process.cpuUsage(selfBefore);
      const rssAfter = rssMiB(pid);
      process.stdout.write(
        `load: hits ${hits.requests} req (${(hits.requests / LOAD.seconds).toFixed(0)}/s; ${hits.latency}; ${summary(hits)}, non-2xx ${hits.non2xx})\n` +
          `load: misses ${misses.requests} req (${(misses.requests / LOAD.seconds).toFixed(0)}/s; ${misses.latency}; ${summary(misses)}, non-2xx ${misses.non2xx})\n` +
          `load: tunnels ${tunnels.tunnels} opened, ${tunnels.requests} requests through them, errors ${tunnels.errors}` +
          `${tunnels.errors > 0 ? ` (${[...tunnels.errorKinds].map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}\n` +
          `load: CPU over ${wall.toFixed(1)} s: sidecache ${((((cpuSeconds(pid) ?? Number.NaN) - cpuBefore) / wall) * 100).toFixed(0)}%, ` +
          `origin + tunnel clients ${(((self.user + self.system) / 1e6 / wall) * 100).toFixed(0)}% (100% = one core); ` +
          `whole machine ${(busy * 100).toFixed(0)}% busy\n` +
          `load: sidecache event-loop delay during the load: ${lag}\n` +
          `load: listen-queue overflows (kernel, machine-wide) during the load: ${overflows}\n`,
      );
      check(hits.requests > 0 && misses.requests > 0, 'load generator got answers on both paths');
      check(tunnels.tunnels > 0 && tunnels.requests > 0, 'tunnels opened and carried requests');
      check(
        hits.socketErrors + misses.socketErrors === 0,
        `no socket errors (${hits.socketErrors + misses.socketErrors})`,
      );
      check(hits.non2xx + misses.non2xx === 0, `no non-2xx answers (${hits.non2xx + misses.non2xx})`);
      check(tunnels.errors === 0, `no tunnel errors (${tunnels.errors})`);
      check(
        rssAfter < RSS_LIMIT_MIB,
        `RSS ${rssBefore.toFixed(0)} MiB before, ${rssAfter.toFixed(0)} MiB after load (limit ${RSS_LIMIT_MIB})`,
      );
      let fdAfter = fdCount(pid);
      for (let i = 0; i < 50 && fdAfter > fdBefore + FD_SLACK; i++) {
        await sleep(200);
        fdAfter = fdCount(pid);
      }
      check(
        fdAfter <= fdBefore + FD_SLACK,
        `open fds ${fdBefore} before, ${fdAfter} after load (slack ${FD_SLACK} for pooled origin connections)`,
      );
    }

    if (ONLY === null || ONLY === 'fuzz') {
      // (b) fuzz
      process.stdout.write(`fuzz: up to ${FUZZ.requests} malformed requests, at most ${FUZZ.seconds} s\n`);
      const f = await fuzz(Number(new URL(sc.url).port), FUZZ.requests, FUZZ.seconds);
      const statuses = [...f.byStatus]
        .sort()
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      process.stdout.write(
        `fuzz: ${f.sent} sent in ${(f.elapsedMs / 1000).toFixed(1)} s; answered ${f.answered} (${statuses}); closed without answer ${f.closedSilently}; client timeouts ${f.timedOut}; socket errors ${f.errors}\n`,
      );
      for (const [key, e] of f.serverErrors) {
        process.stdout.write(
          `fuzz 5xx: ${key} x${e.count}; e.g. input ${JSON.stringify(e.payload.toString('latin1').slice(0, 300))}\n` +
            `          answer ${JSON.stringify(e.answer.slice(0, 600))}\n`,
        );
      }
      // A 5xx is acceptable only when it is the upstream's doing (a well-formed CONNECT or request to
      // an allowed host:port where nothing listens): a malformed request must get a 4xx.
      const ours = [...f.serverErrors.keys()].filter((k) => !/reason=(upstream_|dns_error)/.test(k));
      check(
        ours.length === 0,
        `every 5xx names an upstream failure (${ours.length > 0 ? ours.join('; ') : `${f.byStatus.get('5xx') ?? 0} 5xx, all upstream`})`,
      );
      check(!sc.child.hasExited(), 'sidecache still running after the fuzz');
      check(
        !/uncaught|unhandled/i.test(sc.child.output()),
        'no uncaught exception or unhandled rejection logged',
      );
      check(await normalRequest(sc.url), 'a normal request is served correctly after the fuzz');
      await sleep(500);
      const fdEnd = fdCount(pid);
      check(fdEnd <= fdBefore + FD_SLACK, `open fds ${fdEnd} after the fuzz (baseline ${fdBefore})`);
    }
    if (ONLY === null || ONLY === 'attacks') {
      // (c) attacks
      process.stdout.write(`attacks: ${ATTACKS} attempts of each kind\n`);
      const targets = {
        proxyPort: Number(new URL(sc.url).port),
        adminUrl: sc.adminUrl,
        reflectRoute: '/r',
        reflectPort: reflecting.port,
        interceptHost: INTERCEPT_HOST,
        upgradePort: truncating.port,
        routeName: 'o',
      };
      const counts = await runAttacks(targets, truncating.seen, {
        forwarding: ATTACKS,
        sni: ATTACKS,
        admin: ATTACKS,
        upgrade: ATTACKS,
      });
      for (const control of await runControls(targets, truncating.seen))
        check(control.ok, `control: ${control.what}`);
      reportAttacks(counts);
      const through = counts.reduce((n, c) => n + c.through, 0);
      check(through === 0, `no attack got through (${through})`);
      check(!sc.child.hasExited(), 'sidecache still running after the attacks');
      check(await normalRequest(sc.url), 'a normal request is served correctly after the attacks');
    }
    process.stdout.write(`RSS at the end ${rssMiB(pid).toFixed(0)} MiB\n`);
  } finally {
    if (sc) {
      const stopped = await stop(sc.child);
      if (stopped !== null) {
        check(
          stopped.code === 0 && stopped.ms < GRACE_MS + 2_000,
          `SIGTERM after the soak: exited with ${stopped.code ?? stopped.signal} in ${stopped.ms} ms (graceMs ${GRACE_MS}); ${stoppedLine(sc.child.output())}`,
        );
      }
    }
    await reflecting.close();
    await truncating.close();
    origin.closeAllConnections();
    origin.close();
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(
    failures.length === 0 ? 'soak: all checks passed\n' : `soak: ${failures.length} check(s) failed\n`,
  );
  process.exit(failures.length === 0 ? 0 : 1);
}

function reportAttacks(counts: AttackCount[]): void {
  const sum = (k: 'tried' | 'refused' | 'contained' | 'through') => counts.reduce((n, c) => n + c[k], 0);
  for (const c of counts) {
    process.stdout.write(
      `attacks: ${c.name}: tried ${c.tried}, refused ${c.refused}` +
        `${c.contained > 0 ? `, contained ${c.contained}` : ''}, got through ${c.through}\n`,
    );
    for (const e of c.examples) process.stdout.write(`attacks:   through: ${e}\n`);
  }
  process.stdout.write(
    `attacks: tried ${sum('tried')}, refused ${sum('refused')}, contained ${sum('contained')}, got through ${sum('through')}\n`,
  );
}

/** What the process said when it stopped: exchanges abandoned, whether it had to force. */
function stoppedLine(output: string): string {
  const line = output.split('\n').find((l) => l.includes('"sidecache stopped"'));
  if (!line) return 'no "sidecache stopped" line';
  const { abandoned, forced, destroyed } = JSON.parse(line) as Record<string, unknown>;
  return `abandoned ${abandoned}, forced ${forced}, connections destroyed ${destroyed}`;
}

/** SIGTERM, then SIGKILL after 15 s; how it ended (null when it had already exited). */
async function stop(
  child: Child,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number } | null> {
  if (child.hasExited()) return null;
  const started = Date.now();
  await child.stop(15_000);
  return { ...(await child.exited), ms: Date.now() - started };
}

withHarness({ pin: false }, main).catch((err: unknown) => {
  process.stderr.write(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
