/**
 * DoH with a private CA (issue 19): an internal DoH resolver's certificate is signed by a CA of the
 * operator's. Given as `upstream.caFile` (or `dns.doh.caFile`), DoH trusts it; a DoH server whose
 * certificate does not verify fails the lookup as SC_ERR_DNS with the TLS cause. Real parts: an
 * HTTPS DoH server on 127.0.0.1 with a test CA, an HTTP origin reached by name, sidecache in-process.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { send } from '../../helpers/client.js';
import { DnsZone } from '../../helpers/dns-zone.js';
import { startDohServer, type TestDohServer } from '../../helpers/doh-server.js';
import { startOrigin, type TestOrigin } from '../../helpers/origin.js';
import { createTestCa, type TestCa } from '../../helpers/pki.js';
import { startTestSidecache } from '../../helpers/sidecache.js';

const NAME = 'api.doh-ca.test';

describe('DoH with a private CA', () => {
  let ca: TestCa;
  let doh: TestDohServer;
  let origin: TestOrigin;
  const zone = new DnsZone();

  before(async () => {
    ca = await createTestCa('internal DoH CA');
    zone.set(NAME, { A: ['127.0.0.1'], ttl: 60 });
    doh = await startDohServer(zone, { tls: await ca.issue({ ips: ['127.0.0.1'] }) });
    origin = await startOrigin((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('through DoH');
    });
  });
  after(async () => {
    await doh?.stop();
    await origin?.close();
  });

  const config = (extra: Record<string, unknown>) => ({
    routes: [{ name: 'api', origin: `http://${NAME}:${origin.port}` }],
    dns: { mode: 'doh', doh: { servers: [doh.address], protocol: 'https' }, timeoutMs: 2_000, tries: 1 },
    upstream: { warm: { connections: 0, minIdle: 0 } },
    ...extra,
  });

  it('trusts upstream.caFile for the DoH server', async () => {
    const before = doh.methods.GET ?? 0;
    const sc = await startTestSidecache(
      config({ upstream: { caFile: ca.writeCertFile(), warm: { connections: 0, minIdle: 0 } } }) as never,
    );
    try {
      const res = await send(sc.url, '/api/x');
      assert.equal(res.status, 200, res.text());
      assert.equal(res.text(), 'through DoH');
      assert.ok((doh.methods.GET ?? 0) + (doh.methods.POST ?? 0) > before, 'the DoH server was asked');
    } finally {
      await sc.close();
    }
  });

  it('trusts dns.doh.caFile, without trusting it for origins', async () => {
    const sc = await startTestSidecache(
      config({
        dns: {
          mode: 'doh',
          doh: { servers: [doh.address], protocol: 'https', caFile: ca.writeCertFile() },
          timeoutMs: 2_000,
          tries: 1,
        },
      }) as never,
    );
    try {
      const res = await send(sc.url, '/api/y');
      assert.equal(res.status, 200, res.text());
      assert.equal(sc.instance.runtime().config.upstream.caFile, null);
    } finally {
      await sc.close();
    }
  });

  it('a DoH server whose certificate does not verify: 502 SC_ERR_DNS naming the TLS cause', async () => {
    const sc = await startTestSidecache(config({}) as never);
    try {
      const res = await send(sc.url, '/api/z');
      assert.equal(res.status, 502, res.text());
      const body = res.json() as { error?: string; message?: string };
      assert.equal(body.error, 'SC_ERR_DNS', res.text());
      assert.match(body.message ?? '', /SELF_SIGNED|UNABLE_TO_VERIFY|certificate/i, res.text());
    } finally {
      await sc.close();
    }
  });
});
