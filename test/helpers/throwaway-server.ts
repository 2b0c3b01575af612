/**
 * A server binary (redis-server, memcached) run on a free loopback port for a test: started, probed
 * until it answers its protocol's ping, and killable (SIGKILL) and restartable on the same port.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { freePort } from './ports.js';

export interface ThrowawayServerSpec {
  /** For error messages, e.g. `redis-server`. */
  readonly name: string;
  readonly binary: string;
  readonly args: (port: number) => string[];
  /** A request in the server's protocol and the prefix of a healthy answer. */
  readonly probe: { readonly send: string; readonly expect: string };
}

export interface ThrowawayServer {
  readonly port: number;
  /** Kills the server (SIGKILL): clients see the connection drop. */
  stop(): Promise<void>;
  /** Starts it again on the same port (empty). */
  start(): Promise<void>;
}

async function answers(port: number, probe: ThrowawayServerSpec['probe']): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = netConnect(port, '127.0.0.1');
    s.once('connect', () => {
      s.write(probe.send);
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString().startsWith(probe.expect));
      });
    });
    s.once('error', () => resolve(false));
  });
}

export async function startThrowawayServer(
  spec: ThrowawayServerSpec,
  timeoutMs = 5_000,
): Promise<ThrowawayServer> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  async function start(): Promise<void> {
    child = spawn(spec.binary, spec.args(port), { stdio: 'ignore' });
    const deadline = Date.now() + timeoutMs;
    while (!(await answers(port, spec.probe))) {
      if (Date.now() > deadline) throw new Error(`${spec.name} did not answer on port ${port}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  async function stop(): Promise<void> {
    const c = child;
    child = null;
    if (c === null || c.exitCode !== null) return;
    c.kill('SIGKILL');
    await once(c, 'exit');
  }
  await start();
  return { port, start, stop };
}
