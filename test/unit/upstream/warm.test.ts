/** Keep-warm's pure parts: the backoff schedule and the per-origin counts. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { upstreamSchema } from '../../../src/config/schema.js';
import { backoffMs, warmCounts } from '../../../src/upstream/warm.js';

describe('keep-warm backoff', () => {
  const warm = { retryMinMs: 500, retryMaxMs: 30_000 };
  test('no wait before the first attempt, then retryMinMs doubling per failure, capped', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffMs(n, warm)),
      [0, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000],
    );
  });
  test('stays capped after very many failures (no overflow)', () => {
    assert.equal(backoffMs(10_000, warm), 30_000);
  });
});

describe('keep-warm counts per origin', () => {
  test('as configured for HTTP/1.1', () => {
    const settings = upstreamSchema.parse({ warm: { connections: 3, minIdle: 2 } });
    assert.deepEqual(warmCounts(settings), { connections: 3, minIdle: 2 });
  });
  test('at most one connection with HTTP/2 offered (it multiplexes)', () => {
    const settings = upstreamSchema.parse({ http2: true, warm: { connections: 3, minIdle: 2 } });
    assert.deepEqual(warmCounts(settings), { connections: 1, minIdle: 1 });
  });
  test('defaults: 2 connections, minIdle 1, 5 s, readyz waits', () => {
    const { warm } = upstreamSchema.parse({});
    assert.deepEqual(warm, {
      connections: 2,
      minIdle: 1,
      timeoutMs: 5_000,
      readyWait: true,
      retryMinMs: 500,
      retryMaxMs: 30_000,
    });
  });
});

describe('keep-warm per route', () => {
  test('a route overrides connections or minIdle and inherits the rest', async () => {
    const { parseConfig } = await import('../../../src/config/load.js');
    const { compileRuntime } = await import('../../../src/config/runtime.js');
    const runtime = compileRuntime(
      parseConfig({
        upstream: { warm: { connections: 3, timeoutMs: 1_000 } },
        routes: [
          { name: 'a', origin: 'https://a.example', upstream: { warm: { minIdle: 0 } } },
          { name: 'b', origin: 'https://b.example' },
        ],
      } as never),
    );
    const [a, b] = runtime.routes;
    assert.deepEqual({ ...a?.upstream.warm }, { ...b?.upstream.warm, minIdle: 0 });
    assert.equal(a?.upstream.warm.connections, 3);
    assert.equal(b?.upstream.warm.minIdle, 1);
    assert.match(runtime.explain(), /warm start: .* up to 1 s; \/readyz says "warming"/);
    assert.match(a?.explain() ?? '', /keep-warm: 3 connection\(s\) opened at start .* at least 0 kept idle/);
  });
});
