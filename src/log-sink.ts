/**
 * Where the log's batches of JSON lines go (log.ts LineBatch): standard output, written in the
 * event loop's own thread whenever that cannot block it.
 *
 * pino's asynchronous destination (sonic-boom) hands every write to libuv's thread pool: two
 * thread switches per batch, which cost more CPU than the write itself (about a tenth of a cache
 * hit's CPU with the access log on). Here:
 *   - a pipe (a container runtime, a supervisor, `| tee`) is opened a second time through
 *     /proc/self/fd in non-blocking mode (a file description of our own: fd 1's stays as it is),
 *     and each batch is written at once; a batch the pipe has no room for waits, with every batch
 *     after it, for a retry a few ms later (kept in memory meanwhile, as sonic-boom kept them);
 *   - a socket (a parent Node process, systemd) is written the same way when its file description
 *     is non-blocking already (it is once process.stdout has been used: Node's libuv handle);
 *   - a regular file or a character device that is not a terminal (/dev/null) is written
 *     synchronously, as Node writes process.stdout to them;
 *   - anything else (a terminal, a blocking socket, no /proc) goes to sonic-boom as before.
 * A pipe or socket may take part of a batch: the rest waits like a batch. At exit what waits is
 * written synchronously.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { pino } from 'pino';

export interface BatchSink {
  /**
   * Bytes to gather before a write: PIPE_BUF (4 KiB) for sonic-boom, which wrote the rest of a
   * pipe's partial write from a callback (a process that ended before it wrote later batches first,
   * or lost it); 16 KiB for the direct sink, which keeps whatever a write did not take.
   */
  readonly batchBytes: number;
  /** Takes `bytes`; true when it keeps them until written (the caller must not reuse them then). */
  write(bytes: Buffer): boolean;
  flush(cb?: (err?: Error) => void): void;
  /** Writes everything held, synchronously (blocking on a full pipe). */
  flushSync(): void;
  end(): void;
}

/** The sink for file descriptor `fd` (standard output: 1), by what it is. */
export function batchSink(fd: number): BatchSink {
  let kind: 'pipe' | 'socket' | 'sync' | 'other' = 'other';
  try {
    const st = fstatSync(fd);
    if (st.isFIFO()) kind = 'pipe';
    else if (st.isSocket()) kind = 'socket';
    else if (st.isFile() || (st.isCharacterDevice() && !isatty(fd))) kind = 'sync';
  } catch {
    // Not open or not ours to look at: sonic-boom reports what is wrong when it writes.
  }
  if (kind === 'sync') return new DirectSink(fd, fd);
  if (kind === 'pipe') {
    const own = openNonBlocking(fd);
    if (own !== null) return new DirectSink(own, fd);
  }
  // A socket cannot be opened again; it is written directly when it is non-blocking already (Node
  // makes it so when process.stdout is first used on it, as the CLI does before logging).
  if (kind === 'socket' && isNonBlocking(fd)) return new DirectSink(fd, fd);
  return sonicSink(fd);
}

/** O_NONBLOCK, as /proc/self/fdinfo prints the flags (octal). */
const O_NONBLOCK = constants.O_NONBLOCK;

/** Whether `fd`'s file description is non-blocking (false when /proc cannot tell). */
function isNonBlocking(fd: number): boolean {
  try {
    const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return flags !== null && (Number.parseInt(flags[1] as string, 8) & O_NONBLOCK) !== 0;
  } catch {
    return false;
  }
}

/** Our own non-blocking file description of the pipe on `fd`, or null (no /proc, refused). */
function openNonBlocking(fd: number): number | null {
  try {
    const own = openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_NONBLOCK);
    // /proc may name another file than the one on `fd` (a pipe replaced since): check it is the same.
    const a = fstatSync(own);
    const b = fstatSync(fd);
    if (a.isFIFO() && a.ino === b.ino && a.dev === b.dev) return own;
    closeSync(own);
  } catch {
    // No /proc in this container, or no access: the thread-pool writer does it.
  }
  return null;
}

function sonicSink(fd: number): BatchSink {
  const boom = pino.destination({ dest: fd, sync: false, minLength: 0, contentMode: 'buffer' });
  return {
    batchBytes: 4096,
    // In buffer mode sonic-boom's write takes a Buffer (its type says string); it keeps it.
    write: (bytes) => {
      boom.write(bytes as unknown as string);
      return true;
    },
    flush: (cb) => boom.flush(cb),
    flushSync: () => boom.flushSync(),
    end: () => boom.end(),
  };
}

/** How long a batch the pipe had no room for waits before the next try. */
const RETRY_MS = 5;

/** Writes in this thread to `fd`, which never blocks (non-blocking pipe, file, /dev/null). */
class DirectSink implements BatchSink {
  readonly #fd: number;
  /** The same file, blocking (standard output itself): for writing what waits, at exit. */
  readonly #blockingFd: number;
  /** Bytes the pipe had no room for, in order; while any wait, new ones wait behind them. */
  readonly #waiting: Buffer[] = [];
  #timer: NodeJS.Timeout | null = null;
  /** The reader went away (EPIPE): the rest is dropped, as pino does. */
  #gone = false;
  /** A write failed otherwise: from then on sonic-boom writes (and reports it). */
  #fallback: BatchSink | null = null;

  constructor(fd: number, blockingFd: number) {
    this.#fd = fd;
    this.#blockingFd = blockingFd;
  }

  readonly batchBytes = 16 * 1024;

  write(bytes: Buffer): boolean {
    if (this.#gone) return false;
    if (this.#fallback !== null) return this.#fallback.write(bytes);
    if (this.#waiting.length > 0) {
      this.#waiting.push(bytes);
      return true;
    }
    return this.#put(bytes);
  }

  flush(cb?: (err?: Error) => void): void {
    if (this.#fallback !== null) {
      this.#fallback.flush(cb);
      return;
    }
    this.#retry();
    cb?.();
  }

  flushSync(): void {
    this.#fallback?.flushSync();
    if (this.#gone) return;
    this.#stopTimer();
    while (this.#waiting.length > 0) {
      if (!writeAllSync(this.#blockingFd, this.#waiting.shift() as Buffer)) {
        this.#waiting.length = 0;
        this.#gone = true;
      }
    }
  }

  end(): void {
    this.flushSync();
    this.#fallback?.end();
  }

  /** Writes `bytes` now; what the pipe does not take waits for a retry. True when some waits. */
  #put(bytes: Buffer): boolean {
    let written = 0;
    try {
      written = writeSync(this.#fd, bytes);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') {
        this.#gone = true;
        this.#waiting.length = 0;
        this.#stopTimer();
        return false;
      }
      if (code !== 'EAGAIN') {
        this.#failOver(bytes);
        return true;
      }
    }
    if (written >= bytes.length) return false;
    this.#waiting.unshift(written === 0 ? bytes : bytes.subarray(written));
    this.#timer ??= setTimeout(() => {
      this.#timer = null;
      this.#retry();
    }, RETRY_MS);
    return true;
  }

  /** Writes what waits, in order, until the pipe is full again. */
  #retry(): void {
    while (this.#waiting.length > 0 && !this.#gone && this.#fallback === null) {
      const before = this.#waiting.length;
      const bytes = this.#waiting.shift() as Buffer;
      this.#put(bytes);
      // Put back (the pipe is still full): wait for the timer.
      if (this.#waiting.length >= before) return;
    }
  }

  #failOver(bytes: Buffer): void {
    this.#stopTimer();
    const fallback = sonicSink(this.#blockingFd);
    this.#fallback = fallback;
    fallback.write(bytes);
    for (const b of this.#waiting.splice(0)) fallback.write(b);
  }

  #stopTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

/** How long writeAllSync waits for a pipe that takes nothing before it gives up. */
const STALLED_MS = 10_000;
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes all of `bytes` to `fd` before returning, also when `fd` is non-blocking (its file
 * description may have been made so by another process sharing it): a full pipe is waited for,
 * 1 ms at a time, up to STALLED_MS without progress. False when it could not (reader gone, stalled).
 */
export function writeAllSync(fd: number, bytes: Buffer): boolean {
  let off = 0;
  let stalledSince = 0;
  while (off < bytes.length) {
    try {
      off += writeSync(fd, bytes, off);
      stalledSince = 0;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return false;
      const now = Date.now();
      if (stalledSince === 0) stalledSince = now;
      else if (now - stalledSince > STALLED_MS) return false;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
  return true;
}
