/**
 * The saved-time ledger: how much time sidecache saved each exchange, as defined once in DESIGN.md
 * ("Saved time, defined once"). Every amount comes from a measured duration, never a constant:
 *
 * - `dns`: a DNS cache answer (hit, stale, negative) saved the duration the last real lookup of
 *   that name took; the DNS cache reports it as `savedMs` on its lookup event.
 * - `connection`: an exchange that went out on a reused pooled connection saved the connect + TLS
 *   time measured for that origin: an exponentially weighted moving average over the connections
 *   sidecache opened to it (from the pools' ConnectEvents). An origin with no measured connection
 *   yet is credited nothing. The first exchange on a connection keep-warm opened ahead of need is
 *   credited that connection's own measured DNS + TCP + TLS time instead (`preconnectedMs`), once;
 *   later exchanges on it are ordinary reuses. (A DNS cache hit during that warm connect was
 *   credited as `dns` with the last real lookup's time and adds only its µs here; a miss was
 *   credited nothing as `dns` and adds its query time here: each lookup is counted once.)
 * - `cache`: an answer from the cache (fresh, stale, coalesced, or revalidated with a 304) saved
 *   the upstream fetch time recorded with the stored entry minus the time it took to serve it; the
 *   cache stage puts that on the Exchange as `ex.cache.savedMs`. Only amounts > 0 count.
 *
 * Pure bookkeeping: no prom-client, no clock. metrics.ts turns the amounts into counters.
 */
import type { Exchange } from '../exchange.js';
import type { ConnectEvent, DnsLookupEvent } from '../observers.js';

export type { DnsLookupEvent } from '../observers.js';

export type SavedKind = 'dns' | 'connection' | 'cache';
export const SAVED_KINDS: readonly SavedKind[] = ['dns', 'connection', 'cache'];

/** DNS results answered from the cache without asking a resolver. */
const DNS_CACHE_ANSWERS: ReadonlySet<DnsLookupEvent['result']> = new Set(['hit', 'stale', 'negative']);

export interface SavedTimeOptions {
  /** Weight of the newest connection in the per-origin moving average (0 < alpha ≤ 1). */
  readonly alpha?: number;
  /** Most origins remembered (the forward proxy may reach many); the oldest is forgotten first. */
  readonly maxOrigins?: number;
}

export interface SavedTimeLedger {
  /** Feeds a connection attempt into the origin's moving average of connect + TLS time. */
  recordConnect(event: ConnectEvent): void;
  /** The moving average of connect + TLS time for `origin`, ms; undefined before any connection. */
  connectionCostMs(origin: string): number | undefined;
  /** Time saved by one finished exchange, by kind (kinds that saved nothing are absent), ms. */
  exchangeSavings(ex: Exchange): Partial<Record<SavedKind, number>>;
  /** Time one DNS lookup saved, ms (0 for a lookup that went to a resolver). */
  dnsSavingsMs(event: DnsLookupEvent): number;
}

export function createSavedTimeLedger(opts: SavedTimeOptions = {}): SavedTimeLedger {
  const alpha = opts.alpha ?? 0.2;
  const maxOrigins = opts.maxOrigins ?? 1024;
  if (!(alpha > 0 && alpha <= 1)) throw new RangeError(`alpha must be in (0, 1], got ${alpha}`);
  if (!(maxOrigins >= 1)) throw new RangeError(`maxOrigins must be ≥ 1, got ${maxOrigins}`);
  /** origin → moving average of connect + TLS ms; Map order doubles as recency order. */
  const connectCost = new Map<string, number>();

  const positive = (ms: number | undefined): number | undefined =>
    ms !== undefined && Number.isFinite(ms) && ms > 0 ? ms : undefined;

  return {
    recordConnect(event) {
      if (!event.ok || event.connectMs === undefined) return;
      const sample = event.connectMs + (event.tlsMs ?? 0);
      if (!Number.isFinite(sample) || sample < 0) return;
      const previous = connectCost.get(event.origin);
      connectCost.delete(event.origin);
      connectCost.set(event.origin, previous === undefined ? sample : previous + alpha * (sample - previous));
      if (connectCost.size > maxOrigins) {
        const oldest = connectCost.keys().next().value;
        if (oldest !== undefined) connectCost.delete(oldest);
      }
    },
    connectionCostMs(origin) {
      return connectCost.get(origin);
    },
    exchangeSavings(ex) {
      const saved: Partial<Record<SavedKind, number>> = {};
      if (ex.originInfo?.reusedConnection) {
        const cost =
          positive(ex.originInfo.preconnectedMs) ?? positive(connectCost.get(ex.originInfo.origin));
        if (cost !== undefined) saved.connection = cost;
      }
      const cacheSaved = positive(ex.cache?.savedMs);
      if (cacheSaved !== undefined) saved.cache = cacheSaved;
      return saved;
    },
    dnsSavingsMs(event) {
      if (!DNS_CACHE_ANSWERS.has(event.result)) return 0;
      return positive(event.savedMs) ?? 0;
    },
  };
}

/**
 * Whether an exchange was answered without any upstream request: the cache answered (hit, stale,
 * coalesced follower) and nothing was sent to the origin for it.
 */
export function upstreamAvoided(ex: Exchange): boolean {
  if (ex.cache === undefined || ex.originInfo !== undefined) return false;
  const outcome = ex.cache.outcome;
  return outcome === 'hit' || outcome === 'stale' || outcome === 'coalesced';
}
