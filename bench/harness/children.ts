// Every process a benchmark starts goes through one ChildGroup, so all of them are stopped at the
// end of a run, on SIGINT/SIGTERM and on errors. Output is kept (bounded) for diagnostics.
import { type ChildProcess, spawn } from 'node:child_process';
import { parseListening } from './child-contract.js';

/** How long a started process may take to be ready (listening, /readyz 200, announced port). */
export const READY_TIMEOUT_MS = 15_000;

export interface ChildSpec {
  /** Short name used in messages, e.g. `origin`, `http-proxy`, `wrk`. */
  readonly label: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Child {
  readonly label: string;
  /** The process measured and pinned: the spawned one, or one it started (Varnish's worker). */
  readonly pid: number;
  readonly process: ChildProcess;
  readonly exited: Promise<ChildExit>;
  hasExited(): boolean;
  /** Everything printed on stdout so far (bounded). */
  stdout(): string;
  /** stdout and stderr as they arrived (bounded). */
  output(): string;
  /** The last few KiB of output, for error messages. */
  outputTail(): string;
  /** Resolves with the first stdout line `match` accepts; rejects on exit or after `timeoutMs`. */
  waitForLine<T>(match: (line: string) => T | null, timeoutMs: number): Promise<T>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface ChildGroup {
  spawn(spec: ChildSpec): Child;
  /** Stops every child still running. */
  stopAll(graceMs?: number): Promise<void>;
  /** Last resort from a synchronous `exit` handler: SIGKILL every child still running. */
  killAllNow(): void;
}

const KEPT_CHARS = 1 << 20;

/**
 * The last KEPT_CHARS of a stream, kept as the chunks that came and joined only when read. A target
 * at the default log level prints an access line per request (megabytes a second under load); this
 * process reads them on the load generator's CPU, so a chunk must cost no more than an array push.
 */
class Tail {
  readonly #chunks: string[] = [];
  #length = 0;

  push(chunk: string): void {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    let first = this.#chunks[0];
    while (first !== undefined && this.#length - first.length >= KEPT_CHARS) {
      this.#chunks.shift();
      this.#length -= first.length;
      first = this.#chunks[0];
    }
  }

  text(): string {
    const text = this.#chunks.join('');
    return text.length > KEPT_CHARS ? text.slice(-KEPT_CHARS) : text;
  }
}

export function createChildGroup(cwd: string): ChildGroup {
  const children = new Set<Child>();

  function spawnChild(spec: ChildSpec): Child {
    const proc = spawn(spec.command, [...spec.args], { cwd, env: spec.env ?? process.env });
    if (proc.pid === undefined) throw new Error(`${spec.label}: could not start ${spec.command}`);
    const stdoutTail = new Tail();
    const allTail = new Tail();
    let partialLine = '';
    let exit: ChildExit | null = null;
    const lineListeners = new Set<(line: string) => void>();
    const exitListeners = new Set<(e: ChildExit) => void>();
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => {
      stdoutTail.push(chunk);
      allTail.push(chunk);
      // Lines are split only while someone waits for one (start-up); the rest only tracks where the
      // last line began.
      const lastNewline = chunk.lastIndexOf('\n');
      if (lastNewline === -1) {
        partialLine += chunk;
        return;
      }
      if (lineListeners.size > 0) {
        const lines = (partialLine + chunk.slice(0, lastNewline)).split('\n');
        for (const line of lines) for (const listener of lineListeners) listener(line);
      }
      partialLine = chunk.slice(lastNewline + 1);
    });
    proc.stderr.on('data', (chunk: string) => allTail.push(chunk));
    // A child that exits closes its end of stdin; writing there later would raise EPIPE.
    proc.stdin.on('error', () => {});
    proc.on('error', (err) => {
      allTail.push(`\n[spawn error] ${err.message}\n`);
    });
    const exited = new Promise<ChildExit>((resolve) => {
      proc.on('exit', (code, signal) => {
        exit = { code, signal };
        children.delete(child);
        for (const listener of exitListeners) listener(exit);
        resolve(exit);
      });
    });

    const child: Child = {
      label: spec.label,
      pid: proc.pid,
      process: proc,
      exited,
      hasExited: () => exit !== null,
      stdout: () => stdoutTail.text(),
      output: () => allTail.text(),
      outputTail: () => allTail.text().slice(-8192).trim(),
      waitForLine<T>(match: (line: string) => T | null, timeoutMs: number): Promise<T> {
        return new Promise<T>((resolve, reject) => {
          const settle = (done: () => void): void => {
            clearTimeout(timer);
            lineListeners.delete(onLine);
            exitListeners.delete(onExit);
            done();
          };
          const onLine = (line: string): void => {
            const found = match(line);
            if (found !== null) settle(() => resolve(found));
          };
          const onExit = (e: ChildExit): void =>
            settle(() => reject(new Error(`${spec.label} exited (code ${e.code}, signal ${e.signal})`)));
          const timer = setTimeout(
            () => settle(() => reject(new Error(`${spec.label}: no ready line within ${timeoutMs} ms`))),
            timeoutMs,
          );
          lineListeners.add(onLine);
          exitListeners.add(onExit);
          for (const line of stdoutTail.text().split('\n')) if (lineListeners.has(onLine)) onLine(line);
          if (exit && lineListeners.has(onLine)) onExit(exit);
        });
      },
      async stop(graceMs = 3000): Promise<void> {
        if (exit) return;
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      },
    };
    children.add(child);
    return child;
  }

  return {
    spawn: spawnChild,
    async stopAll(graceMs = 3000): Promise<void> {
      await Promise.all([...children].map((c) => c.stop(graceMs)));
    },
    killAllNow(): void {
      for (const child of children) child.process.kill('SIGKILL');
    },
  };
}

/**
 * Polls `ready` every 100 ms until it resolves true. When `child` exits first or the time is up,
 * stops the child and throws with the end of its output.
 */
export async function waitUntilReady(
  child: Child,
  what: string,
  ready: () => Promise<boolean>,
  timeoutMs = READY_TIMEOUT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let failure = `${child.label}: ${what} not ready within ${timeoutMs} ms`;
  while (!(await ready().catch(() => false))) {
    if (child.hasExited()) failure = `${child.label} exited before ${what} was ready`;
    else if (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      continue;
    }
    await child.stop();
    throw new Error(`${failure}\n${child.outputTail()}`);
  }
}

/**
 * Starts a TypeScript server of bench/ that follows child-contract.ts (through tsx, with
 * `--listen 127.0.0.1:0` and `args`); resolves with its URL once it announced its port.
 */
export async function startNodeServer(
  children: ChildGroup,
  label: string,
  script: string,
  args: readonly string[] = [],
): Promise<{ url: string; child: Child }> {
  const child = children.spawn({
    label,
    command: process.execPath,
    args: ['--import', 'tsx', script, '--listen', '127.0.0.1:0', ...args],
  });
  try {
    const port = await child.waitForLine(parseListening, READY_TIMEOUT_MS);
    return { url: `http://127.0.0.1:${port}`, child };
  } catch (err) {
    await child.stop();
    throw new Error(`${(err as Error).message}\n${child.outputTail()}`);
  }
}
