/**
 * A throwaway memcached on a free loopback port for the memcached tier's tests (`-U 0`: TCP only),
 * or the server named by MEMCACHED_SERVERS. Outside CI a missing memcached skips the tests with a
 * message; under CI=true it fails them.
 */
import { findExecutable } from './system-tool.js';
import { startThrowawayServer } from './throwaway-server.js';

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

export async function startTestMemcached(): Promise<TestMemcached> {
  const given = process.env['MEMCACHED_SERVERS'];
  if (given) {
    return { server: given, owned: false, async stop() {}, async start() {}, async close() {} };
  }
  const bin = memcachedBinary();
  if (bin === null) throw new Error(`memcached not found: ${MEMCACHED_INSTALL}`);
  const server = await startThrowawayServer({
    name: 'memcached',
    binary: bin,
    // -u: memcached refuses to run as root without it.
    args: (port) => [
      ...['-p', String(port), '-l', '127.0.0.1', '-U', '0', '-m', '64'],
      ...(process.getuid?.() === 0 ? ['-u', 'root'] : []),
    ],
    probe: { send: 'version\r\n', expect: 'VERSION' },
  });
  const { stop, start } = server;
  return { server: `127.0.0.1:${server.port}`, owned: true, stop, start, close: stop };
}
