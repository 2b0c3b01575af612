/**
 * What metrics/ learns from the stages, for one instance: it subscribes to their diagnostics
 * channels (channels.ts) and imports no stage. Connection attempts and DNS lookups go to
 * metrics.ts's series, removals to the cache's eviction counter; keep-warm, the shared tier,
 * refresh-ahead and upstream coding, proxy auth, tunnels and interception TLS, and config reloads
 * have families of their own, registered as a running instance has them (the shared tier's only
 * when one is configured, the cache's only when the cache is on).
 */
import type { Registry } from 'prom-client';
import { type Instance, subscribe } from '../channels.js';
import type { Config } from '../config/schema.js';
import type { ConnectEvent, DnsLookupEvent, EvictionInfo, WarmState } from '../observers.js';
import { createAuthMetrics } from './auth-metrics.js';
import { createCacheWarmthMetrics } from './cache-warmth-metrics.js';
import { createReloadMetrics } from './reload-metrics.js';
import { createSharedTierMetrics } from './shared-tier-metrics.js';
import { createTunnelMetrics } from './tunnel-metrics.js';
import { createWarmMetrics } from './warm-metrics.js';

export interface StageSinks {
  observeConnect(event: ConnectEvent): void;
  observeDnsLookup(event: DnsLookupEvent): void;
  onRemove(info: EvictionInfo): void;
}

export interface StageMetrics {
  /** Keep-warm's state, read at scrape time (idle connections, warming). */
  watchWarm(read: () => WarmState): void;
  /** Unsubscribes from every channel. */
  close(): void;
}

const NOT_WARMING: WarmState = Object.freeze({ warming: false, lastWarmStartMs: null, origins: [] });

export function listenToStages(
  instance: Instance,
  config: Config,
  registry: Registry,
  sinks: StageSinks,
): StageMetrics {
  const unsubscribe: (() => void)[] = [];
  const on: typeof subscribe = (inst, name, fn) => {
    const off = subscribe(inst, name, fn);
    unsubscribe.push(off);
    return off;
  };
  on(instance, 'sidecache:upstream:connect', (e) => sinks.observeConnect(e));
  on(instance, 'sidecache:dns:lookup', (e) => sinks.observeDnsLookup(e));
  on(instance, 'sidecache:cache:remove', (e) => sinks.onRemove(e));

  let readWarm: () => WarmState = () => NOT_WARMING;
  const warm = createWarmMetrics(registry, () => readWarm());
  on(instance, 'sidecache:warm:preconnect', (e) => warm.onPreconnect?.(e.origin, e.ok, e.errorCode));
  on(instance, 'sidecache:warm:taken', (e) => warm.onTaken?.(e.origin));
  on(instance, 'sidecache:warm:start', (e) => warm.onWarmStart?.(e));

  const { cache } = config;
  if (cache.enabled && (cache.redis.url !== null || cache.memcached.servers.length > 0)) {
    const tier = createSharedTierMetrics(registry);
    on(instance, 'sidecache:shared-tier:lookup', (e) => tier.onLookup?.(e.result, e.seconds));
    on(instance, 'sidecache:shared-tier:command', (e) => tier.onCommand?.(e.op, e.seconds));
    on(instance, 'sidecache:shared-tier:error', (e) => tier.onError?.(e.op, e.err));
    on(instance, 'sidecache:shared-tier:lock-wait', (e) => tier.onLockWait?.(e.result, e.seconds));
    on(instance, 'sidecache:shared-tier:write-dropped', (e) => tier.onWriteDropped?.(e.bytes));
  }
  if (cache.enabled) {
    const warmth = createCacheWarmthMetrics(registry);
    on(instance, 'sidecache:cache:refresh-ahead', (e) => warmth.onRefreshAhead(e.result));
    on(instance, 'sidecache:cache:refresh-ahead-deferred', () => warmth.onRefreshAheadDeferred());
    on(instance, 'sidecache:cache:refresh-ahead-hit', () => warmth.onRefreshAheadHit());
    on(instance, 'sidecache:cache:upstream-coding', (e) =>
      warmth.onUpstreamCoding(e.codedBytes, e.identityBytes),
    );
  }

  const auth = createAuthMetrics(registry);
  on(instance, 'sidecache:auth:failure', (e) => auth.onFailure(e.blockedMs));
  on(instance, 'sidecache:auth:throttled', () => auth.onThrottled());

  const tunnels = createTunnelMetrics(registry);
  on(instance, 'sidecache:tunnel:end', (e) => tunnels.observeTunnel(e));
  on(instance, 'sidecache:tls:handshake-failure', (e) => tunnels.observeHandshakeFailure(e.kind));
  on(instance, 'sidecache:tls:handshake-refused', (e) => tunnels.observeHandshakeRefused(e.reason));
  on(instance, 'sidecache:tls:leaf-issued', () => tunnels.observeLeafIssued());
  on(instance, 'sidecache:tls:ca-loaded', (e) => tunnels.setCaExpiry(e.notAfterMs));

  const reloads = createReloadMetrics(registry, Date.now());
  on(instance, 'sidecache:config:reload', (e) => reloads.observeReload(e.result, e.atMs));

  return {
    watchWarm(read) {
      readWarm = read;
    },
    close() {
      for (const off of unsubscribe.splice(0)) off();
    },
  };
}
