import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseRequestDirectives, parseResponseDirectives } from '../../../src/cache/cache-control.js';
import { headersToStore, storability, varyFields } from '../../../src/cache/storability.js';

const policy = { storePrivate: false, storeSetCookie: false, ttlOverride: false };

interface Case {
  name: string;
  status?: number;
  method?: string;
  req?: string;
  headers: Record<string, string>;
  auth?: boolean;
  lifetimeMs?: number;
  policy?: Partial<typeof policy>;
  expected: string;
}

const cases: Case[] = [
  {
    name: '§3 a 200 with max-age is stored',
    headers: { 'cache-control': 'max-age=60' },
    lifetimeMs: 60_000,
    expected: 'stored',
  },
  {
    name: '§3 only GET responses are stored here',
    method: 'POST',
    headers: { 'cache-control': 'max-age=60' },
    lifetimeMs: 60_000,
    expected: 'method',
  },
  {
    name: '§5.2.1.5 request no-store',
    req: 'no-store',
    headers: { 'cache-control': 'max-age=60' },
    lifetimeMs: 60_000,
    expected: 'request-no-store',
  },
  {
    name: '§5.2.2.5 response no-store',
    headers: { 'cache-control': 'no-store, max-age=60' },
    lifetimeMs: 60_000,
    expected: 'no-store',
  },
  {
    name: '§5.2.2.5 no-store directive name is case-insensitive',
    headers: { 'cache-control': 'No-Store' },
    expected: 'no-store',
  },
  {
    name: '§5.2.2.3 must-understand with an understood status ignores no-store',
    headers: { 'cache-control': 'must-understand, no-store, max-age=60' },
    lifetimeMs: 60_000,
    expected: 'stored',
  },
  {
    name: '§5.2.2.3 must-understand with an unknown status',
    status: 299,
    headers: { 'cache-control': 'must-understand, no-store, max-age=60' },
    lifetimeMs: 60_000,
    expected: 'must-understand',
  },
  {
    name: '§5.2.2.7 private is not stored by a shared cache',
    headers: { 'cache-control': 'private, max-age=60' },
    lifetimeMs: 60_000,
    expected: 'private',
  },
  {
    name: 'route storePrivate stores private (keyed by credential)',
    headers: { 'cache-control': 'private, max-age=60', etag: '"a"' },
    auth: true,
    lifetimeMs: 60_000,
    policy: { storePrivate: true },
    expected: 'stored',
  },
  {
    name: '§3.5 Authorization without public/s-maxage/must-revalidate',
    headers: { 'cache-control': 'max-age=60' },
    auth: true,
    lifetimeMs: 60_000,
    expected: 'authorization',
  },
  {
    name: '§3.5 Authorization with public',
    headers: { 'cache-control': 'public, max-age=60' },
    auth: true,
    lifetimeMs: 60_000,
    expected: 'stored',
  },
  {
    name: '§3.5 Authorization with s-maxage',
    headers: { 'cache-control': 's-maxage=60' },
    auth: true,
    lifetimeMs: 60_000,
    expected: 'stored',
  },
  {
    name: '§3.5 Authorization with must-revalidate',
    headers: { 'cache-control': 'must-revalidate, max-age=60' },
    auth: true,
    lifetimeMs: 60_000,
    expected: 'stored',
  },
  {
    name: 'Set-Cookie responses are not stored unless the route says so',
    headers: { 'cache-control': 'max-age=60', 'set-cookie': 'a=b' },
    lifetimeMs: 60_000,
    expected: 'set-cookie',
  },
  {
    name: 'route storeSetCookie stores Set-Cookie responses',
    headers: { 'cache-control': 'max-age=60', 'set-cookie': 'a=b' },
    lifetimeMs: 60_000,
    policy: { storeSetCookie: true },
    expected: 'stored',
  },
  {
    name: '§4.1 Vary: * is never reusable, so not stored',
    headers: { 'cache-control': 'max-age=60', vary: 'Accept, *' },
    lifetimeMs: 60_000,
    expected: 'vary-star',
  },
  { name: '§3 a 500 without explicit freshness is not stored', status: 500, headers: {}, expected: 'status' },
  {
    name: '§3 a 500 with max-age is stored',
    status: 500,
    headers: { 'cache-control': 'max-age=5' },
    lifetimeMs: 5000,
    expected: 'stored',
  },
  {
    name: '§3 a 299 with max-age is stored (unknown final code)',
    status: 299,
    headers: { 'cache-control': 'max-age=5' },
    lifetimeMs: 5000,
    expected: 'stored',
  },
  {
    name: '§3 a 404 is heuristically cacheable with Last-Modified',
    status: 404,
    headers: { 'last-modified': 'Sun, 06 Nov 1994 08:49:37 GMT' },
    lifetimeMs: 1000,
    expected: 'stored',
  },
  {
    name: '§3.3 206 is not stored (partial content is not combined; ranges are served from complete 200s)',
    status: 206,
    headers: { 'cache-control': 'max-age=60' },
    lifetimeMs: 60_000,
    expected: 'partial',
  },
  {
    name: '§3 304 is never stored as a new response',
    status: 304,
    headers: { 'cache-control': 'max-age=60' },
    lifetimeMs: 60_000,
    expected: 'status',
  },
  {
    name: 'a 200 with no freshness and no validator is useless to store',
    headers: {},
    lifetimeMs: 0,
    expected: 'no-freshness',
  },
  {
    name: '§4.3 a 200 with max-age=0 and an ETag is stored for revalidation',
    headers: { 'cache-control': 'max-age=0', etag: '"x"' },
    lifetimeMs: 0,
    expected: 'stored',
  },
  {
    name: '§5.2.2.4 no-cache with an ETag is stored (always revalidated)',
    headers: { 'cache-control': 'no-cache', etag: '"x"' },
    lifetimeMs: 0,
    expected: 'stored',
  },
];

describe('storability for a shared cache (RFC 9111 §3)', () => {
  for (const c of cases) {
    test(c.name, () => {
      const input = {
        method: c.method ?? 'GET',
        status: c.status ?? 200,
        req: parseRequestDirectives(c.req),
        res: parseResponseDirectives(c.headers['cache-control']),
        resHeaders: c.headers,
        authorization: c.auth ?? false,
        lifetimeMs: c.lifetimeMs ?? 0,
        policy: { ...policy, ...c.policy },
      };
      const v = storability(input);
      assert.equal(v.storable ? 'stored' : v.reason, c.expected);
      // The same verdict with the lifetime behind a getter, read only when the last rule needs it.
      let calls = 0;
      const lazy = storability({
        ...input,
        get lifetimeMs() {
          calls++;
          return input.lifetimeMs;
        },
      });
      assert.deepEqual(lazy, v);
      if (!v.storable && v.reason !== 'no-freshness') assert.equal(calls, 0, 'lifetime computed for nothing');
    });
  }
});

describe('what is stored (RFC 9111 §3.1)', () => {
  test('§3.1 hop-by-hop and Connection-listed fields are not stored', () => {
    const h = headersToStore(
      { connection: 'x-hop', 'x-hop': '1', 'keep-alive': 'timeout=5', 'content-type': 'text/plain' },
      parseResponseDirectives(undefined),
    );
    assert.deepEqual(h, { 'content-type': 'text/plain' });
  });
  test('§5.2.2.4 qualified no-cache fields and §5.2.2.7 qualified private fields are dropped', () => {
    const h = headersToStore(
      { 'cache-control': 'no-cache="x-a", private="X-B"', 'x-a': '1', 'x-b': '2', 'x-c': '3' },
      parseResponseDirectives('no-cache="x-a", private="X-B"'),
    );
    assert.equal(h['x-a'], undefined);
    assert.equal(h['x-b'], undefined);
    assert.equal(h['x-c'], '3');
  });
  test('§4.1 Vary field names are lower-cased, combined and deduplicated', () => {
    assert.deepEqual(varyFields({ vary: ['Accept, Accept-Language', 'accept'] }), [
      'accept',
      'accept-language',
    ]);
  });
});
