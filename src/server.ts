/**
 * Wires one sidecache instance together from its parts (and does nothing else): pools, pipeline,
 * front listener, admin listener, metrics and logs; and shuts it down gracefully. The stages are
 * built with the instance's `Instance`; what they publish on their diagnostics channels reaches
 * this instance's metrics and log only (channels.ts).
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import { createAdminServer } from './admin/admin-server.js';
import { createCacheListHandler } from './admin/cache-list.js';
import { createPurgeHandler } from './admin/purge.js';
import { type Advisor, createAdvisor } from './advisor/observe.js';
import { adviceOff, advise } from './advisor/suggest.js';
import { createCacheStage, DEFAULT_ROUTE_POLICY } from './cache/index.js';
import type { Instance } from './channels.js';
import { poolStillCurrent } from './config/reload.js';
import type { HostPort, Runtime } from './config/runtime.js';
import { createRuntimeRef } from './config/runtime-ref.js';
import { createDnsCache } from './dns/index.js';
import { ConfigError } from './errors.js';
import type { Stage } from './exchange.js';
import { type Acceptors, addAcceptors } from './front/acceptors.js';
import { createFront } from './front/front-server.js';
import { createAuthThrottle } from './guard/auth-throttle.js';
import { createEgressPolicy } from './guard/egress-policy.js';
import { createGuardStage } from './guard/guard-stage.js';
import { createProxyAuth } from './guard/proxy-auth.js';
import { createAccessLog, httpUrl, type Logger, logStageEvents } from './log.js';
import { createMetrics, type Metrics } from './metrics/metrics.js';
import { createServerTiming } from './metrics/server-timing.js';
import type { WarmStartResult } from './observers.js';
import { createPipeline } from './pipeline.js';
import { createReloader, type ReloadOutcome } from './reloader.js';
import { startTracing } from './tracing/index.js';
import { setUpTunnels } from './tunnel/setup.js';
import { createOriginFetch } from './upstream/fetch-origin.js';
import { createUpstreamPools } from './upstream/pools.js';
import { createKeepWarm, type KeepWarm } from './upstream/warm.js';
import { SIDECACHE_VERSION } from './version.js';

export interface Sidecache {
  readonly proxyAddress: AddressInfo;
  readonly adminAddress: AddressInfo | null;
  readonly metrics: Metrics;
  /** Keep-warm; `warm.apply(routes)` re-warms after a config change. */
  readonly warm: KeepWarm;
  /** The warm start begun at start: settles when every route origin is connected or it timed out. */
  readonly warmStart: Promise<WarmStartResult>;
  /** The policy advisor; null when `advisor.enabled` is false (no stage, no observer). */
  readonly advisor: Advisor | null;
  /** The running config (it changes on reload). */
  runtime(): Runtime;
  /**
   * Reloads the config (SIGHUP): `load` reads and compiles the sources again; a config that fails
   * to load, or changes a setting bound at start, is rejected and the running one kept.
   */
  reload(load: () => Runtime): ReloadOutcome;
  /**
   * Called with the new runtime after each applied reload (e.g. to pre-connect to new route
   * origins); returns an unsubscribe.
   */
  onRuntimeChange(listener: (runtime: Runtime) => void): () => void;
  /**
   * Stops accepting, lets in-flight exchanges finish for up to `graceMs`, closes pools. `graceMs`
   * is a deadline: what is still open then is destroyed and the promise settles (`forced`).
   */
  close(graceMs?: number): Promise<ShutdownResult>;
}

export interface ShutdownResult {
  /** Something had to be cut: exchanges still in flight, or connections open, at the deadline. */
  readonly forced: boolean;
  /** Exchanges still in flight when the grace period ended. */
  readonly abandoned: number;
}

export interface SidecacheDeps {
  readonly logger: Logger;
  /** Resolver for every upstream connection (pools and tunnels); the DNS cache when absent. */
  readonly lookup?: LookupFunction;
  /** Reads and compiles the config sources again, for `POST /reload` (absent: no such endpoint). */
  readonly loadRuntime?: () => Runtime;
}

export async function startSidecache(runtime: Runtime, deps: SidecacheDeps): Promise<Sidecache> {
  const { logger } = deps;
  const { config } = runtime;
  // Routes and policy are read through `ref` (config reload); what is bound at start reads `config`.
  const ref = createRuntimeRef(runtime);
  const instanceToken = `sc-${randomBytes(4).toString('hex')}`;
  const via = config.proxy.via ? `1.1 sidecache (${instanceToken})` : null;
  const instance: Instance = Object.freeze({ token: instanceToken });
  const metrics = createMetrics(runtime, instance);
  const unlog = logStageEvents(logger, instance);
  const dns = createDnsCache(config.dns, { instance });
  metrics.gaugeFrom(
    'sidecache_dns_cache_entries',
    'Names and record types held in the DNS cache.',
    () => dns.size,
  );
  // Tests may inject a resolver; otherwise every upstream name goes through the DNS cache. Either
  // way the egress policy current at lookup time judges the answers for the port connected to (a
  // route's own origin resolves unfiltered): the address checked is the address connected to.
  const egressFor = ref.derive((rt) => createEgressPolicy({ allow: rt.config.allow, routes: rt.routes }));
  const baseLookup = deps.lookup ?? dns.lookup;
  const lookupTo = (port: number): LookupFunction =>
    ((hostname, options, callback) =>
      egressFor().lookupTo(baseLookup, port)(hostname, options, callback)) as LookupFunction;
  const pools = createUpstreamPools(config.upstream, { instance, lookupTo });
  const keepWarm = createKeepWarm(config.upstream.warm, {
    pools,
    dns,
    // Intercepted route hosts: their leaf certificates are minted during the warm start too.
    // (apply() runs after listening, once `tunnels` below exists.)
    prepare: (hosts) => tunnels.prepareLeaves(hosts),
    instance,
  });
  metrics.watchWarm(() => keepWarm.state());
  // The Redis and memcached clients are loaded only when a shared tier is configured (idle memory).
  const sharedTier =
    config.cache.enabled && (config.cache.redis.url !== null || config.cache.memcached.servers.length > 0)
      ? await (await import('./cache/shared-tier.js')).createSharedTier(config.cache, {
          instance,
          warn: (fields, message) => logger.warn(fields, message),
        })
      : null;
  const cache = config.cache.enabled
    ? createCacheStage(config.cache, {
        ...(sharedTier ? { store: sharedTier.store } : {}),
        policyFor: (ex) => ex.route?.cache ?? DEFAULT_ROUTE_POLICY,
        instance,
      })
    : null;
  if (cache) metrics.cache.watch(cache);
  // Failures are counted across reloads: the throttle outlives each runtime's guard.
  const authThrottle = createAuthThrottle({ ...config.proxy.auth.throttle, instance });
  // One guard per runtime; an exchange is admitted by the one current when it starts (the guard
  // runs in the same tick as front/ builds the exchange).
  const guard: Stage = (next) => {
    const guardFor = ref.derive((rt) =>
      createGuardStage({
        allow: rt.allow,
        viaToken: instanceToken,
        egress: egressFor(rt),
        ports: rt.config.egress.ports,
        ...(rt.config.proxy.auth.enabled
          ? { authenticate: createProxyAuth(rt.config.proxy.auth, authThrottle) }
          : {}),
      })(next),
    );
    return (ex) => guardFor()(ex);
  };
  // advisor.enabled: false leaves the stage and its observer out entirely.
  const advisor = config.advisor.enabled ? createAdvisor() : null;
  // Loads the OpenTelemetry packages only when tracing is on (tracing/index.ts).
  const tracing = await startTracing({
    ref,
    registry: metrics.registry,
    logger,
    savings: metrics.savedTime.exchangeSavings,
  });
  const pipeline = createPipeline({
    guard,
    advisor: advisor?.stage,
    cache: cache ?? undefined,
    upstream: createOriginFetch(pools, {
      // Read per exchange: the forward-proxy defaults follow a reload.
      get defaults() {
        return ref.current().config.upstream;
      },
      via,
      forwardedHeaders: config.proxy.forwardedHeaders,
      ...(tracing ? { traceContext: tracing.traceContext } : {}),
    }),
  });
  const observers = [metrics.observeExchange, metrics.cache.observeExchange];
  if (advisor) observers.push(advisor.observe);
  if (config.log.access) observers.push(createAccessLog(logger));
  if (tracing) observers.push(tracing.observe);
  // CONNECT, interception and upgrades; decrypted requests come back through front.serve.
  const tunnels = await setUpTunnels(ref, {
    logger,
    instance,
    guard,
    via,
    lookupTo,
    ...(tracing ? { traceContext: tracing.traceContext } : {}),
    decrypted: {
      request: (req, res, arrival) => front.serve(req, res, arrival),
      upgrade: (req, socket, head, arrival) => front.serveUpgrade(req, socket, head, arrival),
    },
  });
  const serverTimingFor = ref.derive((rt) => createServerTiming(rt));
  const front = createFront({
    runtime,
    current: ref.current,
    pipeline,
    observers,
    onClientError: (code, message) => logger.info({ code, message }, 'malformed request refused'),
    responseHeaders: (ex, headers) => serverTimingFor()(ex, headers),
    raw: tunnels.raw,
  });
  metrics.gaugeFrom('sidecache_in_flight_requests', 'Exchanges being served right now.', front.inFlight);

  const reload = createReloader({ ref, logger, interceptionReady: config.intercept.length > 0, instance });
  ref.onChange((next) => {
    metrics.adoptRoutes(next.routes);
    // A pool whose route is gone or whose settings changed takes no new exchanges and closes
    // after its in-flight requests.
    const retired = pools.retire(poolStillCurrent(next));
    if (retired > 0) logger.info({ retired }, 'config reload: upstream pools with old settings retired');
    // Warm the new or changed route origins; ones no longer routed stop being kept warm.
    void keepWarm.apply(next.warmOrigins);
  });

  let draining = false;
  const admin = runtime.adminListen
    ? createAdminServer({
        registry: metrics.registry,
        token: config.admin.token,
        allowedHosts: [runtime.adminListen.host, ...config.admin.allowedHosts],
        caCertPem: tunnels.caCertPem,
        ready: () => {
          if (draining) return { ready: false, why: 'shutting down' };
          const warm = keepWarm.ready();
          if (!warm.ready) return warm;
          return sharedTier?.ready() ?? { ready: true, why: 'listening' };
        },
        purge: createPurgeHandler(cache, ref.current),
        cacheList: createCacheListHandler(cache, ref.current),
        advice: () =>
          advisor
            ? advise(advisor.observations(), ref.current().routes, Date.now())
            : adviceOff(ref.current().routes, Date.now()),
        ...(deps.loadRuntime ? { reload: () => reload(deps.loadRuntime as () => Runtime) } : {}),
      })
    : null;

  // The proxy listener queues up to limits.maxConnections handshakes (HAProxy's backlog = maxconn).
  const proxyAddress = await listen(front.server, runtime.listen, 'listen', config.limits.maxConnections);
  // More listening handles on the same socket, so a saturated loop still accepts promptly.
  const acceptors: Acceptors | null = await addAcceptors(front.server, {
    count: config.proxy.acceptors,
    backlog: config.limits.maxConnections,
  }).catch((err: unknown) => {
    logger.warn({ err }, 'proxy.acceptors: accepting on one listening handle only');
    return null;
  });
  let adminAddress: AddressInfo | null = null;
  try {
    if (admin && runtime.adminListen) adminAddress = await listen(admin, runtime.adminListen, 'admin.listen');
  } catch (err) {
    front.server.close();
    await acceptors?.close();
    keepWarm.close();
    await pools.close(0);
    await dns.close();
    await sharedTier?.close();
    metrics.close();
    unlog();
    throw err;
  }
  const proxyUrl = httpUrl(proxyAddress.address, proxyAddress.port);
  const adminUrl = adminAddress ? httpUrl(adminAddress.address, adminAddress.port) : null;
  logger.info(
    {
      listen: `${proxyAddress.address}:${proxyAddress.port}`,
      acceptors: acceptors?.count ?? 1,
      admin: adminAddress ? `${adminAddress.address}:${adminAddress.port}` : null,
      routes: runtime.routes.map((r) => r.name),
      ...(sharedTier ? { [sharedTier.kind]: sharedTier.url } : {}),
      version: SIDECACHE_VERSION,
      proxyUrl,
      adminUrl,
      statusUrl: adminUrl ? `${adminUrl}/` : null,
      ...(config.intercept.length > 0
        ? { intercept: config.intercept, caUrl: adminUrl ? `${adminUrl}/ca.pem` : null }
        : {}),
      forward: config.allow,
      mounts: runtime.routes.map((r) => ({
        route: r.name,
        url: r.prefix === null ? null : `${proxyUrl}${r.prefix}`,
        hosts: r.hosts,
        origin: `${r.origin}${r.basePath}`,
      })),
    },
    'sidecache started',
  );
  logger.flush();
  // In the background: requests are served meanwhile (on cold connections until it is done).
  const warmStart = keepWarm.apply(runtime.warmOrigins);

  let closing: Promise<ShutdownResult> | null = null;
  return {
    proxyAddress,
    adminAddress,
    metrics,
    warm: keepWarm,
    warmStart,
    advisor,
    runtime: ref.current,
    reload,
    onRuntimeChange(listener) {
      return ref.onChange((next) => listener(next));
    },
    close(graceMs = config.shutdown.graceMs) {
      closing ??= (async () => {
        draining = true;
        front.startDraining();
        const deadline = Date.now() + graceMs;
        const serverClosed = new Promise<void>((resolve) => front.server.close(() => resolve()));
        const acceptorsClosed = acceptors?.close();
        while (front.inFlight() > 0 && Date.now() < deadline) await sleep(Math.min(25, graceMs));
        const abandoned = front.inFlight();
        front.server.closeAllConnections();
        front.closeTunnels();
        keepWarm.close();
        // The rest closes in order, but only until the deadline: then every step not yet begun is
        // begun without waiting, and whatever is still open (client sockets, tunnels, upstream
        // requests, stores, the admin listener) is dropped.
        const closePools = onlyOnce(() => pools.close(Math.max(0, deadline - Date.now())));
        const closeDns = onlyOnce(() => dns.close());
        const closeTracing = onlyOnce(async () => tracing?.close(Math.max(0, deadline - Date.now())));
        const closeSharedTier = onlyOnce(async () => sharedTier?.close());
        const closeAdmin = onlyOnce(async () => {
          if (!admin) return;
          admin.closeAllConnections();
          await new Promise<void>((resolve) => admin.close(() => resolve()));
        });
        const orderly = (async () => {
          await serverClosed;
          await acceptorsClosed;
          await closePools();
          // Torn-down tunnels are told to the observers as their sockets close, a few ticks later:
          // their spans are made before the exporter's last flush.
          while (front.openTunnels() > 0 && Date.now() < deadline) await sleep(5);
          await closeTracing();
          await closeDns();
          await closeSharedTier();
          await closeAdmin();
        })();
        const inTime = await settlesBy(orderly, deadline);
        let destroyed = 0;
        if (!inTime) {
          destroyed = front.destroyConnections();
          const rest = Promise.allSettled([
            closePools(),
            closeTracing(),
            closeDns(),
            closeSharedTier(),
            closeAdmin(),
          ]);
          // A last moment for the steps to finish now that their sockets are gone; not awaited past it.
          await settlesBy(Promise.all([orderly, rest]), Date.now() + 100);
        }
        const forced = abandoned > 0 || !inTime;
        // Events published from here on (stragglers of a forced close) reach no one.
        metrics.close();
        unlog();
        logger.info({ abandoned, forced, destroyed }, 'sidecache stopped');
        return { forced, abandoned };
      })();
      return closing;
    },
  };
}

/** `fn` run on the first call only; every call returns that first call's promise. */
function onlyOnce<T>(fn: () => Promise<T>): () => Promise<T> {
  let started: Promise<T> | null = null;
  return () => {
    started ??= fn();
    return started;
  };
}

/** Whether `work` settles before `deadline` (epoch ms); it is left running either way. */
async function settlesBy(work: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * `backlog`: connections the kernel queues before they are accepted. Node's default (511)
 * overflows when many clients connect at once while the event loop is busy; the kernel then drops
 * their handshakes and clients retry after 1, 3, 7 s (the soak's 10 s wrk timeouts, bench/README).
 * The kernel caps it at net.core.somaxconn.
 */
async function listen(server: Server, at: HostPort, key: string, backlog = 511): Promise<AddressInfo> {
  server.listen({ port: at.port, host: at.host, backlog });
  try {
    await once(server, 'listening');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'ERR';
    throw new ConfigError([`${key}: cannot listen on ${at.host}:${at.port} (${code})`], { cause: err });
  }
  return server.address() as AddressInfo;
}
