// `npm run bench:accept`: how fast a saturated Node server accepts new connections, by way of
// accepting (bench/accept/server.ts: inline, acceptors N, cluster). For each mode: wrk holds
// --connections keep-alive connections busy for --seconds; after --burst-after seconds, --burst
// new connections are opened at once, each sends one request (Connection: close); the table
// shows how long each waited for the first byte of its answer (connect + accept + serve), how
// many were answered within wrk's default timeout (2 s) and at all (within 10 s), and wrk's rate
// and timeouts. Every run is bounded (at most 30 s); only 127.0.0.1.
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { loadavg } from 'node:os';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type Child, startNodeServer } from '../harness/children.js';
import { type Harness, withHarness } from '../harness/harness.js';
import { cpuSeconds } from '../harness/proc.js';

const { values } = parseArgs({
  options: {
    modes: { type: 'string', default: 'inline,acceptors:8,cluster' },
    connections: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '12' },
    'burst-after': { type: 'string', default: '3' },
    burst: { type: 'string', default: '300' },
    rounds: { type: 'string', default: '1' },
    churn: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    'usage: npm run bench:accept -- [--modes inline,acceptors:8,cluster] [--connections 1000] [--seconds 12]\n' +
      '       [--burst-after 3] [--burst 300] [--rounds 1]   (env ACCEPT_BENCH_BUSY_US, default 100)\n' +
      '       [--churn]  instead: server CPU per request, 5 s per mode, for one client with a new\n' +
      '                  connection per request (wrk -c1, Connection: close) and for 32 keep-alive ones\n',
  );
  process.exit(0);
}
const CONNECTIONS = Number(values.connections);
const SECONDS = Math.min(30, Number(values.seconds));
const BURST_AFTER_MS = Math.min(SECONDS - 1, Number(values['burst-after'])) * 1000;
const BURST = Math.min(2000, Number(values.burst));
const ROUNDS = Math.min(5, Number(values.rounds));
const ANSWER_TIMEOUT_MS = 10_000;
const WRK_DEFAULT_TIMEOUT_MS = 2_000;
const SERVER = fileURLToPath(new URL('../targets/accept-server.ts', import.meta.url));

/** The accept server in `mode` (`inline`, `acceptors:N`, `cluster`), stopped after `body`. */
async function withServer<T>(
  h: Harness,
  mode: string,
  body: (child: Child, port: number) => Promise<T>,
): Promise<T> {
  const [kind = 'inline', count = '8'] = mode.split(':');
  const { url, child } = await startNodeServer(h.children, mode, SERVER, ['--mode', kind, '--count', count]);
  try {
    return await body(child, Number(new URL(url).port));
  } finally {
    await child.stop();
  }
}

/** Milliseconds from connect() to the first byte of the answer, or null (error or 10 s). */
function oneRequest(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const start = performance.now();
    const socket = connect({ port, host: '127.0.0.1' });
    const done = (ms: number | null): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ms);
    };
    const timer = setTimeout(() => done(null), ANSWER_TIMEOUT_MS);
    socket.once('connect', () => socket.write('GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n'));
    socket.once('data', () => done(performance.now() - start));
    socket.once('error', () => done(null));
  });
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

interface Row {
  mode: string;
  round: number;
  load: string;
  answered2s: number;
  answered: number;
  p50: number;
  p99: number;
  max: number;
  wrkRate: number;
  wrkTimeouts: number;
}

function measure(h: Harness, mode: string, round: number): Promise<Row> {
  const load = loadavg()[0]?.toFixed(1) ?? '?';
  return withServer(h, mode, async (_child, port) => {
    // Plain wrk, no Lua script: as little work per response on the load side as it can do.
    const wrkArgs = [
      '-t1',
      `-c${CONNECTIONS}`,
      `-d${SECONDS}s`,
      '--timeout',
      '10s',
      `http://127.0.0.1:${port}/`,
    ];
    const wrk = h.children.spawn({ label: 'wrk', command: 'wrk', args: wrkArgs });
    await new Promise((r) => setTimeout(r, BURST_AFTER_MS));
    const waits = await Promise.all(Array.from({ length: BURST }, () => oneRequest(port)));
    await wrk.exited;
    const answered = waits.filter((w): w is number => w !== null).sort((a, b) => a - b);
    return {
      mode,
      round,
      load,
      answered2s: answered.filter((w) => w <= WRK_DEFAULT_TIMEOUT_MS).length,
      answered: answered.length,
      p50: quantile(answered, 0.5),
      p99: quantile(answered, 0.99),
      max: answered.at(-1) ?? Number.NaN,
      wrkRate: Number(/Requests\/sec:\s+([\d.]+)/.exec(wrk.stdout())?.[1] ?? Number.NaN),
      wrkTimeouts: Number(/timeout (\d+)/.exec(wrk.stdout())?.[1] ?? 0),
    };
  });
}

const modes = (values.modes ?? '').split(',').filter((m) => m !== '');

/**
 * Server CPU µs per request, for 5 s: `fresh` = one client, a new connection per request;
 * otherwise 32 keep-alive connections (the per-request cost, where accepting plays no part).
 */
function churn(h: Harness, mode: string, round: number, fresh: boolean): Promise<string> {
  const load = loadavg()[0]?.toFixed(1) ?? '?';
  return withServer(h, mode, async (child, port) => {
    const before = cpuSeconds(child.pid) ?? Number.NaN;
    const args = fresh ? ['-c1', '-H', 'Connection: close'] : ['-c32'];
    const wrk = spawnSync('wrk', ['-t1', ...args, '-d5s', `http://127.0.0.1:${port}/`], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    const cpu = (cpuSeconds(child.pid) ?? Number.NaN) - before;
    const requests = Number(/(\d+) requests in/.exec(wrk.stdout)?.[1] ?? Number.NaN);
    return `| ${fresh ? 'new connection each' : '32 keep-alive'} | ${mode} | ${round} | ${load} | ${requests} | ${Math.round(requests / 5)} | ${((cpu / requests) * 1e6).toFixed(0)} |`;
  });
}

await withHarness({ pin: false }, async (h) => {
  if (values.churn) {
    const lines: string[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      for (const fresh of [true, false]) {
        for (const mode of modes.filter((m) => m !== 'cluster'))
          lines.push(await churn(h, mode, round, fresh));
      }
    }
    process.stdout.write(
      `\nserver CPU per request, 5 s each (handler ${process.env.ACCEPT_BENCH_BUSY_US ?? '100'} µs)\n\n` +
        '| clients | mode | round | load avg | requests | req/s | server CPU µs/req |\n| --- | --- | --: | --: | --: | --: | --: |\n' +
        `${lines.join('\n')}\n`,
    );
    return;
  }
  const rows: Row[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const mode of modes) rows.push(await measure(h, mode, round));
  }
  const ms = (v: number): string => (Number.isNaN(v) ? '-' : `${Math.round(v)}`);
  process.stdout.write(
    `\n${CONNECTIONS} busy wrk connections for ${SECONDS} s (handler ${process.env.ACCEPT_BENCH_BUSY_US ?? '100'} µs), ` +
      `${BURST} new connections at ${BURST_AFTER_MS / 1000} s; wait = connect() to first answer byte\n\n` +
      '| mode | round | load avg | burst answered ≤ 2 s | answered ≤ 10 s | wait p50 ms | p99 ms | max ms | wrk req/s | wrk timeouts |\n' +
      '| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |\n',
  );
  for (const r of rows) {
    process.stdout.write(
      `| ${r.mode} | ${r.round} | ${r.load} | ${r.answered2s}/${BURST} | ${r.answered}/${BURST} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.max)} | ${Math.round(r.wrkRate)} | ${r.wrkTimeouts} |\n`,
    );
  }
});
