/**
 * A throwaway redis-server on a free loopback port for shared-tier tests (`--save '' --appendonly
 * no`, a temp dir), or the server named by REDIS_URL. Outside CI a missing redis-server skips the
 * tests with a message; under CI=true it fails them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable } from './system-tool.js';

export const REDIS_INSTALL = 'install redis-server (apt-get install -y redis-server) or set REDIS_URL';

/** Why the shared-tier tests cannot run here, or null when they can. Throws under CI=true. */
export function redisUnavailable(): string | null {
  if (process.env['REDIS_URL']) return null;
  if (redisBinary() !== null) return null;
  const message = `redis-server not found: ${REDIS_INSTALL}`;
  if (process.env['CI'] === 'true') throw new Error(`${message} (required under CI=true)`);
  return message;
}

export function redisBinary(): string | null {
  return findExecutable(['/usr/bin/redis-server', '/usr/local/bin/redis-server', '/usr/sbin/redis-server']);
}

export interface TestRedis {
  readonly url: string;
  /** True when this helper runs the server (it can be stopped and started again). */
  readonly owned: boolean;
  /** Kills the server (SIGKILL): clients see the connection drop. */
  stop(): Promise<void>;
  /** Starts it again on the same port (empty). */
  start(): Promise<void>;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as { port: number };
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = netConnect(port, '127.0.0.1');
      s.once('connect', () => {
        s.end('PING\r\n');
        s.once('data', (d) => {
          s.destroy();
          resolve(d.toString().startsWith('+PONG'));
        });
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function startTestRedis(): Promise<TestRedis> {
  const given = process.env['REDIS_URL'];
  if (given) {
    return { url: given, owned: false, async stop() {}, async start() {}, async close() {} };
  }
  const bin = redisBinary();
  if (bin === null) throw new Error(`redis-server not found: ${REDIS_INSTALL}`);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-redis-'));
  let child: ChildProcess | null = null;
  async function start(): Promise<void> {
    const c = spawn(
      bin as string,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      { stdio: 'ignore' },
    );
    child = c;
    await waitForPort(port, 5_000);
  }
  async function stop(): Promise<void> {
    const c = child;
    child = null;
    if (c === null || c.exitCode !== null) return;
    c.kill('SIGKILL');
    await once(c, 'exit');
  }
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    owned: true,
    stop,
    start,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
