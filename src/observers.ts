/**
 * What the stages tell their observers (metrics, logs) and never steer by: the events and the
 * observer interfaces. A leaf module: stages implement against it and metrics/ reads it, so metrics/
 * imports no stage and no stage imports metrics/.
 */

/** One connection attempt of the upstream pools to an origin, with its DNS, connect and TLS times. */
export interface ConnectEvent {
  readonly origin: string;
  readonly ok: boolean;
  readonly dnsMs: number | undefined;
  readonly connectMs: number | undefined;
  readonly tlsMs: number | undefined;
  readonly errorCode?: string;
}

/** What the DNS cache reports for each lookup (dns/dns-cache.ts; its own event type is narrower). */
export interface DnsLookupEvent {
  readonly host: string;
  readonly result: 'hit' | 'miss' | 'stale' | 'negative' | 'error' | 'prefetch' | 'static';
  /** How the name was resolved: `system`, `udp`, `doh`, … (a small closed set in the DNS module). */
  readonly mode: string;
  /** How long this lookup took, ms (a few µs for an answer from the cache). */
  readonly durationMs: number;
  /** For answers from the cache: how long the last real lookup of this name took, ms. */
  readonly savedMs?: number;
}

/** How a config reload ended (reloader.ts); a metric label value. */
export type ReloadResult = 'ok' | 'rejected';

/** What keeping origins warm (upstream/warm.ts) tells its observer. */
export interface WarmObserver {
  /** A connection was opened ahead of need (`ok`), or the attempt failed with `errorCode`. */
  onPreconnect?(origin: string, ok: boolean, errorCode?: string): void;
  /** A request took a connection opened ahead of need. */
  onTaken?(origin: string): void;
  /** A warm start finished (every attempt settled) or timed out. */
  onWarmStart?(result: WarmStartResult): void;
  /** An origin started failing (first failure after a success) or recovered. */
  onOriginHealth?(origin: string, healthy: boolean, errorCode?: string): void;
}

export interface WarmStartResult {
  /** The warm start at start (true), or the warming of new or changed origins after a reload (false). */
  readonly initial: boolean;
  readonly durationMs: number;
  /** Origins warmed, connections opened, attempts failed, attempts still running at the deadline. */
  readonly origins: number;
  readonly opened: number;
  readonly failed: number;
  readonly timedOut: boolean;
}

export interface OriginWarmState {
  readonly origin: string;
  /** The route whose settings apply (the first route with this origin). */
  readonly route: string;
  readonly minIdle: number;
  /** Pre-opened connections waiting, and the pool's connected-but-free ones. */
  readonly parked: number;
  readonly free: number;
  /** Connection attempts in flight. */
  readonly pending: number;
  /** Consecutive failures (0 when healthy), and when the next attempt may run (ms from now). */
  readonly failures: number;
  readonly retryInMs: number | null;
}

export interface WarmState {
  /** A warm start is running. */
  readonly warming: boolean;
  /** Duration of the last finished warm start, ms; null before one finished. */
  readonly lastWarmStartMs: number | null;
  readonly origins: readonly OriginWarmState[];
}

/** What can fail in the shared tier; a metric label. */
export type SharedTierOp = 'get' | 'put' | 'delete' | 'lock' | 'publish' | 'connection' | 'decode';

/** Observers of the shared tier (metrics, logs). None steers. */
export interface SharedTierObserver {
  /** One L2 lookup: found live variants (`hit`), none (`miss`), or failed (`error`). */
  onLookup?(result: 'hit' | 'miss' | 'error', seconds: number): void;
  /** Duration of a successful L2 command, for the latency histogram. */
  onCommand?(op: 'get' | 'put' | 'delete', seconds: number): void;
  onError?(op: SharedTierOp, err: unknown): void;
  /** A miss waited for another process's fill: it ended (`released`) or the wait gave up. */
  onLockWait?(result: 'released' | 'timeout' | 'error', seconds: number): void;
  /** An L2 write left out (the entry stays in L1): the writes in flight held their byte budget. */
  onWriteDropped?(bytes: number): void;
}

/** Why a stored response left the store. */
export type RemovalReason = 'evict' | 'expire' | 'delete' | 'replace';

/** A stored response that left a store (cache/store.ts `onRemove`). */
export interface EvictionInfo {
  readonly key: string;
  readonly bytes: number;
  readonly reason: RemovalReason;
}

/** How a refresh-ahead ended: a metric label value. */
export type RefreshAheadResult = 'not_modified' | 'replaced' | 'not_stored' | 'error';

/** Observers of what the cache stage cannot put on one Exchange. All optional; none steers. */
export interface CacheObserver {
  /** An entry left the default memory store (reason `evict` when it made room). */
  onRemove?(info: EvictionInfo): void;
  /** A background (stale-while-revalidate) refresh failed; the stale entry stays. */
  onRefreshError?(err: unknown, url: string): void;
  /** The store rejected a call; the stage carried on as if it had missed. */
  onStoreError?(err: unknown, op: 'get' | 'put' | 'delete'): void;
  /** A refresh-ahead revalidation ended. */
  onRefreshAhead?(result: RefreshAheadResult): void;
  /** A refresh-ahead was due but `refreshAheadConcurrency` were already in flight (a later hit retries). */
  onRefreshAheadDeferred?(): void;
  /** A fresh hit served after the copy that refresh-ahead replaced would have expired. */
  onRefreshAheadHit?(): void;
  /**
   * A coded origin body whose decoded size is now known (checked before storing, or decoded for a
   * client): `codedBytes` came over the wire instead of `identityBytes`.
   */
  onUpstreamCoding?(codedBytes: number, identityBytes: number): void;
}

/** How a spliced connection ended; the first thing that happened wins. */
export type SpliceEnding = 'closed' | 'idle_timeout' | 'client_error' | 'origin_error' | 'shutdown';

/** How a CONNECT tunnel ended (tunnel/tunnels.ts): bytes each way and why it closed. */
export interface TunnelEnd {
  /** Bytes from the client (for `intercept`: TLS bytes on the client connection). */
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly ending: SpliceEnding | 'tls_failed';
  readonly errorCode?: string;
}

/**
 * Why a client's TLS handshake with an intercepted tunnel failed (tls/handshake-failure.ts
 * classifies it; a metric label).
 */
export type HandshakeFailure = 'cert-rejected' | 'no-shared-cipher' | 'reset' | 'timeout' | 'other';

/** Why sidecache ended a client's handshake itself (a metric label). */
export type HandshakeRefusal = 'sni_mismatch';

/** A finished tunnel or upgraded connection, for metrics. */
export interface TunnelReport extends TunnelEnd {
  readonly kind: 'tunnel' | 'intercept' | 'upgrade';
  readonly durationMs: number;
}
