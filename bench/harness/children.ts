// Every process the harness starts goes through one ChildGroup, so all of them are stopped at the
// end of a run, on SIGINT/SIGTERM and on errors. Output is kept (a bounded tail) for diagnostics.
import { type ChildProcess, spawn } from 'node:child_process';

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
  readonly pid: number;
  readonly process: ChildProcess;
  readonly exited: Promise<ChildExit>;
  hasExited(): boolean;
  /** Everything printed on stdout so far (bounded). */
  stdout(): string;
  /** The last few KiB of stderr and stdout, for error messages. */
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
  running(): Child[];
}

const TAIL_BYTES = 8192;
const STDOUT_BYTES = 1 << 20;

function appendBounded(buffer: string, chunk: string, limit: number): string {
  const joined = buffer + chunk;
  return joined.length > limit ? joined.slice(joined.length - limit) : joined;
}

export function createChildGroup(cwd: string): ChildGroup {
  const children = new Set<Child>();

  function spawnChild(spec: ChildSpec): Child {
    const proc = spawn(spec.command, [...spec.args], {
      cwd,
      env: spec.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    if (proc.pid === undefined) {
      throw new Error(`${spec.label}: could not start ${spec.command}`);
    }
    let stdoutText = '';
    let tail = '';
    let partialLine = '';
    let exit: ChildExit | null = null;
    const lineListeners = new Set<(line: string) => void>();
    const exitListeners = new Set<(e: ChildExit) => void>();

    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => {
      stdoutText = appendBounded(stdoutText, chunk, STDOUT_BYTES);
      tail = appendBounded(tail, chunk, TAIL_BYTES);
      const lines = (partialLine + chunk).split('\n');
      partialLine = lines.pop() ?? '';
      for (const line of lines) for (const listener of lineListeners) listener(line);
    });
    proc.stderr.on('data', (chunk: string) => {
      tail = appendBounded(tail, chunk, TAIL_BYTES);
    });
    // A child that exits closes its end of stdin; writing there later would raise EPIPE.
    proc.stdin.on('error', () => {});

    const exited = new Promise<ChildExit>((resolve) => {
      proc.on('exit', (code, signal) => {
        exit = { code, signal };
        children.delete(child);
        for (const listener of exitListeners) listener(exit);
        resolve(exit);
      });
    });
    proc.on('error', (err) => {
      tail = appendBounded(tail, `\n[spawn error] ${err.message}\n`, TAIL_BYTES);
    });

    const child: Child = {
      label: spec.label,
      pid: proc.pid,
      process: proc,
      exited,
      hasExited: () => exit !== null,
      stdout: () => stdoutText,
      outputTail: () => tail.trim(),
      waitForLine<T>(match: (line: string) => T | null, timeoutMs: number): Promise<T> {
        return new Promise<T>((resolve, reject) => {
          const cleanup = (): void => {
            clearTimeout(timer);
            lineListeners.delete(onLine);
            exitListeners.delete(onExit);
          };
          const onLine = (line: string): void => {
            const found = match(line);
            if (found === null) return;
            cleanup();
            resolve(found);
          };
          const onExit = (e: ChildExit): void => {
            cleanup();
            reject(
              new Error(`${spec.label} exited (code ${e.code}, signal ${e.signal}) before it was ready`),
            );
          };
          const timer = setTimeout(() => {
            cleanup();
            reject(new Error(`${spec.label} did not become ready within ${timeoutMs} ms`));
          }, timeoutMs);
          lineListeners.add(onLine);
          exitListeners.add(onExit);
          for (const line of stdoutText.split('\n')) {
            if (lineListeners.has(onLine)) onLine(line);
          }
          if (exit) onExit(exit);
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
    running: () => [...children],
  };
}
