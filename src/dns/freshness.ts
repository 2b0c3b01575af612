/**
 * How long an answer is kept and what state it is in at a given time. Pure: `now` is an argument.
 *
 *   storedAt ─────────── prefetchAt ──── expiresAt ──────────────── expiresAt + staleTtlMs
 *   │        fresh       │  fresh, refresh │ stale: served only when a   │ gone
 *   │                    │  in background  │ refresh fails or is slow    │
 */
import type { DnsOptions } from './options.js';

export type TtlPolicy = Pick<
  DnsOptions,
  | 'minTtlMs'
  | 'maxTtlMs'
  | 'systemTtlMs'
  | 'negativeTtlMs'
  | 'maxNegativeTtlMs'
  | 'staleTtlMs'
  | 'prefetchRatio'
>;

/** The time an answer is kept: its record TTL (or `systemTtlMs` when the resolver gave none), clamped. */
export function positiveTtlMs(recordTtlMs: number | null, policy: TtlPolicy): number {
  const ttl = recordTtlMs ?? policy.systemTtlMs;
  return Math.min(policy.maxTtlMs, Math.max(policy.minTtlMs, ttl));
}

/**
 * The time a negative answer (NXDOMAIN, NODATA) is kept: the zone's SOA-derived TTL when the resolver
 * reports one (RFC 2308 §5), else `negativeTtlMs`, never more than `maxNegativeTtlMs`.
 */
export function negativeTtlMs(soaTtlMs: number | null, policy: TtlPolicy): number {
  return Math.min(policy.maxNegativeTtlMs, soaTtlMs ?? policy.negativeTtlMs);
}

/** When the background refresh of a fresh answer in use starts: the last `prefetchRatio` of its TTL. */
export function prefetchAt(storedAt: number, expiresAt: number, prefetchRatio: number): number {
  if (prefetchRatio <= 0) return Number.POSITIVE_INFINITY;
  return expiresAt - (expiresAt - storedAt) * prefetchRatio;
}

export type AnswerState = 'fresh' | 'prefetch' | 'stale' | 'expired';

export interface Lifetime {
  readonly storedAt: number;
  readonly expiresAt: number;
}

/** The state of a positive answer at `now`. */
export function answerState(entry: Lifetime, now: number, policy: TtlPolicy): AnswerState {
  if (now < entry.expiresAt) {
    return now >= prefetchAt(entry.storedAt, entry.expiresAt, policy.prefetchRatio) ? 'prefetch' : 'fresh';
  }
  if (now < entry.expiresAt + policy.staleTtlMs) return 'stale';
  return 'expired';
}
