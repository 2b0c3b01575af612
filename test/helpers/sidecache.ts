/**
 * Starts sidecache for a test: in-process on free loopback ports (fast, and the test can inspect
 * it), or as a real child process through the CLI (for signals and end-to-end runs).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import type { LookupFunction } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/load.js';
import { compileRuntime } from '../../src/config/runtime.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { createLogger, type Logger } from '../../src/log.js';
import { type Sidecache, startSidecache } from '../../src/server.js';

export interface TestSidecache {
  readonly instance: Sidecache;
  /** http://127.0.0.1:PORT of the proxy listener. */
  readonly url: string;
  readonly adminUrl: string;
  close(): Promise<void>;
}

export async function startTestSidecache(
  input: Partial<ConfigInput> = {},
  deps: {
    lookup?: LookupFunction /** Serve `POST /reload` (re-reads this same config). */;
    reloadable?: boolean;
    /** Instead of a logger at the config's `log.level` on stdout. */
    logger?: Logger;
  } = {},
): Promise<TestSidecache> {
  const config = parseConfig({
    ...input,
    listen: '127.0.0.1:0',
    admin: { listen: '127.0.0.1:0', ...(input.admin ?? {}) },
    log: { level: 'silent', ...(input.log ?? {}) },
  });
  const { reloadable, ...rest } = deps;
  const instance = await startSidecache(compileRuntime(config), {
    logger: createLogger(config.log.level),
    ...rest,
    ...(reloadable ? { loadRuntime: () => compileRuntime(config) } : {}),
  });
  return {
    instance,
    url: `http://127.0.0.1:${instance.proxyAddress.port}`,
    adminUrl: `http://127.0.0.1:${instance.adminAddress?.port ?? 0}`,
    close: async () => {
      await instance.close(2_000);
    },
  };
}

export const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `sidecache ARGS` (through tsx) to its end, within `timeoutMs`; a non-zero exit resolves too. */
export function runCli(
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CLI, ...args],
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export interface SidecacheProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly adminUrl: string;
  /** Everything written to stdout/stderr so far. */
  output(): string;
  /**
   * Sends SIGTERM and resolves with the exit code; a child still running after `killAfterMs`
   * (default 15 s: past the default shutdown grace) gets SIGKILL.
   */
  stop(signal?: NodeJS.Signals, killAfterMs?: number): Promise<number | null>;
}

/**
 * Spawns `sidecache serve ARGS` (TypeScript through tsx, or `opts.program`: Node's arguments up to
 * the CLI, e.g. a built dist/cli.js) and waits for its "started" log line. It listens on free
 * loopback ports unless `configListeners` keeps the config's own `listen`s.
 */
export async function spawnSidecache(
  args: string[],
  env: Record<string, string> = {},
  opts: { configListeners?: boolean; program?: readonly string[] } = {},
): Promise<SidecacheProcess> {
  const listeners = opts.configListeners ? [] : ['--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'];
  const program = opts.program ?? ['--import', 'tsx', CLI];
  const child = spawn(process.execPath, [...program, 'serve', ...listeners, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const started = await new Promise<{ listen: string; admin: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // not left running behind the failed test
      reject(new Error(`sidecache did not start in 20 s:\n${out}`));
    }, 20_000);
    const check = (): void => {
      for (const line of out.split('\n')) {
        if (!line.includes('"sidecache started"')) continue;
        clearTimeout(timer);
        child.stdout?.off('data', check);
        resolve(JSON.parse(line) as { listen: string; admin: string });
        return;
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sidecache exited with ${code}:\n${out}`));
    });
  });
  return {
    child,
    url: `http://${started.listen}`,
    adminUrl: `http://${started.admin}`,
    output: () => out,
    async stop(signal = 'SIGTERM', killAfterMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, 'exit');
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      try {
        const [code] = (await exited) as [number | null];
        return code;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
