/**
 * Zero-downtime config reload (issue 8): the real CLI with a temp config file, SIGHUP, and real
 * clients and origins on loopback. One process serves every case in turn, so each case also checks
 * that the process kept serving after the reloads before it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { send } from '../helpers/client.js';
import { connectThrough } from '../helpers/connect.js';
import { startOrigin, type TestOrigin } from '../helpers/origin.js';
import { type SidecacheProcess, spawnSidecache } from '../helpers/sidecache.js';

type Json = Record<string, unknown>;

describe('config reload on SIGHUP', () => {
  let dir: string;
  let file: string;
  let a: TestOrigin;
  let b: TestOrigin;
  /** Not a route origin: reached through the forward proxy and CONNECT only via `allow`. */
  let outside: TestOrigin;
  let sc: SidecacheProcess;
  /** Released by the slow-body case: the origin then sends the rest of /slow. */
  let releaseSlow: () => void = () => {};
  let hits = 0;

  const baseConfig = (): Json => ({
    log: { level: 'info', access: false },
    routes: [
      { name: 'a', origin: a.url },
      { name: 'gone', origin: b.url, prefix: '/gone/' },
      { name: 'c', origin: b.url, cache: { enabled: false } },
    ],
    egress: { ports: [80, 443, outside.port] },
    tunnel: { ports: [443, outside.port] },
  });
  let config: Json;

  const write = (text: string): void => writeFileSync(file, text);
  const writeConfig = (c: Json): void => {
    config = c;
    write(`${JSON.stringify(c, null, 2)}\n`);
  };

  const count = (text: string): number => sc.output().split(text).length - 1;

  /** Sends SIGHUP and waits (up to 10 s) for the reload's outcome line; returns it. */
  async function reload(expect: 'config reloaded' | 'config reload rejected'): Promise<Json> {
    const before = count(`"${expect}`);
    const other = expect === 'config reloaded' ? 'config reload rejected' : 'config reloaded';
    const otherBefore = count(`"${other}`);
    sc.child.kill('SIGHUP');
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (count(`"${other}`) > otherBefore)
        assert.fail(`expected "${expect}", got "${other}":\n${sc.output()}`);
      if (count(`"${expect}`) > before) {
        const lines = sc
          .output()
          .split('\n')
          .filter((l) => l.includes(`"${expect}`));
        return JSON.parse(lines[lines.length - 1] as string) as Json;
      }
      await sleep(20);
    }
    assert.fail(`no "${expect}" line within 10 s:\n${sc.output()}`);
  }

  async function metric(name: string): Promise<number> {
    const text = (await send(sc.adminUrl, '/metrics')).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    assert.ok(line, `${name} not in /metrics`);
    return Number(line.split(' ')[1]);
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sidecache-reload-'));
    file = join(dir, 'sidecache.yaml');
    a = await startOrigin(async (req, res) => {
      if (req.url === '/slow') {
        // Headers and a first chunk now, the rest when the test says so.
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2000' });
        res.write('x'.repeat(1000));
        await new Promise<void>((resolve) => {
          releaseSlow = resolve;
        });
        res.end('y'.repeat(1000));
        return;
      }
      res.end(`a${req.url}`);
    });
    b = await startOrigin((_req, res) => {
      hits++;
      res.writeHead(200, { 'cache-control': 'max-age=60' }).end(`b #${hits}`);
    });
    outside = await startOrigin((req, res) => {
      res.end(`outside${req.url}`);
    });
    writeConfig(baseConfig());
    sc = await spawnSidecache(['--config', file]);
  });

  after(async () => {
    releaseSlow();
    if (sc) assert.equal(await sc.stop(), 0);
    await Promise.all([a?.close(), b?.close(), outside?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts with its metrics: no reloads yet, and the load time as the last success', async () => {
    assert.equal(await metric('sidecache_config_reloads_total{result="ok"}'), 0);
    assert.equal(await metric('sidecache_config_reloads_total{result="rejected"}'), 0);
    const loaded = await metric('sidecache_config_last_reload_success_timestamp_seconds');
    assert.ok(loaded > Date.now() / 1000 - 120 && loaded <= Date.now() / 1000, String(loaded));
  });

  it('a slow response in flight completes in full across a reload that changes its pool; a new route serves', async () => {
    const body = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const { hostname, port } = new URL(sc.url);
      const req = http.get({ host: hostname, port, path: '/a/slow', agent: false }, (res) => {
        let text = '';
        res.setEncoding('latin1');
        res.on('data', (c: string) => {
          text += c;
        });
        res.once('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.once('error', reject);
      });
      req.once('error', reject);
    });
    // The origin has sent the headers and half the body: the exchange is in flight.
    const deadline = Date.now() + 10_000;
    while (a.requests.filter((r) => r.url === '/slow').length === 0 && Date.now() < deadline) await sleep(10);
    await sleep(100);

    const routes = [...(config.routes as Json[])];
    routes[0] = { ...(routes[0] as Json), upstream: { connectionsPerOrigin: 4, headersTimeoutMs: 5_000 } };
    routes.push({ name: 'added', origin: outside.url });
    writeConfig({ ...config, routes });
    const retiredBefore = count('upstream pools with old settings retired');
    const line = await reload('config reloaded');
    assert.deepEqual(line.routesAdded, ['added']);
    assert.equal(
      count('upstream pools with old settings retired'),
      retiredBefore + 1,
      'the pool of the slow exchange was retired while it was in flight',
    );
    assert.deepEqual(line.routesChanged, ['a']);
    assert.deepEqual(line.routesRemoved, []);

    const added = await send(sc.url, '/added/hello');
    assert.equal(added.status, 200);
    assert.equal(added.text(), 'outside/hello');
    // New exchanges to the changed route go out on its new pool while the old one drains.
    const fresh = await send(sc.url, '/a/fresh');
    assert.equal(fresh.status, 200);
    assert.equal(fresh.text(), 'a/fresh');

    releaseSlow();
    const slow = await body;
    assert.equal(slow.status, 200);
    assert.equal(slow.text, `${'x'.repeat(1000)}${'y'.repeat(1000)}`);
    assert.equal(await metric('sidecache_config_reloads_total{result="ok"}'), 1);
  });

  it('a removed route stops serving: 403 no_route', async () => {
    assert.equal((await send(sc.url, '/gone/x')).status, 200);
    writeConfig({ ...config, routes: (config.routes as Json[]).filter((r) => r.name !== 'gone') });
    const line = await reload('config reloaded');
    assert.deepEqual(line.routesRemoved, ['gone']);
    const res = await send(sc.url, '/gone/x');
    assert.equal(res.status, 403);
    assert.equal(res.json().reason, 'no_route');
    assert.equal((await send(sc.url, '/a/still')).text(), 'a/still');
  });

  it('a broken YAML file or an unknown key is rejected, logged precisely and counted; the old routes keep serving', async () => {
    const rejectedBefore = await metric('sidecache_config_reloads_total{result="rejected"}');
    const good = config;
    write('routes:\n  - name: a\n    origin: [unclosed\n');
    const broken = await reload('config reload rejected');
    assert.match(JSON.stringify(broken.problems), /invalid YAML/);
    assert.equal((await send(sc.url, '/a/after-broken')).text(), 'a/after-broken');

    writeConfig({ ...good, bogusKey: 1 });
    const unknown = await reload('config reload rejected');
    assert.match(JSON.stringify(unknown.problems), /bogusKey/);
    assert.equal((await send(sc.url, '/a/after-unknown')).text(), 'a/after-unknown');
    assert.equal((await send(sc.url, '/added/x')).status, 200);
    assert.equal(await metric('sidecache_config_reloads_total{result="rejected"}'), rejectedBefore + 2);
    writeConfig(good);
  });

  it('a setting bound at start is refused by name, and nothing else in that reload is applied', async () => {
    const cache = { maxSizeBytes: 300 * 1024 * 1024 };
    writeConfig({ ...config, cache, routes: (config.routes as Json[]).filter((r) => r.name !== 'added') });
    const line = await reload('config reload rejected');
    assert.deepEqual(line.problems, ['cache.maxSizeBytes: changing requires a restart']);
    assert.equal((await send(sc.url, '/added/y')).status, 200);
    const { cache: _, ...rest } = config;
    writeConfig({ ...rest, routes: config.routes });
  });

  it('a changed cache policy applies to new requests', async () => {
    const start = hits;
    assert.equal((await send(sc.url, '/c/p')).text(), `b #${start + 1}`);
    assert.equal(
      (await send(sc.url, '/c/p')).text(),
      `b #${start + 2}`,
      'cache off: every request reaches b',
    );
    const routes = (config.routes as Json[]).map((r) =>
      r.name === 'c' ? { ...r, cache: { enabled: true } } : r,
    );
    writeConfig({ ...config, routes });
    const line = await reload('config reloaded');
    assert.deepEqual(line.routesChanged, ['c']);
    const miss = await send(sc.url, '/c/p');
    assert.equal(miss.text(), `b #${start + 3}`);
    const hit = await send(sc.url, '/c/p');
    assert.equal(hit.text(), `b #${start + 3}`, 'cache on: the second request is a hit');
    assert.match(String(hit.headers['cache-status']), /hit/);
    assert.equal(hits, start + 3);
  });

  it('an allow-list change applies to the forward proxy and to CONNECT', async () => {
    const target = `${outside.url}/fwd`;
    const authority = `127.0.0.1:${outside.port}`;
    // Not a route origin any more (the route "added" is dropped) and not allowed: refused.
    writeConfig({ ...config, routes: (config.routes as Json[]).filter((r) => r.name !== 'added') });
    await reload('config reloaded');
    assert.equal((await send(sc.url, target)).status, 403);
    const refused = await connectThrough(sc.url, authority);
    assert.equal(refused.status, 403);

    writeConfig({ ...config, allow: ['127.0.0.1'] });
    const line = await reload('config reloaded');
    assert.deepEqual(line.changed, ['allow']);
    const fwd = await send(sc.url, target);
    assert.equal(fwd.status, 200);
    assert.equal(fwd.text(), 'outside/fwd');
    const tunnel = await connectThrough(sc.url, authority);
    assert.equal(tunnel.status, 200);
    if ('socket' in tunnel) {
      tunnel.socket.write(`GET /tunnelled HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`);
      let raw = tunnel.head.toString('latin1');
      for await (const chunk of tunnel.socket) raw += (chunk as Buffer).toString('latin1');
      assert.match(raw, /^HTTP\/1\.1 200 /);
      assert.match(raw, /outside\/tunnelled$/);
    }

    writeConfig({ ...config, allow: [] });
    await reload('config reloaded');
    assert.equal((await send(sc.url, target)).status, 403);
    assert.equal((await connectThrough(sc.url, authority)).status, 403);
  });

  it('POST /reload on the admin listener reloads as SIGHUP does: 200 with the summary, 422 with the problems', async () => {
    const okBefore = await metric('sidecache_config_reloads_total{result="ok"}');
    writeConfig({ ...config, routes: [...(config.routes as Json[]), { name: 'viaadmin', origin: a.url }] });
    const ok = await send(sc.adminUrl, '/reload', { method: 'POST' });
    assert.equal(ok.status, 200);
    assert.deepEqual((ok.json().summary as Json).routesAdded, ['viaadmin']);
    assert.equal((await send(sc.url, '/viaadmin/z')).text(), 'a/z');
    assert.equal(await metric('sidecache_config_reloads_total{result="ok"}'), okBefore + 1);

    write('routes: 7\n');
    const bad = await send(sc.adminUrl, '/reload', { method: 'POST' });
    assert.equal(bad.status, 422);
    assert.equal(bad.json().result, 'rejected');
    assert.match(JSON.stringify(bad.json().problems), /routes/);
    assert.equal((await send(sc.url, '/viaadmin/z')).text(), 'a/z');
    assert.equal((await send(sc.adminUrl, '/reload')).status, 405);
  });
});
