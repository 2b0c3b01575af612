/**
 * The contract with the proxy core: an undici Pool with `connect: { lookup }` reaches an origin by a name
 * only our nameserver knows, and a failed lookup surfaces with the DNS code and a recoverable DnsError.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type TestContext, test } from 'node:test';
import { Pool } from 'undici';
import { createDnsCache, dnsErrorFrom } from '../../../src/dns/index.js';
import { startDnsServer } from '../../helpers/dns-server.js';
import { DnsZone } from '../../helpers/dns-zone.js';

async function origin(t: TestContext): Promise<number> {
  const server = http.createServer((_req, res) => res.end('hello'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}

async function dns(t: TestContext) {
  const zone = new DnsZone({ 'api.test': { A: ['127.0.0.1'] } });
  const server = await startDnsServer(zone);
  const cache = createDnsCache({ mode: 'udp', servers: [server.address], timeoutMs: 1_000 });
  t.after(async () => {
    await cache.close();
    await server.stop();
  });
  return { zone, cache };
}

test('a Pool connects through lookup() to a name our nameserver resolves', async (t) => {
  const port = await origin(t);
  const { zone, cache } = await dns(t);
  const pool = new Pool(`http://api.test:${port}`, { connect: { lookup: cache.lookup } });
  t.after(() => pool.close());
  const res = await pool.request({ path: '/', method: 'GET' });
  assert.equal(res.statusCode, 200);
  assert.equal(await res.body.text(), 'hello');
  assert.equal(zone.count('api.test', 'A'), 1);
});

test('a failed lookup reaches the caller with its DNS code and the DnsError', async (t) => {
  const { cache } = await dns(t);
  const pool = new Pool('http://nope.test:80', { connect: { lookup: cache.lookup } });
  t.after(() => pool.close());
  const err = await pool.request({ path: '/', method: 'GET' }).then(
    () => assert.fail('expected a failure'),
    (e: unknown) => e as NodeJS.ErrnoException,
  );
  assert.equal(err.code, 'ENOTFOUND');
  const dnsErr = dnsErrorFrom(err);
  assert.ok(dnsErr, 'the DnsError is recoverable from what undici reported');
  assert.equal(dnsErr.code, 'SC_ERR_DNS');
  assert.deepEqual(dnsErr.detail, { dnsCode: 'ENOTFOUND', host: 'nope.test' });
});
