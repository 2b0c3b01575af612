import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { Route } from '../../../src/config/runtime.js';
import { UpstreamConnectError } from '../../../src/errors.js';
import type { Exchange, ExchangeEnd } from '../../../src/exchange.js';
import { accessFields, createAccessLog, createLogger, directWriter, jsonMillis } from '../../../src/log.js';

/** A logger writing into an array of lines (synchronously: a PassThrough emits on write). */
function capture(level: 'info' | 'warn'): { logger: ReturnType<typeof createLogger>; lines: string[] } {
  const out = new PassThrough();
  const lines: string[] = [];
  let rest = '';
  out.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString('utf8')).split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts);
  });
  return { logger: createLogger(level, out), lines };
}

function exchange(over: Partial<Exchange> = {}): Exchange {
  return {
    id: 'a1b2c3d4-1z',
    mode: 'route',
    method: 'GET',
    target: new URL('http://127.0.0.1:8/api/a%22b/é?q=secret'),
    origin: 'http://127.0.0.1:8',
    route: { name: 'odd "name"\n✓' } as Route,
    headers: {},
    body: null,
    client: { address: '127.0.0.1', port: 1, protocol: 'http' },
    signal: AbortSignal.abort(),
    timings: { startedAt: 0, start: 100, phases: {}, end: 101.23456 },
    reason: 'origin_response',
    cache: { outcome: 'miss', stored: false },
    originInfo: { origin: 'http://127.0.0.1:8', reusedConnection: true, retried: false, bodyBytes: 3 },
    ...over,
  };
}

const ends: ExchangeEnd[] = [
  { ex: exchange(), status: 200, bytes: 1024, replySource: 'origin' },
  {
    ex: exchange({ route: null, reason: undefined, cache: undefined, originInfo: undefined }),
    status: 404,
    bytes: 0,
    replySource: 'origin',
  },
  {
    ex: exchange({ reason: 'upstream_connect_failed', timings: { startedAt: 0, start: 5, phases: {} } }),
    status: 502,
    bytes: 0,
    replySource: 'synth',
    error: new UpstreamConnectError('origin said "no"\u0000\n'),
  },
];

/** A line without its time, which differs between two writes. */
const untimed = (line: string): string => line.replace(/,"time":\d+/, '');

describe('access log', () => {
  it('takes the direct path for the logger sidecache makes, and not for custom formatters', () => {
    assert.notEqual(directWriter(createLogger('info', new PassThrough())), null);
    const custom = pino({ formatters: { level: (label) => ({ level: label }) } }, new PassThrough());
    assert.equal(directWriter(custom), null);
  });

  it('writes byte for byte the line pino writes for the same fields', () => {
    const ours = capture('info');
    const theirs = capture('info');
    const log = createAccessLog(ours.logger);
    for (const end of ends) {
      log(end);
      const warn = end.status >= 500;
      theirs.logger[warn ? 'warn' : 'info'](accessFields(end), 'access');
    }
    assert.equal(ours.lines.length, ends.length);
    assert.deepEqual(ours.lines.map(untimed), theirs.lines.map(untimed));
    for (const line of ours.lines) assert.equal(typeof JSON.parse(line).time, 'number');
    const first = JSON.parse(ours.lines[0] as string);
    assert.equal(first.route, 'odd "name"\n✓');
    assert.equal(first.path, '/api/a%22b/%C3%A9');
    assert.equal(first.durMs, 1.235);
    assert.equal(first.reused, true);
    const failed = JSON.parse(ours.lines[2] as string);
    assert.equal(failed.level, 40);
    assert.equal(failed.err, 'SC_ERR_UPSTREAM_CONNECT');
    assert.equal(failed.errMessage, 'origin said "no"\u0000\n');
    assert.equal('msg2' in failed, false);
  });

  it('writes the fields of each exchange when one target URL serves several routes, methods and modes', () => {
    // front/ hands every request for a target the same URL object; the line must still follow
    // whatever else differs between those exchanges.
    const target = new URL('http://127.0.0.1:8/shared/path');
    const route = { name: 'r' } as Route;
    const other = { name: 'other' } as Route;
    const end = (over: Partial<Exchange>): ExchangeEnd => ({
      ex: exchange({ target, route, ...over }),
      status: 200,
      bytes: 1,
      replySource: 'cache',
    });
    // Each differs from the one before in one field at most.
    const variants: ExchangeEnd[] = [
      end({}),
      end({}),
      end({ method: 'HEAD' }),
      end({}),
      end({ route: other }),
      end({ route: other, mode: 'forward' }),
      end({ route: other, mode: 'forward', origin: 'http://x.test' }),
      end({}),
    ];
    const ours = capture('info');
    const theirs = capture('info');
    const log = createAccessLog(ours.logger);
    for (const end of variants) {
      log(end);
      theirs.logger.info(accessFields(end), 'access');
    }
    assert.deepEqual(ours.lines.map(untimed), theirs.lines.map(untimed));
    const parsed = ours.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      parsed.map((l) => [l.method, l.route, l.mode, l.origin]),
      [
        ['GET', 'r', 'route', 'http://127.0.0.1:8'],
        ['GET', 'r', 'route', 'http://127.0.0.1:8'],
        ['HEAD', 'r', 'route', 'http://127.0.0.1:8'],
        ['GET', 'r', 'route', 'http://127.0.0.1:8'],
        ['GET', 'other', 'route', 'http://127.0.0.1:8'],
        ['GET', 'other', 'forward', 'http://127.0.0.1:8'],
        ['GET', 'other', 'forward', 'http://x.test'],
        ['GET', 'r', 'route', 'http://127.0.0.1:8'],
      ],
    );
  });

  it('writes durations as JSON writes the number rounded to microseconds', () => {
    const samples = [
      0,
      1,
      0.0004,
      0.0005,
      0.001,
      0.01,
      0.1,
      0.12,
      0.123,
      1.2345,
      1.235,
      2.5,
      10.001,
      10.01,
      99.999,
      123456.789,
      1e9 + 0.5,
      7e12,
      -0.0001,
      -1.5,
      1e15,
      Number.NaN,
    ];
    for (let i = 0; i < 2000; i++) samples.push(i * 0.0173, i * 1.001, i / 7, i * 12.3456789);
    for (const ms of samples)
      assert.equal(jsonMillis(ms), JSON.stringify(Math.round(ms * 1000) / 1000), String(ms));
  });

  it('writes exactly the fields docs/observability.md documents', () => {
    const doc = readFileSync(new URL('../../../docs/observability.md', import.meta.url), 'utf8');
    const section = doc.split('\n### Access log fields\n')[1]?.split('\n#')[0] ?? '';
    const documented = [...section.matchAll(/^\| `([A-Za-z0-9]+)`/gm)].map((m) => m[1]);
    assert.ok(documented.length > 10, 'the access log table is found');
    const { logger, lines } = capture('info');
    const log = createAccessLog(logger);
    for (const end of ends) log(end);
    const written = new Set(lines.flatMap((line) => Object.keys(JSON.parse(line))));
    assert.deepEqual([...written].sort(), [...documented].sort());
  });

  it('respects the level: at warn only 5xx lines (but not 504) are written', () => {
    const { logger, lines } = capture('warn');
    const log = createAccessLog(logger);
    for (const end of ends) log(end);
    log({ ...(ends[0] as ExchangeEnd), status: 504 });
    assert.equal(lines.length, 1);
    assert.equal(JSON.parse(lines[0] as string).status, 502);
  });

  it('falls back to pino for a logger with custom formatters', () => {
    const out = new PassThrough();
    const lines: string[] = [];
    out.on('data', (c: Buffer) => lines.push(...c.toString('utf8').trim().split('\n')));
    const logger = pino({ formatters: { level: (label) => ({ level: label }) } }, out);
    createAccessLog(logger)(ends[0] as ExchangeEnd);
    assert.equal(JSON.parse(lines[0] as string).level, 'info');
  });
});
