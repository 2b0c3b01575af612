/**
 * The shutdown grace period is a hard deadline (issue 18, finding 6). A real sidecache process is
 * given work that never finishes on its own: an upgrade the origin never answers, an upgraded
 * connection with no traffic, a declined upgrade whose answer the client does not read, a blind CONNECT tunnel and an intercepted one with half a request
 * in it, a request body sent in part, a request the origin never answers, and a half-sent admin
 * request. On SIGTERM it must exit within `shutdown.graceMs` plus a margin, non-zero because it
 * had to force; and it exits 0 when everything finished in time.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { connectThrough } from '../helpers/connect.js';
import { type SidecacheProcess, spawnSidecache, startTestSidecache } from '../helpers/sidecache.js';

const GRACE_MS = 1_000;
/** Start-up of the forced teardown and the process exit, on a loaded 2-core machine. */
const MARGIN_MS = 2_500;

/**
 * An origin that reads everything and answers nothing, except a 101 to `GET /ws` (then silence).
 * Its sockets are kept so the test can close them.
 */
async function startBlackHole(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let head = '';
    const onData = (c: Buffer): void => {
      head += c.toString('latin1');
      if (head.length > 65_536) socket.off('data', onData);
      if (head.startsWith('GET /refuse ') && head.includes('\r\n\r\n')) {
        // Declines the upgrade with a large answer, for a client that reads none of it.
        socket.off('data', onData);
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 67108864\r\n\r\n');
        socket.write(Buffer.alloc(16 * 1024 * 1024, 120));
        return;
      }
      if (head.startsWith('GET /ws ') && head.includes('\r\n\r\n')) {
        socket.off('data', onData);
        socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n');
      }
    };
    socket.on('data', onData);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Opens a connection and writes `bytes`; the socket stays open (it is returned to be closed). */
async function openWith(port: number, bytes: string): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(bytes);
  return socket;
}

/** Waits for the child to exit, at most `ms`; SIGKILLs it after that. */
async function exitWithin(sc: SidecacheProcess, ms: number): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  const timer = setTimeout(() => sc.child.kill('SIGKILL'), ms);
  const [code] = (await once(sc.child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, ms: Date.now() - started };
}

describe('shutdown deadline', () => {
  let dir: string;
  let origin: { port: number; close(): Promise<void> };
  const clients: net.Socket[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sidecache-shutdown-'));
    origin = await startBlackHole();
  });
  after(async () => {
    for (const s of clients) s.destroy();
    await origin?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const configFile = (): string => {
    const file = join(dir, 'sidecache.yaml');
    writeFileSync(
      file,
      JSON.stringify({
        routes: [{ name: 'o', origin: `http://127.0.0.1:${origin.port}` }],
        allow: ['127.0.0.1/32', 'localhost'],
        intercept: ['localhost'],
        egress: { ports: [origin.port] },
        tunnel: { ports: [origin.port], idleTimeoutMs: 600_000 },
        tls: { caDir: join(dir, 'ca') },
        upstream: { headersTimeoutMs: 600_000, bodyTimeoutMs: 600_000 },
        limits: { requestTimeoutMs: 600_000, headersTimeoutMs: 600_000 },
        shutdown: { graceMs: GRACE_MS },
        log: { level: 'info' },
      }),
    );
    return file;
  };

  it('stuck upgrades, tunnels, bodies and requests: exits within graceMs, non-zero', async () => {
    const sc = await spawnSidecache(['--config', configFile()]);
    const port = Number(new URL(sc.url).port);
    const adminPort = Number(new URL(sc.adminUrl).port);
    const o = origin.port;
    try {
      // An upgrade the origin never answers.
      clients.push(
        await openWith(
          port,
          `GET http://127.0.0.1:${o}/hang HTTP/1.1\r\nHost: 127.0.0.1:${o}\r\n` +
            'Connection: upgrade\r\nUpgrade: websocket\r\n\r\n',
        ),
      );
      // A declined upgrade whose large answer the client does not read.
      clients.push(
        await openWith(
          port,
          `GET http://127.0.0.1:${o}/refuse HTTP/1.1\r\nHost: 127.0.0.1:${o}\r\n` +
            'Connection: upgrade\r\nUpgrade: websocket\r\n\r\n',
        ),
      );
      // An upgraded connection with no traffic.
      const upgraded = await openWith(
        port,
        `GET http://127.0.0.1:${o}/ws HTTP/1.1\r\nHost: 127.0.0.1:${o}\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n`,
      );
      clients.push(upgraded);
      const [switched] = (await once(upgraded, 'data')) as [Buffer];
      assert.match(switched.toString('latin1'), /^HTTP\/1\.1 101/);
      // A blind tunnel with nothing in it.
      const blind = await connectThrough(sc.url, `127.0.0.1:${o}`);
      assert.equal(blind.status, 200);
      if ('socket' in blind) clients.push(blind.socket);
      // An intercepted tunnel: TLS done, then half a request.
      const intercepted = await connectThrough(sc.url, `localhost:${o}`);
      assert.equal(intercepted.status, 200);
      if ('socket' in intercepted) {
        clients.push(intercepted.socket);
        const secure = tls.connect({
          socket: intercepted.socket,
          servername: 'localhost',
          rejectUnauthorized: false,
        });
        secure.on('error', () => {});
        await once(secure, 'secureConnect');
        secure.write('GET /half HTTP/1.1\r\nHost: localhost\r\nX-Half: ');
        clients.push(secure);
      }
      // A request body sent in part.
      clients.push(
        await openWith(port, 'POST /o/body HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n0123456789'),
      );
      // A request the origin never answers.
      clients.push(await openWith(port, 'GET /o/hang HTTP/1.1\r\nHost: x\r\n\r\n'));
      // A half-sent admin request.
      clients.push(await openWith(adminPort, 'GET /status.json HTTP/1.1\r\nHost: 127.0.0.1\r\n'));
      await new Promise((r) => setTimeout(r, 300));

      sc.child.kill('SIGTERM');
      const { code, ms } = await exitWithin(sc, GRACE_MS + 10_000);
      assert.ok(ms < GRACE_MS + MARGIN_MS, `exited after ${ms} ms (graceMs ${GRACE_MS})\n${sc.output()}`);
      assert.notEqual(code, null, 'exited by itself, not killed');
      assert.notEqual(code, 0, 'non-zero: it had to force');
      assert.match(sc.output(), /"forced":true/);
    } finally {
      if (sc.child.exitCode === null) sc.child.kill('SIGKILL');
    }
  });

  it('in process: close() settles at the deadline, forced, with the admin listener closed', async () => {
    const sc = await startTestSidecache({
      routes: [{ name: 'o', origin: `http://127.0.0.1:${origin.port}` }],
      allow: ['127.0.0.1/32'],
      egress: { ports: [origin.port] },
      upstream: { headersTimeoutMs: 600_000, bodyTimeoutMs: 600_000 },
    });
    const port = Number(new URL(sc.url).port);
    const o = origin.port;
    clients.push(
      await openWith(
        port,
        `GET http://127.0.0.1:${o}/hang HTTP/1.1\r\nHost: 127.0.0.1:${o}\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n`,
      ),
    );
    clients.push(
      await openWith(port, 'POST /o/body HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n0123456789'),
    );
    clients.push(
      await openWith(Number(new URL(sc.adminUrl).port), 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n'),
    );
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    const result = await sc.instance.close(GRACE_MS);
    const ms = Date.now() - started;
    assert.ok(ms < GRACE_MS + 500, `close() settled after ${ms} ms`);
    assert.equal(result.forced, true);
    assert.equal(result.abandoned, 1);
    await assert.rejects(fetch(`${sc.adminUrl}/healthz`), 'the admin listener is closed');
  });

  it('pipelined requests on a connection the client closed are not left in flight', async () => {
    const sc = await startTestSidecache({
      routes: [{ name: 'o', origin: `http://127.0.0.1:${origin.port}` }],
    });
    const port = Number(new URL(sc.url).port);
    const inFlight = async (): Promise<number> => {
      const text = await (await fetch(`${sc.adminUrl}/metrics`)).text();
      return Number(/^sidecache_in_flight_requests (\S+)/m.exec(text)?.[1]);
    };
    // Three requests in one write, then the client's FIN: the origin answers none of them, and
    // only the first response is ever attached to the socket.
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    await once(socket, 'connect');
    const get = (path: string) => `GET /o${path} HTTP/1.1\r\nHost: x\r\n\r\n`;
    socket.end(get('/hang-1') + get('/hang-2') + get('/hang-3'));
    await new Promise((r) => setTimeout(r, 300));
    socket.destroy();
    let left = await inFlight();
    for (let i = 0; i < 40 && left > 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      left = await inFlight();
    }
    assert.equal(left, 0, 'every exchange on the closed connection ended');
    const result = await sc.instance.close(GRACE_MS);
    assert.equal(result.forced, false);
  });

  it('nothing in flight: exits 0 well before the deadline', async () => {
    const sc = await spawnSidecache(['--config', configFile()]);
    // The signal handlers are installed just after the "started" line.
    await new Promise((r) => setTimeout(r, 300));
    sc.child.kill('SIGTERM');
    const { code, ms } = await exitWithin(sc, GRACE_MS + 10_000);
    assert.equal(code, 0, sc.output());
    assert.ok(ms < GRACE_MS + MARGIN_MS, `exited after ${ms} ms`);
    assert.match(sc.output(), /"forced":false/);
  });
});
