/**
 * The admin listener against a hostile browser on the same machine (no admin token): a DNS-rebound
 * name (forged Host) is refused, a cross-site page cannot purge or reload, and same-origin calls,
 * IP-literal Hosts (Prometheus scraping a pod IP) and the probes keep working. Real HTTP through
 * node:http and curl.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { send } from '../helpers/client.js';
import { type Origin, startOrigin } from '../helpers/counting-origin.js';
import { startTestSidecache, type TestSidecache } from '../helpers/sidecache.js';
import { requireTool } from '../helpers/system-tool.js';

const run = promisify(execFile);

describe('admin listener: Host and cross-site checks', () => {
  let origin: Origin;
  let sc: TestSidecache;
  let port: string;
  before(async () => {
    origin = await startOrigin((_req, res, n) => {
      res.writeHead(200, { 'cache-control': 'max-age=600' }).end(`#${n}`);
    });
    sc = await startTestSidecache({ routes: [{ name: 'r', origin: origin.url }] }, { reloadable: true });
    port = new URL(sc.adminUrl).port;
  });
  after(async () => {
    await sc?.close();
    await origin?.close();
  });

  const purgeTarget = () => `/purge?url=${encodeURIComponent(`${origin.url}/p`)}`;

  for (const host of ['evil.example', 'evil.example:PORT', 'EVIL.example.', 'localhost.evil.example:PORT']) {
    it(`GET /status.json, / and /metrics with Host: ${host} (DNS rebinding): 403`, async () => {
      for (const path of ['/status.json', '/', '/metrics', '/ca.pem']) {
        const res = await send(sc.adminUrl, path, { headers: { host: host.replace('PORT', port) } });
        assert.equal(res.status, 403, `${path}: ${res.text()}`);
        assert.equal(res.json().error, 'SC_ERR_ADMIN_HOST_NOT_ALLOWED');
        assert.doesNotMatch(res.text(), /sidecache_requests_total|<html/);
      }
    });
  }

  it('POST /purge with Host: evil.example: 403, nothing purged', async () => {
    await send(sc.url, '/r/p');
    const res = await send(sc.adminUrl, purgeTarget(), {
      method: 'POST',
      headers: { host: `evil.example:${port}` },
    });
    assert.equal(res.status, 403);
    assert.equal(res.json().error, 'SC_ERR_ADMIN_HOST_NOT_ALLOWED');
    await send(sc.url, '/r/p');
    assert.equal(origin.count('/p'), 1, 'still a hit: the purge did not happen');
  });

  it('own names and IP literals are accepted: 127.0.0.1, localhost, [::1], a pod IP', async () => {
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      'localhost',
      `[::1]:${port}`,
      '10.1.2.3:9090',
    ]) {
      const res = await send(sc.adminUrl, '/status.json', { headers: { host } });
      assert.equal(res.status, 200, `${host}: ${res.text()}`);
    }
  });

  it('the probes answer whatever the Host (orchestrators probe by any name)', async () => {
    for (const path of ['/healthz', '/readyz']) {
      const res = await send(sc.adminUrl, path, { headers: { host: 'sidecache.default.svc:9090' } });
      assert.equal(res.status, 200, path);
    }
  });

  for (const [name, headers] of [
    ['Origin: http://evil.example', { origin: 'http://evil.example' }],
    ['Origin: null', { origin: 'null' }],
    ['an Origin on another local port', { origin: 'http://127.0.0.1:1' }],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }],
    [
      'a same-origin Origin but Sec-Fetch-Site: cross-site',
      { origin: 'SELF', 'sec-fetch-site': 'cross-site' },
    ],
  ] as const) {
    it(`POST /purge and POST /reload with ${name}: 403, nothing purged or reloaded`, async () => {
      const h = Object.fromEntries(
        Object.entries(headers).map(([k, v]) => [k, v === 'SELF' ? sc.adminUrl : v]),
      );
      await send(sc.url, '/r/p');
      const before = origin.count('/p');
      const purge = await send(sc.adminUrl, purgeTarget(), { method: 'POST', headers: h });
      assert.equal(purge.status, 403, purge.text());
      assert.equal(purge.json().error, 'SC_ERR_ADMIN_CROSS_SITE');
      await send(sc.url, '/r/p');
      assert.equal(origin.count('/p'), before, 'still a hit: the purge did not happen');

      const reloads = () => send(sc.adminUrl, '/metrics').then((r) => r.text());
      const reloadsBefore = await reloads();
      const reload = await send(sc.adminUrl, '/reload', { method: 'POST', headers: h });
      assert.equal(reload.status, 403, reload.text());
      assert.equal(reload.json().error, 'SC_ERR_ADMIN_CROSS_SITE');
      assert.equal(
        /sidecache_config_reloads_total\{[^}]*\} \d+/.exec(await reloads())?.[0],
        /sidecache_config_reloads_total\{[^}]*\} \d+/.exec(reloadsBefore)?.[0],
      );
    });
  }

  it('same-origin and non-browser calls still purge and reload', async () => {
    for (const headers of [
      { origin: sc.adminUrl, 'sec-fetch-site': 'same-origin' },
      { origin: `http://localhost:${port}`, host: `localhost:${port}` },
      { 'sec-fetch-site': 'none' },
      {},
    ]) {
      await send(sc.url, '/r/p');
      const purge = await send(sc.adminUrl, purgeTarget(), { method: 'POST', headers });
      assert.equal(purge.status, 200, `${JSON.stringify(headers)}: ${purge.text()}`);
      assert.equal(purge.json().purged, 1);
      const reload = await send(sc.adminUrl, '/reload', { method: 'POST', headers });
      assert.equal(reload.status, 200, reload.text());
    }
  });

  it('purge and reload stay POST-only', async () => {
    for (const path of [purgeTarget(), '/reload']) {
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const res = await send(sc.adminUrl, path, { method });
        assert.equal(res.status, 405, `${method} ${path}`);
        assert.equal(res.headers.allow, 'POST');
      }
    }
  });

  it('curl with a forged Host, Origin or Sec-Fetch-Site is refused', async (t) => {
    const curl = requireTool(t, ['/usr/bin/curl', '/usr/local/bin/curl'], 'apt-get install -y curl');
    if (curl === null) return;
    const status = async (args: string[]) =>
      (await run(curl, ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', ...args])).stdout;
    assert.equal(await status(['-H', 'Host: evil.example', `${sc.adminUrl}/status.json`]), '403');
    assert.equal(
      await status(['-X', 'POST', '-H', 'Origin: http://evil.example', `${sc.adminUrl}/reload`]),
      '403',
    );
    assert.equal(
      await status(['-X', 'POST', '-H', 'Sec-Fetch-Site: cross-site', `${sc.adminUrl}/reload`]),
      '403',
    );
    assert.equal(await status([`${sc.adminUrl}/status.json`]), '200');
    assert.equal(await status(['-X', 'POST', `${sc.adminUrl}/reload`]), '200');
  });
});

describe('admin.allowedHosts', () => {
  let sc: TestSidecache;
  before(async () => {
    sc = await startTestSidecache({ admin: { allowedHosts: ['sidecache', '*.sidecache.internal'] } });
  });
  after(async () => {
    await sc?.close();
  });

  it('names listed in admin.allowedHosts are accepted, others still refused', async () => {
    for (const host of ['sidecache:9090', 'SideCache', 'a.sidecache.internal:9090']) {
      const res = await send(sc.adminUrl, '/metrics', { headers: { host } });
      assert.equal(res.status, 200, host);
    }
    for (const host of ['sidecache.evil.example', 'sidecache.internal', 'evil.example']) {
      const res = await send(sc.adminUrl, '/metrics', { headers: { host } });
      assert.equal(res.status, 403, host);
    }
  });
});
