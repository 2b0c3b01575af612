/**
 * Back-off for proxy-authentication guessing, per client address: after `maxFailures` wrong
 * credentials in a row, the address is held back for `backoffMs`, doubling with each further
 * failure up to `maxBackoffMs`. While held back its credentials are not even checked (429). A
 * success forgets the failures. Addresses are kept in a bounded LRU (`maxClients`); one that
 * stops failing is forgotten after `forgetAfterMs`.
 */
import { LRUCache } from 'lru-cache';
import type { Instance } from '../channels.js';
import { publishAuth } from './channels.js';

export interface AuthThrottleOptions {
  /** Failures in a row before the first back-off; 0 turns the throttle off. */
  readonly maxFailures: number;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  readonly maxClients?: number;
  readonly forgetAfterMs?: number;
  /**
   * Called for each failure, and with `blockedMs` > 0 when it starts a back-off. Default (with
   * `onThrottled`): published on `sidecache:auth:failure` for `instance`.
   */
  readonly onFailure?: (blockedMs: number) => void;
  /** Called for each attempt refused because its address is held back (`sidecache:auth:throttled`). */
  readonly onThrottled?: () => void;
  /** The instance the published events belong to (channels.ts). */
  readonly instance?: Instance;
  readonly now?: () => number;
}

export interface AuthThrottle {
  /** Milliseconds `address` must still wait before its credentials are checked; 0: go ahead. */
  waitMs(address: string): number;
  failed(address: string): void;
  succeeded(address: string): void;
}

interface Failures {
  count: number;
  /** Held back until this time (ms). */
  until: number;
}

export function createAuthThrottle(opts: AuthThrottleOptions): AuthThrottle {
  const now = opts.now ?? Date.now;
  const published = publishAuth(opts.instance);
  const onFailure = opts.onFailure ?? published.onFailure;
  const onThrottled = opts.onThrottled ?? published.onThrottled;
  const clients = new LRUCache<string, Failures>({
    max: opts.maxClients ?? 10_000,
    ttl: opts.forgetAfterMs ?? Math.max(15 * 60_000, opts.maxBackoffMs * 2),
  });
  return {
    waitMs(address) {
      if (opts.maxFailures === 0) return 0;
      const f = clients.get(address);
      const wait = f === undefined ? 0 : f.until - now();
      if (wait <= 0) return 0;
      onThrottled();
      return wait;
    },
    failed(address) {
      if (opts.maxFailures === 0) return;
      const f = clients.get(address) ?? { count: 0, until: 0 };
      f.count++;
      let blockedMs = 0;
      if (f.count >= opts.maxFailures) {
        const doublings = Math.min(f.count - opts.maxFailures, 30);
        blockedMs = Math.min(opts.maxBackoffMs, opts.backoffMs * 2 ** doublings);
        f.until = now() + blockedMs;
      }
      clients.set(address, f);
      onFailure(blockedMs);
    },
    succeeded(address) {
      clients.delete(address);
    },
  };
}
