/**
 * Request coalescing and hit-for-miss markers. State lives in the object this factory returns
 * (one per cache stage), never in module scope.
 *
 * A flight is one origin fetch for a primary key. Its leader settles it with what happened:
 * `stored` (followers read the store), `not-stored` or `failed` (followers fetch for themselves).
 * A hit-for-miss marker remembers that a key's last response could not be stored, so that later
 * requests do not queue behind a leader for nothing (Varnish's hit-for-miss).
 */
import { ClientAbortedError } from '../errors.js';
import { countBoundedLru } from './count-lru.js';

export type FlightResult = 'stored' | 'not-stored' | 'failed';
export type WaitResult = FlightResult | 'timeout';

export type Flight =
  | { readonly role: 'leader'; settle(result: FlightResult): void }
  | { readonly role: 'follower'; wait(timeoutMs: number, signal: AbortSignal): Promise<WaitResult> };

export interface Coalescer {
  join(key: string): Flight;
  /** Remembers for `ttlMs` that `key` is not cacheable, with the reason. */
  markHitForMiss(key: string, reason: string, ttlMs: number): void;
  /** The reason `key` is marked hit-for-miss, or undefined. */
  hitForMiss(key: string): string | undefined;
  clearHitForMiss(key: string): void;
  /** Keys with a leader in flight. */
  readonly inFlight: number;
}

interface Pending {
  readonly promise: Promise<FlightResult>;
  settle(result: FlightResult): void;
}

export function createCoalescer(now: () => number, maxMarkers = 10_000): Coalescer {
  const flights = new Map<string, Pending>();
  const markers = countBoundedLru<string, { until: number; reason: string }>(maxMarkers);

  function follower(p: Pending): Flight {
    return {
      role: 'follower',
      wait(timeoutMs, signal) {
        if (signal.aborted) return Promise.reject(new ClientAbortedError('client went away while coalesced'));
        return new Promise<WaitResult>((resolve, reject) => {
          const timer = setTimeout(() => done('timeout'), timeoutMs);
          const onAbort = (): void => {
            cleanup();
            reject(new ClientAbortedError('client went away while coalesced'));
          };
          function cleanup(): void {
            clearTimeout(timer);
            signal.removeEventListener('abort', onAbort);
          }
          function done(r: WaitResult): void {
            cleanup();
            resolve(r);
          }
          signal.addEventListener('abort', onAbort, { once: true });
          p.promise.then(done);
        });
      },
    };
  }

  return {
    join(key) {
      const existing = flights.get(key);
      if (existing) return follower(existing);
      let settle!: (r: FlightResult) => void;
      const promise = new Promise<FlightResult>((resolve) => {
        settle = resolve;
      });
      let settled = false;
      const pending: Pending = {
        promise,
        settle(result) {
          if (settled) return;
          settled = true;
          if (flights.get(key) === pending) flights.delete(key);
          settle(result);
        },
      };
      flights.set(key, pending);
      return { role: 'leader', settle: pending.settle };
    },
    markHitForMiss(key, reason, ttlMs) {
      if (ttlMs <= 0) return;
      markers.set(key, { until: now() + ttlMs, reason });
    },
    hitForMiss(key) {
      const m = markers.get(key);
      if (m === undefined) return undefined;
      if (m.until <= now()) {
        markers.delete(key);
        return undefined;
      }
      return m.reason;
    },
    clearHitForMiss(key) {
      markers.delete(key);
    },
    get inFlight() {
      return flights.size;
    },
  };
}
