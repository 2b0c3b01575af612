import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseRequestDirectives, parseResponseDirectives } from '../../../src/cache/cache-control.js';
import {
  currentAgeMs,
  decideReuse,
  freshnessLifetime,
  parseAgeSeconds,
  retentionMs,
  staleOnError,
} from '../../../src/cache/freshness.js';
import { formatHttpDate } from '../../../src/cache/http-date.js';

const T = Date.UTC(2026, 0, 1, 12, 0, 0);
const date = (ms: number) => formatHttpDate(ms);
const opts = { heuristicFraction: 0.1, maxHeuristicTtlMs: 86_400_000, ttlOverrideMs: null };

describe('Age (RFC 9111 §5.1)', () => {
  const cases: [string, string | string[] | undefined, number][] = [
    ['absent is 0', undefined, 0],
    ['a non-negative integer', '30', 30],
    ['§5.1 a list uses its first member', '30, 40', 30],
    ['§5.1 several lines use the first', ['12', '99'], 12],
    ['§5.1 an invalid value is ignored', 'abc', 0],
    ['§5.1 a negative value is ignored', '-5', 0],
    ['§5.1 a fraction is ignored', '1.5', 0],
  ];
  for (const [name, v, s] of cases) test(name, () => assert.equal(parseAgeSeconds(v), s));
});

describe('current_age (RFC 9111 §4.2.3)', () => {
  const cases: [string, Record<string, string>, number, number, number, number][] = [
    // name, headers, requestTime, responseTime, now, expected ms
    ['resident time adds to the age', { date: date(T) }, T, T, T + 5000, 5000],
    ['Age adds response_delay (corrected_age_value)', { date: date(T), age: '10' }, T - 2000, T, T, 12_000],
    ['apparent_age from Date when larger', { date: date(T - 20_000), age: '3' }, T, T, T, 20_000],
    ['a Date in the future gives apparent_age 0', { date: date(T + 60_000) }, T, T, T + 1000, 1000],
    ['an invalid Date falls back to the response time', { date: 'yesterday' }, T, T, T + 1000, 1000],
    ['an invalid Age is ignored', { date: date(T), age: 'x' }, T, T, T + 1000, 1000],
  ];
  for (const [name, headers, req, res, now, expected] of cases) {
    test(name, () =>
      assert.equal(currentAgeMs({ headers, requestTime: req, responseTime: res }, now), expected),
    );
  }
});

describe('freshness lifetime, shared cache (RFC 9111 §4.2.1, §4.2.2)', () => {
  const cases: [string, number, Record<string, string>, number, string][] = [
    [
      '§4.2.1 s-maxage beats max-age',
      200,
      { 'cache-control': 'max-age=10, s-maxage=20' },
      20_000,
      's-maxage',
    ],
    [
      '§4.2.1 max-age beats Expires',
      200,
      { 'cache-control': 'max-age=10', date: date(T), expires: date(T + 99_000) },
      10_000,
      'max-age',
    ],
    ['§4.2.1 Expires minus Date', 200, { date: date(T), expires: date(T + 30_000) }, 30_000, 'expires'],
    ['§5.3 an invalid Expires is in the past', 200, { date: date(T), expires: '0' }, 0, 'expires'],
    [
      '§4.2.2 heuristic: 10% of Date - Last-Modified',
      200,
      { date: date(T), 'last-modified': date(T - 100_000) },
      10_000,
      'heuristic',
    ],
    [
      '§4.2.2 heuristic only for heuristically cacheable codes',
      500,
      { date: date(T), 'last-modified': date(T - 100_000) },
      0,
      'none',
    ],
    [
      '§4.2.2 public makes any code heuristically cacheable',
      500,
      { 'cache-control': 'public', date: date(T), 'last-modified': date(T - 100_000) },
      10_000,
      'heuristic',
    ],
    [
      '§4.2.2 heuristic capped by maxHeuristicTtlMs',
      200,
      { date: date(T), 'last-modified': date(T - 10 * 86_400_000 * 10) },
      86_400_000,
      'heuristic',
    ],
    ['no explicit freshness and no Last-Modified: 0', 200, { date: date(T) }, 0, 'none'],
  ];
  for (const [name, status, headers, ms, source] of cases) {
    test(name, () => {
      const l = freshnessLifetime(
        status,
        { headers, requestTime: T, responseTime: T },
        parseResponseDirectives(headers['cache-control']),
        opts,
      );
      assert.equal(l.ms, ms);
      assert.equal(l.source, source);
    });
  }
  test('route ttl override replaces the origin lifetime for cacheable codes only', () => {
    const h = { 'cache-control': 'max-age=5' };
    const r = { headers: h, requestTime: T, responseTime: T };
    const cc = parseResponseDirectives(h['cache-control']);
    assert.equal(freshnessLifetime(200, r, cc, { ...opts, ttlOverrideMs: 600_000 }).ms, 600_000);
    assert.equal(freshnessLifetime(503, r, cc, { ...opts, ttlOverrideMs: 600_000 }).ms, 5000);
  });
});

describe('reuse decision (RFC 9111 §4.2, §5.2; RFC 5861)', () => {
  const cases: [string, number, number, string, string, boolean, string][] = [
    // name, ageMs, lifetimeMs, request CC, response CC, forceRevalidate, expected kind[/why]
    ['§4.2 fresh when lifetime > age', 1000, 10_000, '', 'max-age=10', false, 'fresh'],
    ['§4.2 stale when age >= lifetime', 10_000, 10_000, '', 'max-age=10', false, 'revalidate/stale'],
    [
      '§5.2.2.4 response no-cache always revalidates',
      0,
      10_000,
      '',
      'no-cache, max-age=10',
      false,
      'revalidate/response-no-cache',
    ],
    [
      '§5.2.1.4 request no-cache revalidates',
      0,
      10_000,
      'no-cache',
      'max-age=10',
      false,
      'revalidate/request-no-cache',
    ],
    [
      '§5.2.1.1 request max-age below the age revalidates',
      5000,
      10_000,
      'max-age=2',
      'max-age=10',
      false,
      'revalidate/request-max-age',
    ],
    [
      '§5.2.1.3 min-fresh larger than remaining freshness revalidates',
      5000,
      10_000,
      'min-fresh=6',
      'max-age=10',
      false,
      'revalidate/request-min-fresh',
    ],
    [
      '§5.2.1.2 max-stale allows stale',
      12_000,
      10_000,
      'max-stale=5',
      'max-age=10',
      false,
      'stale/max-stale',
    ],
    ['§5.2.1.2 max-stale too small', 20_000, 10_000, 'max-stale=5', 'max-age=10', false, 'revalidate/stale'],
    [
      '§5.2.2.2 must-revalidate overrides max-stale',
      12_000,
      10_000,
      'max-stale',
      'max-age=10, must-revalidate',
      false,
      'revalidate/stale',
    ],
    [
      '§5.2.2.8 proxy-revalidate overrides max-stale',
      12_000,
      10_000,
      'max-stale',
      'max-age=10, proxy-revalidate',
      false,
      'revalidate/stale',
    ],
    [
      '§5.2.2.10 s-maxage implies proxy-revalidate',
      12_000,
      10_000,
      'max-stale',
      's-maxage=10',
      false,
      'revalidate/stale',
    ],
    [
      'RFC 5861 §3 within stale-while-revalidate',
      15_000,
      10_000,
      '',
      'max-age=10, stale-while-revalidate=10',
      false,
      'stale-while-revalidate',
    ],
    [
      'RFC 5861 §3 past stale-while-revalidate',
      25_000,
      10_000,
      '',
      'max-age=10, stale-while-revalidate=10',
      false,
      'revalidate/stale',
    ],
    [
      'RFC 5861 §3 stale-while-revalidate yields to must-revalidate',
      15_000,
      10_000,
      '',
      'max-age=10, must-revalidate, stale-while-revalidate=10',
      false,
      'revalidate/stale',
    ],
    [
      'route forceRevalidate revalidates even when fresh',
      0,
      10_000,
      '',
      'max-age=10',
      true,
      'revalidate/force-revalidate',
    ],
  ];
  for (const [name, ageMs, lifetimeMs, req, res, force, expected] of cases) {
    test(name, () => {
      const d = decideReuse({
        ageMs,
        lifetimeMs,
        req: parseRequestDirectives(req || undefined),
        res: parseResponseDirectives(res),
        forceRevalidate: force,
      });
      assert.equal('why' in d ? `${d.kind}/${d.why}` : d.kind, expected);
    });
  }
});

describe('stale on error (RFC 5861 §4, RFC 9111 §4.2.4)', () => {
  const base = { staleIfErrorMs: 0, serveStaleIfUnreachable: true };
  const cases: [string, number, string, string, boolean, Partial<typeof base>, string | null][] = [
    [
      'RFC 5861 §4 response stale-if-error within window',
      15_000,
      'max-age=10, stale-if-error=10',
      '',
      false,
      {},
      'stale-if-error',
    ],
    [
      'RFC 5861 §4 response stale-if-error past window',
      25_000,
      'max-age=10, stale-if-error=10',
      '',
      false,
      {},
      null,
    ],
    [
      'RFC 5861 §4 request stale-if-error',
      15_000,
      'max-age=10',
      'stale-if-error=60',
      false,
      {},
      'stale-if-error',
    ],
    [
      'configured default window',
      15_000,
      'max-age=10',
      '',
      false,
      { staleIfErrorMs: 60_000 },
      'stale-if-error',
    ],
    [
      '§4.2.4 disconnected: unreachable origin may be served stale',
      99_000,
      'max-age=10',
      '',
      true,
      {},
      'unreachable',
    ],
    [
      'unreachable serving can be switched off',
      99_000,
      'max-age=10',
      '',
      true,
      { serveStaleIfUnreachable: false },
      null,
    ],
    ['§4.2.4 a 5xx alone does not allow stale', 15_000, 'max-age=10', '', false, {}, null],
    [
      '§5.2.2.2 must-revalidate forbids stale on error',
      15_000,
      'max-age=10, must-revalidate, stale-if-error=60',
      '',
      true,
      {},
      null,
    ],
    [
      '§5.2.2.8 proxy-revalidate forbids stale on error',
      15_000,
      'max-age=10, proxy-revalidate',
      '',
      true,
      {},
      null,
    ],
    ['§5.2.2.4 no-cache forbids stale on error', 15_000, 'no-cache', '', true, {}, null],
    [
      '§5.2.2.10 s-maxage forbids implicit stale',
      15_000,
      's-maxage=10',
      '',
      true,
      { staleIfErrorMs: 60_000 },
      null,
    ],
    [
      '§5.2.2.10 s-maxage with explicit stale-if-error',
      15_000,
      's-maxage=10, stale-if-error=60',
      '',
      false,
      {},
      'stale-if-error',
    ],
  ];
  for (const [name, ageMs, res, req, unreachable, o, expected] of cases) {
    test(name, () => {
      assert.equal(
        staleOnError({
          ageMs,
          lifetimeMs: 10_000,
          req: parseRequestDirectives(req || undefined),
          res: parseResponseDirectives(res),
          unreachable,
          ...base,
          ...o,
        }),
        expected,
      );
    });
  }
  test('retention keeps entries past freshness for revalidation (notes: keep expired entries)', () => {
    assert.equal(retentionMs(1000, parseResponseDirectives('max-age=1'), 60_000), 61_000);
    assert.equal(
      retentionMs(1000, parseResponseDirectives('max-age=1, stale-if-error=600'), 60_000),
      601_000,
    );
  });
});
