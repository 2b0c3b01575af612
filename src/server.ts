/**
 * Wires one sidecache instance together from its parts (and does nothing else): pools, pipeline,
 * front listener, admin listener, metrics and logs; and shuts it down gracefully.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import { createAdminServer } from './admin/admin-server.js';
import { createPurgeHandler } from './admin/purge.js';
import { createCacheStage, DEFAULT_ROUTE_POLICY } from './cache/index.js';
import { createSharedTier } from './cache/shared-tier.js';
import type { HostPort, Runtime } from './config/runtime.js';
import { createDnsCache } from './dns/index.js';
import { ConfigError } from './errors.js';
import { createFront } from './front/front-server.js';
import { createEgressPolicy } from './guard/egress-policy.js';
import { createGuardStage } from './guard/guard-stage.js';
import { createProxyAuth } from './guard/proxy-auth.js';
import { createAccessLog, type Logger } from './log.js';
import { createCacheWarmthMetrics } from './metrics/cache-warmth-metrics.js';
import { createMetrics, type Metrics } from './metrics/metrics.js';
import { createServerTiming } from './metrics/server-timing.js';
import { createSharedTierMetrics } from './metrics/shared-tier-metrics.js';
import { createPipeline } from './pipeline.js';
import { setUpTunnels } from './tunnel/setup.js';
import { createOriginFetch } from './upstream/fetch-origin.js';
import { createUpstreamPools } from './upstream/pools.js';

export interface Sidecache {
  readonly proxyAddress: AddressInfo;
  readonly adminAddress: AddressInfo | null;
  readonly metrics: Metrics;
  /** Stops accepting, lets in-flight exchanges finish for up to `graceMs`, closes pools. */
  close(graceMs?: number): Promise<void>;
}

export interface SidecacheDeps {
  readonly logger: Logger;
  /** Resolver for every upstream connection (pools and tunnels); the DNS cache when absent. */
  readonly lookup?: LookupFunction;
}

export async function startSidecache(runtime: Runtime, deps: SidecacheDeps): Promise<Sidecache> {
  const { logger } = deps;
  const { config } = runtime;
  const instanceToken = `sc-${randomBytes(4).toString('hex')}`;
  const via = config.proxy.via ? `1.1 sidecache (${instanceToken})` : null;
  const metrics = createMetrics(runtime);
  const dns = createDnsCache(config.dns, { onLookup: metrics.observeDnsLookup });
  metrics.gaugeFrom(
    'sidecache_dns_cache_entries',
    'Names and record types held in the DNS cache.',
    () => dns.size,
  );
  // Tests may inject a resolver; otherwise every upstream name goes through the DNS cache. Either
  // way the egress policy filters the answers: the address checked is the address connected to.
  const egress = createEgressPolicy({ allow: config.allow, routes: runtime.routes });
  const lookup = egress.wrapLookup(deps.lookup ?? dns.lookup);
  const pools = createUpstreamPools(config.upstream, { onConnect: metrics.observeConnect, lookup });
  const sharedTier = config.cache.enabled
    ? createSharedTier(config.cache, {
        onRemove: metrics.cache.onRemove,
        observer: createSharedTierMetrics(metrics.registry),
        warn: (fields, message) => logger.warn(fields, message),
      })
    : null;
  const cache = config.cache.enabled
    ? createCacheStage(config.cache, {
        ...(sharedTier ? { store: sharedTier.store } : {}),
        policyFor: (ex) => ex.route?.cache ?? DEFAULT_ROUTE_POLICY,
        observer: {
          onRemove: metrics.cache.onRemove,
          onRefreshError: (err, url) => logger.warn({ err, url }, 'cache: background refresh failed'),
          onStoreError: (err, op) => logger.warn({ err, op }, 'cache: store failed'),
          ...createCacheWarmthMetrics(metrics.registry),
        },
      })
    : null;
  if (cache) metrics.cache.watch(cache);
  const guard = createGuardStage({
    allow: runtime.allow,
    viaToken: instanceToken,
    egress,
    ports: config.egress.ports,
    ...(config.proxy.auth.enabled ? { authenticate: createProxyAuth(config.proxy.auth) } : {}),
  });
  const pipeline = createPipeline({
    guard,
    cache: cache ?? undefined,
    upstream: createOriginFetch(pools, {
      defaults: config.upstream,
      via,
      forwardedHeaders: config.proxy.forwardedHeaders,
    }),
  });
  const observers = [metrics.observeExchange, metrics.cache.observeExchange];
  if (config.log.access) observers.push(createAccessLog(logger));
  // CONNECT, interception and upgrades; decrypted requests come back through front.serve.
  const tunnels = await setUpTunnels(runtime, {
    logger,
    registry: metrics.registry,
    guard,
    via,
    lookup,
    decrypted: {
      request: (req, res, arrival) => front.serve(req, res, arrival),
      upgrade: (req, socket, head, arrival) => front.serveUpgrade(req, socket, head, arrival),
    },
  });
  const front = createFront({
    runtime,
    pipeline,
    observers,
    onClientError: (code, message) => logger.info({ code, message }, 'malformed request refused'),
    responseHeaders: createServerTiming(runtime),
    raw: tunnels.raw,
  });
  metrics.gaugeFrom('sidecache_in_flight_requests', 'Exchanges being served right now.', front.inFlight);

  let draining = false;
  const admin = runtime.adminListen
    ? createAdminServer({
        registry: metrics.registry,
        token: config.admin.token,
        caCertPem: tunnels.caCertPem,
        ready: () =>
          draining
            ? { ready: false, why: 'shutting down' }
            : (sharedTier?.ready() ?? { ready: true, why: 'listening' }),
        purge: createPurgeHandler(cache, runtime),
      })
    : null;

  const proxyAddress = await listen(front.server, runtime.listen, 'listen');
  let adminAddress: AddressInfo | null = null;
  try {
    if (admin && runtime.adminListen) adminAddress = await listen(admin, runtime.adminListen, 'admin.listen');
  } catch (err) {
    front.server.close();
    await pools.close(0);
    await dns.close();
    await sharedTier?.close();
    throw err;
  }
  logger.info(
    {
      listen: `${proxyAddress.address}:${proxyAddress.port}`,
      admin: adminAddress ? `${adminAddress.address}:${adminAddress.port}` : null,
      routes: runtime.routes.map((r) => r.name),
      ...(sharedTier ? { [sharedTier.kind]: sharedTier.url } : {}),
    },
    'sidecache started',
  );
  logger.flush();

  let closing: Promise<void> | null = null;
  return {
    proxyAddress,
    adminAddress,
    metrics,
    close(graceMs = config.shutdown.graceMs) {
      closing ??= (async () => {
        draining = true;
        front.startDraining();
        const serverClosed = new Promise<void>((resolve) => front.server.close(() => resolve()));
        const deadline = Date.now() + graceMs;
        while (front.inFlight() > 0 && Date.now() < deadline) await sleep(Math.min(25, graceMs));
        const abandoned = front.inFlight();
        front.server.closeAllConnections();
        front.closeTunnels();
        await serverClosed;
        await pools.close(Math.max(0, deadline - Date.now()));
        await dns.close();
        await sharedTier?.close();
        if (admin) {
          admin.closeAllConnections();
          await new Promise<void>((resolve) => admin.close(() => resolve()));
        }
        logger.info({ abandoned }, 'sidecache stopped');
      })();
      return closing;
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function listen(server: Server, at: HostPort, key: string): Promise<AddressInfo> {
  server.listen(at.port, at.host);
  try {
    await once(server, 'listening');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'ERR';
    throw new ConfigError([`${key}: cannot listen on ${at.host}:${at.port} (${code})`], { cause: err });
  }
  return server.address() as AddressInfo;
}
