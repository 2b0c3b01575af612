/**
 * Keep-warm (issue 11): warm start, stay warm (minIdle), backoff for a down origin, /readyz while
 * warming, clean shutdown. Real parts only: a TLS origin whose handshake costs time (its
 * SNICallback waits, or is held until the test releases it), a real nameserver that answers
 * slowly, and sidecache in-process. Assertions are on counts (connections the origin accepted,
 * questions the nameserver got, metric counters), never on timing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parsePromText, sumOf } from '../../src/metrics/prom-text.js';
import { runChildScript } from '../helpers/child-script.js';
import { send } from '../helpers/client.js';
import { connectThrough } from '../helpers/connect.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { DnsZone } from '../helpers/dns-zone.js';
import { createTestCa, type TestCa } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { runCli, startTestSidecache, type TestSidecache } from '../helpers/sidecache.js';

const runFile = promisify(execFile);

const HOST = 'api.warm-test.example';
const HANDSHAKE_DELAY_MS = 60;
/** HOST from static DNS hosts, so the client sends SNI (the origin's SNICallback runs) without a nameserver. */
const STATIC_NAME = { dns: { hosts: { [HOST]: '127.0.0.1' } }, allow: ['127.0.0.0/8'] };

interface SlowTlsOrigin {
  readonly port: number;
  connections(): number;
  /** Connections open right now. */
  open(): number;
  /** Destroys every open connection (as an origin's idle timeout would). */
  dropAll(): void;
  /** While held, handshakes wait until `release()`. */
  hold(): void;
  release(): void;
  close(): Promise<void>;
}

/** An HTTPS origin whose every TLS handshake waits `delayMs` in its SNICallback (or until released). */
async function startSlowTlsOrigin(
  ca: TestCa,
  delayMs: number,
  names: readonly string[] = [HOST],
): Promise<SlowTlsOrigin> {
  const leaf = await createLeaf(ca, names);
  let connections = 0;
  let held = false;
  const waiting: (() => void)[] = [];
  const sockets = new Set<Socket>();
  const server = https.createServer(
    {
      cert: leaf.cert,
      key: leaf.key,
      keepAliveTimeout: 30_000,
      SNICallback(_name, cb) {
        const go = (): void => cb(null, undefined);
        if (held) waiting.push(go);
        else setTimeout(go, delayMs);
      },
    },
    (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ url: req.url }));
    },
  );
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const release = (): void => {
    held = false;
    for (const go of waiting.splice(0)) go();
  };
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => connections,
    open: () => sockets.size,
    dropAll() {
      for (const s of sockets) s.destroy();
    },
    hold() {
      held = true;
    },
    release,
    async close() {
      release();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const leaves = new WeakMap<TestCa, Map<string, Promise<{ cert: string; key: string }>>>();
function createLeaf(ca: TestCa, names: readonly string[]): Promise<{ cert: string; key: string }> {
  const byNames = leaves.get(ca) ?? new Map<string, Promise<{ cert: string; key: string }>>();
  leaves.set(ca, byNames);
  let leaf = byNames.get(names.join(','));
  if (leaf === undefined) {
    leaf = ca.issue({ dns: [...names], ips: ['127.0.0.1'] });
    byNames.set(names.join(','), leaf);
  }
  return leaf;
}

async function metric(sc: TestSidecache, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${sc.adminUrl}/metrics`)).text();
  return sumOf(parsePromText(text), name, labels);
}

/** Polls `probe` every 25 ms until it returns true; false after `ms`. Bounded in count and time. */
async function eventually(probe: () => boolean | Promise<boolean>, ms = 5_000): Promise<boolean> {
  for (let i = 0; i < ms / 25; i++) {
    if (await probe()) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return probe();
}

describe('warm start: the first request finds a connection already open', () => {
  let ca: TestCa;
  let origin: SlowTlsOrigin;
  let nameserver: TestDnsServer;
  let sc: TestSidecache;
  const zone = new DnsZone();
  let originUrl: string;

  before(async () => {
    ca = await createTestCa();
    origin = await startSlowTlsOrigin(ca, HANDSHAKE_DELAY_MS);
    zone.set(HOST, { A: ['127.0.0.1'], ttl: 300 });
    zone.delayMs = 80; // a slow nameserver
    nameserver = await startDnsServer(zone);
    originUrl = `https://${HOST}:${origin.port}`;
    sc = await startTestSidecache({
      routes: [{ name: 'api', origin: originUrl }],
      allow: ['127.0.0.0/8'],
      dns: { mode: 'udp', servers: [nameserver.address], family: 'ipv4only' },
      upstream: { caFile: ca.writeCertFile(), warm: { connections: 2, minIdle: 1 } },
    } as never);
  });
  after(async () => {
    await sc?.close();
    await nameserver?.stop();
    await origin?.close();
  });

  it('opens the configured connections at start (DNS, TCP, TLS) before any request', async () => {
    const result = await sc.instance.warmStart;
    assert.equal(result.opened, 2);
    assert.equal(result.failed, 0);
    assert.equal(result.timedOut, false);
    assert.equal(origin.connections(), 2);
    assert.equal(await metric(sc, 'sidecache_upstream_connections_opened_total', { origin: originUrl }), 2);
    assert.equal(await metric(sc, 'sidecache_upstream_connections_ahead_total', { origin: originUrl }), 2);
    assert.equal(await metric(sc, 'sidecache_upstream_idle_connections', { origin: originUrl }), 2);
    // The handshakes were measured (the origin's SNICallback waits before every handshake).
    const tlsSum = await metric(sc, 'sidecache_upstream_connect_duration_seconds_sum', {
      origin: originUrl,
      phase: 'tls',
    });
    assert.ok(tlsSum >= (2 * HANDSHAKE_DELAY_MS) / 1000, `tls sum ${tlsSum}`);
    assert.ok((await metric(sc, 'sidecache_warm_start_duration_seconds')) > 0);
  });

  it('the first request opens no connection and asks no nameserver', async () => {
    await sc.instance.warmStart;
    const questions = zone.total;
    const connections = origin.connections();
    const res = await send(sc.url, '/api/first');
    assert.equal(res.status, 200, res.text());
    assert.equal(res.json().url, '/first');
    assert.equal(origin.connections(), connections, 'the origin saw no new connection');
    assert.equal(zone.total, questions, 'the nameserver got no question');
    assert.match(String(res.headers['server-timing']), /connect;dur=0(\.0+)?;desc="reused"/);
    assert.equal(
      await metric(sc, 'sidecache_upstream_requests_total', { origin: originUrl, connection: 'reused' }),
      1,
    );
    assert.equal(await metric(sc, 'sidecache_upstream_requests_total', { connection: 'new' }), 0);
    assert.equal(await metric(sc, 'sidecache_upstream_connections_opened_total', { origin: originUrl }), 2);
    assert.equal(
      await metric(sc, 'sidecache_upstream_connections_ahead_used_total', { origin: originUrl }),
      1,
    );
    // Credited with that connection's measured handshake, which included the origin's delay.
    const saved = await metric(sc, 'sidecache_saved_seconds_total', { kind: 'connection', route: 'api' });
    assert.ok(saved >= HANDSHAKE_DELAY_MS / 1000, `saved ${saved}`);
  });

  it('/readyz is ready once warm', async () => {
    const res = await fetch(`${sc.adminUrl}/readyz`);
    assert.equal(res.status, 200);
  });
});

describe('warm start with interception', () => {
  it("mints the intercepted route host's leaf certificate before any CONNECT", async () => {
    const ca = await createTestCa();
    const origin = await startSlowTlsOrigin(ca, 0);
    const caDir = mkdtempSync(join(tmpdir(), 'sidecache-warm-ca-'));
    const sc = await startTestSidecache({
      routes: [{ name: 'api', origin: `https://${HOST}:${origin.port}` }],
      ...STATIC_NAME,
      intercept: [HOST],
      tls: { caDir },
      upstream: { caFile: ca.writeCertFile() },
    } as never);
    try {
      await sc.instance.warmStart;
      assert.equal(await metric(sc, 'sidecache_tls_leaf_certificates_issued_total'), 1);
    } finally {
      await sc.close();
      await origin.close();
      rmSync(caDir, { recursive: true, force: true });
    }
  });
});

describe('intercepted hosts no route covers are kept warm (issue 23)', () => {
  const INTERCEPTED = 'api.intercept-warm.test';
  let ca: TestCa;
  let origin: SlowTlsOrigin;
  let nameserver: TestDnsServer;
  let caDir: string;
  const zone = new DnsZone();
  const started: TestSidecache[] = [];

  before(async () => {
    ca = await createTestCa();
    origin = await startSlowTlsOrigin(ca, HANDSHAKE_DELAY_MS, [INTERCEPTED]);
    zone.set(INTERCEPTED, { A: ['127.0.0.1'], ttl: 300 });
    zone.delayMs = 80; // a slow nameserver: the first page would pay it
    nameserver = await startDnsServer(zone);
    caDir = mkdtempSync(join(tmpdir(), 'sidecache-warm-intercept-'));
  });
  after(async () => {
    for (const sc of started) await sc.close();
    await nameserver?.stop();
    await origin?.close();
    if (caDir) rmSync(caDir, { recursive: true, force: true });
  });

  const start = async (warm: Record<string, unknown>): Promise<TestSidecache> => {
    const sc = await startTestSidecache({
      // No routes: the host is reached only through CONNECT, on a port tunnel.ports does not list.
      allow: [INTERCEPTED, '127.0.0.0/8'],
      intercept: [`${INTERCEPTED}:${origin.port}`],
      dns: { mode: 'udp', servers: [nameserver.address], family: 'ipv4only' },
      tls: { caDir },
      upstream: { caFile: ca.writeCertFile(), warm },
    } as never);
    started.push(sc);
    return sc;
  };

  it('resolves and connects at start, so the first intercepted request opens nothing and asks nothing', async () => {
    const before = { connections: origin.connections(), questions: zone.total };
    const sc = await start({ connections: 2, minIdle: 1 });
    const result = await sc.instance.warmStart;
    assert.deepEqual(
      { origins: result.origins, opened: result.opened, failed: result.failed },
      { origins: 1, opened: 2, failed: 0 },
    );
    assert.equal(origin.connections() - before.connections, 2, 'two connections opened before any request');
    assert.ok(zone.total > before.questions, 'the name was resolved at start');
    const originUrl = `https://${INTERCEPTED}:${origin.port}`;
    assert.deepEqual(
      sc.instance.warm.state().origins.map((o) => [o.origin, o.route, o.parked]),
      [[originUrl, `intercept ${INTERCEPTED}:${origin.port}`, 2]],
    );
    assert.equal(await metric(sc, 'sidecache_upstream_idle_connections', { origin: originUrl }), 2);
    // Its leaf certificate was minted during the warm start too.
    assert.equal(await metric(sc, 'sidecache_tls_leaf_certificates_issued_total'), 1);
    assert.equal((await fetch(`${sc.adminUrl}/readyz`)).status, 200);

    const connections = origin.connections();
    const questions = zone.total;
    const { stdout } = await runFile('curl', [
      '-sS',
      '--fail',
      '-D',
      '-',
      '-x',
      sc.url,
      '--cacert',
      join(caDir, 'ca.pem'),
      `${originUrl}/first`,
    ]);
    assert.match(stdout, /"url":"\/first"/);
    assert.match(stdout, /server-timing:.*connect;dur=0(\.0+)?;desc="reused"/i);
    assert.equal(origin.connections(), connections, 'the first request opened no connection');
    assert.equal(zone.total, questions, 'the first request asked the nameserver nothing');
    assert.equal(
      await metric(sc, 'sidecache_upstream_connections_ahead_used_total', { origin: originUrl }),
      1,
    );
  });

  it('/readyz says "warming" until the intercepted host is connected', async () => {
    origin.hold();
    const sc = await start({ connections: 1, readyWait: true });
    const warming = await fetch(`${sc.adminUrl}/readyz`);
    assert.equal(warming.status, 503);
    assert.equal(((await warming.json()) as { why: string }).why, 'warming');
    origin.release();
    assert.equal((await sc.instance.warmStart).opened, 1);
    assert.equal((await fetch(`${sc.adminUrl}/readyz`)).status, 200);
  });

  it('the port an entry names is the one intercepted and reachable; others of the host are not', async () => {
    const sc = await start({ connections: 0, minIdle: 0 });
    const named = await connectThrough(sc.url, `${INTERCEPTED}:${origin.port}`);
    assert.ok('socket' in named, `CONNECT to the named port: ${named.status}`);
    named.socket.destroy();
    const other = await connectThrough(
      sc.url,
      `${INTERCEPTED}:${origin.port === 65_535 ? 65_534 : origin.port + 1}`,
    );
    assert.ok('body' in other, 'CONNECT to another port of the host was opened');
    assert.equal(other.status, 403);
    assert.match(other.body, /port \d+ is not allowed/);
  });

  it('check-config lists the warmed host and says a wildcard cannot be warmed', async () => {
    const out = await runCli([
      'check-config',
      '--allow',
      INTERCEPTED,
      '--allow',
      '*.wild.test',
      '--intercept',
      `${INTERCEPTED}:8443`,
      '--intercept',
      '*.wild.test',
    ]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(
      out.stdout,
      new RegExp(
        `intercepted hosts no route covers, warmed like a route origin: https://${INTERCEPTED.replaceAll('.', '\\.')}:8443`,
      ),
    );
    assert.match(out.stdout, /not warmed: \*\.wild\.test \(a wildcard names no host/);
    assert.match(out.stdout, /warm start: intercepted hosts resolved and connected in parallel/);
    const bad = await runCli(['check-config', '--allow', INTERCEPTED, '--intercept', `${INTERCEPTED}:0`]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr + bad.stdout, /intercept\[0\].*port 0 is out of range \(1-65535\)/);
  });
});

describe('config reload', () => {
  it('warms a route origin the reload added, before any request to it, and stays ready', async () => {
    const ca = await createTestCa();
    const first = await startSlowTlsOrigin(ca, 0);
    const added = await startSlowTlsOrigin(ca, 0);
    const caFile = ca.writeCertFile();
    const input = (ports: number[]) => ({
      routes: ports.map((port, i) => ({ name: `r${i}`, origin: `https://${HOST}:${port}` })),
      ...STATIC_NAME,
      listen: '127.0.0.1:0',
      admin: { listen: '127.0.0.1:0' },
      log: { level: 'silent' },
      upstream: { caFile, warm: { connections: 1, minIdle: 1 } },
    });
    const sc = await startTestSidecache(input([first.port]) as never);
    try {
      await sc.instance.warmStart;
      assert.equal(added.connections(), 0);
      const { parseConfig } = await import('../../src/config/load.js');
      const { compileRuntime } = await import('../../src/config/runtime.js');
      const outcome = sc.instance.reload(() =>
        compileRuntime(parseConfig(input([first.port, added.port]) as never)),
      );
      assert.equal(outcome.result, 'ok', JSON.stringify(outcome));
      assert.ok(await eventually(() => added.connections() === 1), 'the added origin was not warmed');
      assert.equal((await fetch(`${sc.adminUrl}/readyz`)).status, 200, 'a reload does not un-ready');
      const addedOrigin = `https://${HOST}:${added.port}`;
      assert.ok(
        await eventually(
          async () =>
            (await metric(sc, 'sidecache_upstream_idle_connections', { origin: addedOrigin })) === 1,
        ),
      );
      const res = await send(sc.url, '/r1/x');
      assert.equal(res.status, 200, res.text());
      // It went out on the warmed connection (keep-warm then opens a replacement: minIdle 1).
      assert.match(String(res.headers['server-timing']), /connect;dur=0(\.0+)?;desc="reused"/);
      assert.equal(
        await metric(sc, 'sidecache_upstream_connections_ahead_used_total', { origin: addedOrigin }),
        1,
      );
    } finally {
      await sc.close();
      await first.close();
      await added.close();
    }
  });
});

describe('report after a reload (issue 19)', () => {
  it("keeps the start's warm-start figure and reports the reload's warming separately", async () => {
    const ca = await createTestCa();
    const origin = await startSlowTlsOrigin(ca, HANDSHAKE_DELAY_MS);
    const input = {
      routes: [{ name: 'api', origin: `https://${HOST}:${origin.port}` }],
      ...STATIC_NAME,
      listen: '127.0.0.1:0',
      admin: { listen: '127.0.0.1:0' },
      log: { level: 'silent' },
      upstream: { caFile: ca.writeCertFile(), warm: { connections: 1, minIdle: 1 } },
    };
    const sc = await startTestSidecache(input as never);
    try {
      const started = await sc.instance.warmStart;
      const startFigure = await metric(sc, 'sidecache_warm_start_duration_seconds');
      assert.ok(startFigure >= HANDSHAKE_DELAY_MS / 1000, `warm start ${startFigure}`);
      assert.equal(startFigure, started.durationMs / 1000);
      // An unchanged config: the reload has nothing new to warm, so its warming takes next to nothing.
      const { parseConfig } = await import('../../src/config/load.js');
      const { compileRuntime } = await import('../../src/config/runtime.js');
      const outcome = sc.instance.reload(() => compileRuntime(parseConfig(input as never)));
      assert.equal(outcome.result, 'ok', JSON.stringify(outcome));
      assert.ok(
        await eventually(async () => (await metric(sc, 'sidecache_warming')) === 0),
        'the reload warming did not finish',
      );
      assert.equal(await metric(sc, 'sidecache_warm_start_duration_seconds'), startFigure);
      const reloadFigure = await metric(sc, 'sidecache_warm_reload_duration_seconds');
      assert.ok(reloadFigure < startFigure, `reload ${reloadFigure} vs start ${startFigure}`);
      const { runReport, formatSeconds } = await import('../../src/commands/report.js');
      const text = await runReport({ admin: sc.adminUrl, json: false });
      assert.ok(text.includes(`warm start took ${formatSeconds(startFigure)};`), text);
      assert.ok(
        text.includes(`warming after the last config reload took ${formatSeconds(reloadFigure)}`),
        text,
      );
    } finally {
      await sc.close();
      await origin.close();
    }
  });
});

describe('stay warm: connections the origin closes are re-opened', () => {
  let ca: TestCa;
  let origin: SlowTlsOrigin;
  let sc: TestSidecache;

  before(async () => {
    ca = await createTestCa();
    origin = await startSlowTlsOrigin(ca, 5);
    sc = await startTestSidecache({
      routes: [{ name: 'api', origin: `https://${HOST}:${origin.port}` }],
      ...STATIC_NAME,
      upstream: { caFile: ca.writeCertFile(), warm: { connections: 1, minIdle: 1 } },
    } as never);
    await sc.instance.warmStart;
  });
  after(async () => {
    await sc?.close();
    await origin?.close();
  });

  it('re-opens after the origin drops its idle connections, and the next request reuses it', async () => {
    assert.equal(origin.connections(), 1);
    origin.dropAll();
    const parked = (): number => sc.instance.warm.state().origins[0]?.parked ?? 0;
    assert.ok(await eventually(() => origin.connections() >= 2 && parked() === 1), 'no re-open seen');
    // Let the parked socket settle, then check nothing more is opened: one idle is the target.
    const opened = origin.connections();
    const res = await send(sc.url, '/api/after-drop');
    assert.equal(res.status, 200, res.text());
    assert.match(String(res.headers['server-timing']), /desc="reused"/);
    // The request took the parked connection; keep-warm then opens one more (minIdle 1).
    assert.ok(await eventually(() => origin.connections() === opened + 1));
    assert.equal(await metric(sc, 'sidecache_upstream_requests_total', { connection: 'new' }), 0);
  });
});

describe('stay warm: an origin that is down is retried with backoff, not in a loop', () => {
  let sc: TestSidecache;
  let downOrigin: string;

  before(async () => {
    downOrigin = `http://127.0.0.1:${await freePort()}`; // nothing listens: ECONNREFUSED at once
    sc = await startTestSidecache({
      routes: [{ name: 'down', origin: downOrigin }],
      upstream: { warm: { connections: 1, minIdle: 1, retryMinMs: 100, retryMaxMs: 400 } },
    } as never);
  });
  after(async () => {
    await sc?.close();
  });

  it('makes a few attempts in a 1.5 s window, not hundreds', async () => {
    const result = await sc.instance.warmStart;
    assert.equal(result.failed, 1);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const attempts = await metric(sc, 'sidecache_upstream_connect_errors_total', { origin: downOrigin });
    // 0, +100, +200, +400, +400, +400 ms… ≈ 6 in 1.5 s; far fewer than an unbounded retry loop.
    assert.ok(attempts >= 3 && attempts <= 12, `attempts ${attempts}`);
    const state = sc.instance.warm.state().origins[0];
    assert.ok(state !== undefined && state.failures >= 3, JSON.stringify(state));
    // Ready anyway: a down origin does not hold readiness beyond the warm start.
    assert.equal((await fetch(`${sc.adminUrl}/readyz`)).status, 200);
  });
});

describe('/readyz waits for the warm start when readyWait is on', () => {
  let ca: TestCa;
  let origin: SlowTlsOrigin;
  const started: TestSidecache[] = [];

  before(async () => {
    ca = await createTestCa();
    origin = await startSlowTlsOrigin(ca, 0);
  });
  after(async () => {
    for (const sc of started) await sc.close();
    await origin?.close();
  });

  const start = async (warm: Record<string, unknown>): Promise<TestSidecache> => {
    const sc = await startTestSidecache({
      routes: [{ name: 'api', origin: `https://${HOST}:${origin.port}` }],
      ...STATIC_NAME,
      upstream: { caFile: ca.writeCertFile(), warm },
    } as never);
    started.push(sc);
    return sc;
  };

  it('says "warming" (503) until the handshakes finish, then 200', async () => {
    origin.hold();
    const sc = await start({ connections: 2, readyWait: true });
    const warming = await fetch(`${sc.adminUrl}/readyz`);
    assert.equal(warming.status, 503);
    assert.equal(((await warming.json()) as { why: string }).why, 'warming');
    origin.release();
    const result = await sc.instance.warmStart;
    assert.equal(result.opened, 2);
    assert.equal((await fetch(`${sc.adminUrl}/readyz`)).status, 200);
  });

  it('is ready after timeoutMs even when the handshakes never finish', async () => {
    origin.hold();
    const sc = await start({ connections: 1, readyWait: true, timeoutMs: 200 });
    assert.equal((await fetch(`${sc.adminUrl}/readyz`)).status, 503);
    const result = await sc.instance.warmStart;
    assert.equal(result.timedOut, true);
    assert.equal((await fetch(`${sc.adminUrl}/readyz`)).status, 200);
    origin.release();
  });

  it('does not wait with readyWait: false', async () => {
    origin.hold();
    const sc = await start({ connections: 1, readyWait: false });
    assert.equal((await fetch(`${sc.adminUrl}/readyz`)).status, 200);
    origin.release();
    await sc.instance.warmStart;
  });
});

describe('shutdown', () => {
  it('closes parked connections and backoff timers: the process exits on its own', async () => {
    const { code, signal, out } = await runChildScript(new URL('./warm-exit.child.ts', import.meta.url), {
      killAfterMs: 20_000,
    });
    assert.equal(signal, null, `killed: the process did not exit on its own\n${out}`);
    assert.equal(code, 0, out);
    assert.match(out, /parked=1 originOpenAfterClose=0/);
  });
});
