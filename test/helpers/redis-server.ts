/**
 * A throwaway redis-server on a free loopback port for shared-tier tests (`--save '' --appendonly
 * no`, a temp dir), or the server named by REDIS_URL. Outside CI a missing redis-server skips the
 * tests with a message; under CI=true it fails them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable } from './system-tool.js';
import { startThrowawayServer } from './throwaway-server.js';

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

export async function startTestRedis(): Promise<TestRedis> {
  const given = process.env['REDIS_URL'];
  if (given) {
    return { url: given, owned: false, async stop() {}, async start() {}, async close() {} };
  }
  const bin = redisBinary();
  if (bin === null) throw new Error(`redis-server not found: ${REDIS_INSTALL}`);
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-redis-'));
  const server = await startThrowawayServer({
    name: 'redis-server',
    binary: bin,
    args: (port) => [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    probe: { send: 'PING\r\n', expect: '+PONG' },
  });
  const { stop, start } = server;
  return {
    url: `redis://127.0.0.1:${server.port}`,
    owned: true,
    stop,
    start,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
