/**
 * The diagnostics channels (node:diagnostics_channel) on which the stages publish what they cannot
 * put on one Exchange, and metrics/ and the log subscribe: the channel names and what each carries.
 * A leaf module, like observers.ts: a stage folder makes its channels from it (upstream/channels.ts,
 * dns/channels.ts, cache/channels.ts, guard/channels.ts, tunnel/channels.ts) and publishes only
 * when someone listens (`if (ch.hasSubscribers) ch.publish(...)`, one check when no one does); metrics/ subscribes by
 * name and so imports no stage.
 *
 * Channels are process-global and one process may run several sidecache instances (tests do):
 * every message carries the `Instance` its stage was built with, and `subscribe` passes on only
 * the messages of the instance asked for.
 */
import dc from 'node:diagnostics_channel';
import type {
  ConnectEvent,
  DnsLookupEvent,
  EvictionInfo,
  HandshakeFailure,
  HandshakeRefusal,
  RefreshAheadResult,
  ReloadResult,
  SharedTierOp,
  TunnelReport,
  WarmStartResult,
} from './observers.js';

/** One sidecache instance (server.ts makes one per start); messages are matched to it by identity. */
export interface Instance {
  /** The token of its Via header. */
  readonly token: string;
}

/** What each channel carries. */
export interface ChannelEvents {
  /** upstream/pools.ts: one connection attempt to an origin. */
  'sidecache:upstream:connect': ConnectEvent;
  /** upstream/warm.ts: a connection opened ahead of need (`ok`), or the attempt failed. */
  'sidecache:warm:preconnect': {
    readonly origin: string;
    readonly ok: boolean;
    readonly errorCode: string | undefined;
  };
  /** upstream/warm.ts: a request took a connection opened ahead of need. */
  'sidecache:warm:taken': { readonly origin: string };
  /** upstream/warm.ts: a warm start (or a reload's warming) finished or timed out. */
  'sidecache:warm:start': WarmStartResult;
  /** upstream/warm.ts: an origin started failing, or recovered. */
  'sidecache:warm:health': {
    readonly origin: string;
    readonly healthy: boolean;
    readonly errorCode: string | undefined;
  };
  /** dns/dns-cache.ts: one lookup through the DNS cache. */
  'sidecache:dns:lookup': DnsLookupEvent;
  /** cache/redis-store.ts, memcached-store.ts: one L2 lookup. */
  'sidecache:shared-tier:lookup': { readonly result: 'hit' | 'miss' | 'error'; readonly seconds: number };
  /** The duration of a successful L2 command. */
  'sidecache:shared-tier:command': { readonly op: 'get' | 'put' | 'delete'; readonly seconds: number };
  'sidecache:shared-tier:error': { readonly op: SharedTierOp; readonly err: unknown };
  /** An L2 write not sent: the writes already in flight held their byte budget (tiered-store.ts). */
  'sidecache:shared-tier:write-dropped': { readonly bytes: number };
  /** A miss waited for another process's fill. */
  'sidecache:shared-tier:lock-wait': {
    readonly result: 'released' | 'timeout' | 'error';
    readonly seconds: number;
  };
  /** cache/: a stored response left a memory store. */
  'sidecache:cache:remove': EvictionInfo;
  /** A background (stale-while-revalidate) refresh failed; the stale entry stays. */
  'sidecache:cache:refresh-error': { readonly err: unknown; readonly url: string };
  /** The store rejected a call; the stage carried on as if it had missed. */
  'sidecache:cache:store-error': { readonly err: unknown; readonly op: 'get' | 'put' | 'delete' };
  'sidecache:cache:refresh-ahead': { readonly result: RefreshAheadResult };
  'sidecache:cache:refresh-ahead-deferred': undefined;
  'sidecache:cache:refresh-ahead-hit': undefined;
  /** A coded origin body whose decoded size is now known. */
  'sidecache:cache:upstream-coding': { readonly codedBytes: number; readonly identityBytes: number };
  /** guard/auth-throttle.ts: a wrong proxy credential; `blockedMs` > 0 when it started a back-off. */
  'sidecache:auth:failure': { readonly blockedMs: number };
  /** guard/auth-throttle.ts: an attempt refused (429) because its address is held back. */
  'sidecache:auth:throttled': undefined;
  /** tunnel/: a CONNECT tunnel, an intercepted tunnel or an upgraded connection closed. */
  'sidecache:tunnel:end': TunnelReport;
  /** tunnel/tunnels.ts: a client's TLS handshake on an intercepted tunnel failed. */
  'sidecache:tls:handshake-failure': {
    readonly kind: HandshakeFailure;
    readonly authority: string;
    readonly code: string;
  };
  /** tunnel/tunnels.ts: sidecache ended a client's handshake (the SNI names another host). */
  'sidecache:tls:handshake-refused': {
    readonly reason: HandshakeRefusal;
    readonly authority: string;
    readonly servername: string;
  };
  /** tunnel/setup.ts: a leaf certificate was minted for an intercepted host. */
  'sidecache:tls:leaf-issued': undefined;
  /** tunnel/setup.ts: the interception CA was loaded or made at start. */
  'sidecache:tls:ca-loaded': { readonly notAfterMs: number };
  /** reloader.ts: a config reload was applied (`ok`) or rejected. */
  'sidecache:config:reload': { readonly result: ReloadResult; readonly atMs: number };
}

export type ChannelName = keyof ChannelEvents;

/** A message on channel `N`: its event and the instance whose stage published it. */
export interface Message<N extends ChannelName> {
  readonly instance: Instance | undefined;
  readonly event: ChannelEvents[N];
}

/** The publishing side of one channel (a node:diagnostics_channel Channel, typed). */
export interface Publisher<N extends ChannelName> {
  readonly name: N;
  readonly hasSubscribers: boolean;
  publish(message: Message<N>): void;
}

/** The channel `name`, for a stage folder's channels module to publish on. */
export function channel<N extends ChannelName>(name: N): Publisher<N> {
  return dc.channel(name) as unknown as Publisher<N>;
}

/**
 * Calls `fn` with the event of every message on `name` that belongs to `instance`; returns the
 * unsubscribe (call it when the instance closes: a subscription keeps `fn` alive).
 */
export function subscribe<N extends ChannelName>(
  instance: Instance,
  name: N,
  fn: (event: ChannelEvents[N]) => void,
): () => void {
  const listener = (message: unknown): void => {
    const m = message as Message<N>;
    if (m.instance === instance) fn(m.event);
  };
  dc.subscribe(name, listener);
  return () => {
    dc.unsubscribe(name, listener);
  };
}
