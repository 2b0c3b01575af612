import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { send } from '../helpers/client.js';
import { createTestCa } from '../helpers/pki.js';
import { startTestSidecache } from '../helpers/sidecache.js';

describe('HTTP/2 to the origin (upstream.http2)', () => {
  it('speaks h2 to an h2-only TLS origin, many requests multiplexed on one connection', async () => {
    const ca = await createTestCa();
    const leaf = await ca.issue({ ips: ['127.0.0.1'] });
    let sessions = 0;
    const origin = http2.createSecureServer({ cert: leaf.cert, key: leaf.key, allowHTTP1: false });
    origin.on('session', () => sessions++);
    origin.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200, 'content-type': 'application/json', 'x-proto': 'h2' });
      stream.end(JSON.stringify({ path: headers[':path'], method: headers[':method'] }));
    });
    origin.listen(0, '127.0.0.1');
    await once(origin, 'listening');
    const port = (origin.address() as AddressInfo).port;
    const sc = await startTestSidecache({
      routes: [{ name: 'h2', origin: `https://127.0.0.1:${port}`, upstream: { http2: true } }],
      upstream: { caFile: ca.writeCertFile() },
    });
    try {
      // Keep-warm opens one h2 connection at start (one carries every request); wait for it, or
      // a first request sent meanwhile would open a second one of its own.
      await sc.instance.warmStart;
      // The first request settles ALPN; after that the pool multiplexes on the h2 connection.
      assert.equal((await send(sc.url, '/h2/warm')).status, 200);
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => send(sc.url, `/h2/item/${i}?x=1`)),
      );
      results.forEach((res, i) => {
        assert.equal(res.status, 200, res.text());
        assert.equal(res.headers['x-proto'], 'h2');
        assert.deepEqual(res.json(), { path: `/item/${i}?x=1`, method: 'GET' });
      });
      assert.equal(sessions, 1, 'one HTTP/2 connection carried every request');
    } finally {
      await sc.close();
      origin.close();
    }
  });
});
