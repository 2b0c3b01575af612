/**
 * Gives dropped cache bodies back promptly. A stored body lives outside the V8 heap (an
 * ArrayBuffer's backing store); once its entry leaves the store, that memory is freed only when a
 * full GC finds the Buffer object dead. V8 schedules that by its own measure, which lets external
 * memory grow by 64 MiB past what the last GC left (a constant in V8), so a store that turns over
 * quickly (many distinct responses) kept up to 64 MiB of dropped bodies resident beside its cap.
 *
 * The reclaimer counts the bytes that leave the store; once a sixteenth of the cap (at least 1 MiB)
 * has left since the last collection, it asks V8 for a full GC (asynchronous: V8 runs it as a task of its own, not
 * inside the caller), at most once per `minIntervalMs`, unless twice that many bytes have left
 * (large bodies turning over quickly). A full GC of the small heap a sidecar has
 * costs a few milliseconds; a store that turns over slowly never triggers one. The gc function is
 * V8's (`--expose-gc`), exposed to this module alone at first use.
 */
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

type GcFunction = (options?: { type?: 'major' | 'minor'; execution?: 'async' | 'sync' }) => unknown;

let gcFunction: GcFunction | null | undefined;

/** V8's gc(), or null when it cannot be had. */
function v8Gc(): GcFunction | null {
  if (gcFunction !== undefined) return gcFunction;
  const global = (globalThis as { gc?: GcFunction }).gc;
  if (typeof global === 'function') gcFunction = global;
  else {
    try {
      v8.setFlagsFromString('--expose-gc');
      gcFunction = runInNewContext('gc') as GcFunction;
      v8.setFlagsFromString('--no-expose-gc');
    } catch {
      gcFunction = null;
    }
  }
  return gcFunction;
}

export interface Reclaimer {
  /** `bytes` left the store (evicted, expired, deleted or replaced). */
  released(bytes: number): void;
  /** Full GCs asked for so far. */
  readonly collections: number;
}

export interface ReclaimOptions {
  /** Bytes that may leave between two collections; at least 1 MiB. */
  readonly thresholdBytes: number;
  /** Least time between two collections. */
  readonly minIntervalMs?: number;
  readonly now?: () => number;
}

const MIN_THRESHOLD_BYTES = 1024 * 1024;
/**
 * Thresholds' worth of dropped bytes that trigger a collection inside the interval: large bodies
 * turning over quickly (1 MiB responses, dozens a second) would otherwise pile up a third of the
 * cap between two collections.
 */
const BURST_THRESHOLDS = 2;

/** The threshold for a store of `maxSizeBytes`: a sixteenth of it, at least 1 MiB. */
export function reclaimThresholdBytes(maxSizeBytes: number): number {
  return Math.max(MIN_THRESHOLD_BYTES, Math.floor(maxSizeBytes / 16));
}

export function createReclaimer(opts: ReclaimOptions): Reclaimer {
  const threshold = Math.max(MIN_THRESHOLD_BYTES, opts.thresholdBytes);
  const minInterval = opts.minIntervalMs ?? 250;
  const now = opts.now ?? Date.now;
  let pending = 0;
  let last = Number.NEGATIVE_INFINITY;
  let collections = 0;
  return {
    released(bytes) {
      pending += bytes;
      if (pending < threshold) return;
      const t = now();
      if (t - last < minInterval && pending < threshold * BURST_THRESHOLDS) return;
      const gc = v8Gc();
      if (gc === null) return;
      pending = 0;
      last = t;
      collections++;
      const done = gc({ type: 'major', execution: 'async' });
      if (done instanceof Promise) done.catch(() => {});
    },
    get collections() {
      return collections;
    },
  };
}
