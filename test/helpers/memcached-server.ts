/**
 * A throwaway memcached on a free loopback port for the memcached tier's tests (`-U 0`: TCP only),
 * or the server named by MEMCACHED_SERVERS. Outside CI a missing memcached skips the tests with a
 * message; under CI=true it fails them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect as netConnect } from 'node:net';
import { findExecutable } from './system-tool.js';

export const MEMCACHED_INSTALL = 'install memcached (apt-get install -y memcached) or set MEMCACHED_SERVERS';

/** Why the memcached tests cannot run here, or null when they can. Throws under CI=true. */
export function memcachedUnavailable(): string | null {
  if (process.env['MEMCACHED_SERVERS']) return null;
  if (memcachedBinary() !== null) return null;
  const message = `memcached not found: ${MEMCACHED_INSTALL}`;
  if (process.env['CI'] === 'true') throw new Error(`${message} (required under CI=true)`);
  return message;
}

export function memcachedBinary(): string | null {
  return findExecutable(['/usr/bin/memcached', '/usr/local/bin/memcached', '/usr/sbin/memcached']);
}

export interface TestMemcached {
  /** `127.0.0.1:PORT`. */
  readonly server: string;
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
        s.write('version\r\n');
        s.once('data', (d) => {
          s.destroy();
          resolve(d.toString().startsWith('VERSION'));
        });
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`memcached did not answer on port ${port}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function startTestMemcached(): Promise<TestMemcached> {
  const given = process.env['MEMCACHED_SERVERS'];
  if (given) {
    return { server: given, owned: false, async stop() {}, async start() {}, async close() {} };
  }
  const bin = memcachedBinary();
  if (bin === null) throw new Error(`memcached not found: ${MEMCACHED_INSTALL}`);
  const port = await freePort();
  let child: ChildProcess | null = null;
  async function start(): Promise<void> {
    // -u: memcached refuses to run as root without it.
    const args = ['-p', String(port), '-l', '127.0.0.1', '-U', '0', '-m', '64'];
    if (process.getuid?.() === 0) args.push('-u', 'root');
    const c = spawn(bin as string, args, { stdio: 'ignore' });
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
  return { server: `127.0.0.1:${port}`, owned: true, stop, start, close: stop };
}
