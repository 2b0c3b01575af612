/**
 * Keep-warm: the first request to a route origin, or to an intercepted host no route covers,
 * finds a connection as ready as the hundredth.
 *
 * - Warm start (`apply(origins)`, at start and, later, on config reload): every origin is
 *   resolved and connected (DNS through the same cache and egress-checked lookup as the pools, TCP,
 *   TLS with ALPN settled), `warm.connections` times, all origins in parallel; the returned promise
 *   settles when every attempt has, or after `warm.timeoutMs`, whichever is first.
 * - Stay warm: each origin keeps at least `warm.minIdle` idle connections (parked pre-opened ones
 *   plus the pool's free ones). When one closes (the origin's or the pool's idle timeout, a reset)
 *   or a request takes a parked one, another is opened. An origin that refuses connections is
 *   retried after `retryMinMs`, doubling per failure up to `retryMaxMs`; a connection the origin
 *   closes within `SHORT_LIVED_MS` counts as a failure, so a peer that accepts and drops at once
 *   cannot make this loop. Nothing polls: every attempt follows an event or one backoff timer.
 * - DNS prefetch: origin names are handed to the DNS cache's `keepFresh`, which refreshes
 *   them before their TTL runs out even while no request asks.
 *
 * The connections themselves are opened and parked by the pools (`UpstreamPools.preconnect`);
 * this module only decides when and how many. Nothing here sends an HTTP request.
 */
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Instance } from '../channels.js';
import type { WarmOrigin } from '../config/runtime.js';
import type { UpstreamConfig, WarmConfig } from '../config/schema.js';
import type { WarmObserver, WarmStartResult, WarmState } from '../observers.js';
import { publishWarm } from './channels.js';
import type { ConnectionRecord, IdleChange, UpstreamPools } from './pools.js';

/**
 * Connections and minIdle of an origin: as configured, but at most 1 with HTTP/2 offered, since
 * one h2 connection carries up to 100 concurrent requests and the pool would leave others idle.
 */
export function warmCounts(settings: UpstreamConfig): { connections: number; minIdle: number } {
  const { connections, minIdle } = settings.warm;
  return settings.http2
    ? { connections: Math.min(1, connections), minIdle: Math.min(1, minIdle) }
    : { connections, minIdle };
}

/** A parked connection the origin closes sooner than this after opening counts as a failure. */
export const SHORT_LIVED_MS = 1_000;

export interface KeepWarmDeps {
  readonly pools: Pick<UpstreamPools, 'preconnect' | 'idleConnections' | 'dropParked' | 'onIdleChange'>;
  /** The DNS cache, to keep origin names fresh; absent when a test injects a resolver. */
  readonly dns?: { keepFresh(hosts: Iterable<string>): void };
  /** Default: every event published on its `sidecache:warm:*` channel, for `instance`. */
  readonly observer?: WarmObserver;
  readonly instance?: Instance;
  /**
   * Other work of the warm start, run in parallel with the connects and bounded by the same
   * timeout (server.ts: the interception leaf certificates of the intercepted host names).
   */
  readonly prepare?: (hosts: readonly string[]) => Promise<void>;
}

export interface KeepWarm {
  /**
   * Warms `origins` (route origins and intercepted hosts: `Runtime.warmOrigins`; a Route is one)
   * and keeps them warm; origins no longer listed stop being kept warm (their parked connections
   * close). Resolves when the warm start is done or timed out.
   */
  apply(origins: readonly WarmOrigin[]): Promise<WarmStartResult>;
  /** For /readyz: not ready while the first warm start runs (when `readyWait`); reloads do not count. */
  ready(): { ready: boolean; why: string };
  state(): WarmState;
  /** Stops timers and listeners; the pools close the connections. Idempotent. */
  close(): void;
}

interface Target {
  readonly origin: string;
  /** The route's name, or `intercept <entry>`. */
  readonly route: string;
  readonly settings: UpstreamConfig;
  pending: number;
  failures: number;
  /** performance.now() before which no new attempt runs (backoff). */
  retryAt: number;
  timer: NodeJS.Timeout | null;
}

/** The wait before attempt `failures + 1`: `min` doubled per failure beyond the first, capped. */
export function backoffMs(failures: number, warm: Pick<WarmConfig, 'retryMinMs' | 'retryMaxMs'>): number {
  if (failures <= 0) return 0;
  const exp = Math.min(30, failures - 1);
  return Math.min(warm.retryMaxMs, warm.retryMinMs * 2 ** exp);
}

export function createKeepWarm(warm: WarmConfig, deps: KeepWarmDeps): KeepWarm {
  const { pools } = deps;
  const observer = deps.observer ?? publishWarm(deps.instance);
  const targets = new Map<string, Target>();
  let warming = 0;
  /** The first apply (at start) is running: the only warm start /readyz waits for. */
  let starting = false;
  let applied = false;
  let lastWarmStartMs: number | null = null;
  let closed = false;

  const unsubscribe = pools.onIdleChange((origin, change, record) => onIdleChange(origin, change, record));

  function onIdleChange(origin: string, change: IdleChange, record?: ConnectionRecord): void {
    const target = targets.get(origin);
    if (target === undefined || closed) return;
    switch (change) {
      case 'taken':
        observer?.onTaken?.(origin);
        target.failures = 0;
        target.retryAt = 0;
        break;
      case 'closed':
        if (record !== undefined && performance.now() - record.startedAt < SHORT_LIVED_MS) fail(target);
        else target.failures = 0;
        break;
      case 'disconnect':
        break;
      default: {
        const never: never = change;
        throw new Error(`unknown idle change ${String(never)}`);
      }
    }
    check(target);
  }

  function fail(target: Target, errorCode?: string): void {
    target.failures += 1;
    target.retryAt = performance.now() + backoffMs(target.failures, warm);
    if (target.failures === 1) observer?.onOriginHealth?.(target.origin, false, errorCode);
  }

  /** Opens one connection ahead of need; resolves true when it opened. Never rejects. */
  function open(target: Target): Promise<boolean> {
    target.pending += 1;
    return pools.preconnect(target.origin, target.settings).then(
      () => {
        target.pending -= 1;
        observer?.onPreconnect?.(target.origin, true);
        if (target.failures > 0) observer?.onOriginHealth?.(target.origin, true);
        // Opening alone does not reset the failure count: a connection resets it when a request
        // takes it or it lives longer than SHORT_LIVED_MS (a peer that accepts and drops at once
        // keeps backing off). The next attempt need not wait, though.
        if (target.failures > 0) target.retryAt = performance.now();
        return true;
      },
      (err: unknown) => {
        target.pending -= 1;
        const code = (err as NodeJS.ErrnoException | null)?.code ?? 'UNKNOWN';
        observer?.onPreconnect?.(target.origin, false, code);
        if (!closed && targets.get(target.origin) === target) {
          fail(target, code);
          check(target); // schedules the next attempt after the backoff
        }
        return false;
      },
    );
  }

  /** Tops the origin up to `minIdle` idle connections, now or when its backoff ends. */
  function check(target: Target): void {
    if (closed || targets.get(target.origin) !== target || target.timer !== null) return;
    const { minIdle } = warmCounts(target.settings);
    const idle = pools.idleConnections(target.origin, target.settings);
    // An h2 connection keeps taking requests while busy (up to 100 streams): connected is ready.
    const ready = target.settings.http2 ? Math.max(idle.free, idle.connected) : idle.free;
    const have = idle.parked + ready + target.pending;
    const room = target.settings.connectionsPerOrigin - (idle.connected + idle.parked + target.pending);
    const need = Math.min(minIdle - have, room);
    if (need <= 0) return;
    const wait = target.retryAt - performance.now();
    if (wait > 0) {
      target.timer = setTimeout(() => {
        target.timer = null;
        check(target);
      }, wait);
      return; // ref'd on purpose: close() clears it, so a leaked timer would hold the process
    }
    for (let i = 0; i < need; i++) void open(target);
  }

  function stop(target: Target): void {
    if (target.timer !== null) clearTimeout(target.timer);
    target.timer = null;
    pools.dropParked(target.origin, target.settings);
  }

  async function warmStart(fresh: readonly Target[], initial: boolean): Promise<WarmStartResult> {
    const started = performance.now();
    const attempts: Promise<boolean>[] = [];
    const hosts = fresh.map((t) => new URL(t.origin).hostname.replace(/^\[|\]$/g, ''));
    const prepared = deps.prepare?.(hosts).catch(() => undefined) ?? Promise.resolve();
    for (const target of fresh) {
      const { connections } = warmCounts(target.settings);
      for (let i = 0; i < connections; i++) attempts.push(open(target));
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), warm.timeoutMs);
      timer.unref();
    });
    let opened = 0;
    let failed = 0;
    const all = attempts.map((a) =>
      a.then((ok) => {
        if (ok) opened++;
        else failed++;
      }),
    );
    const outcome = await Promise.race([
      Promise.all([...all, prepared]).then(() => 'done' as const),
      deadline,
    ]);
    clearTimeout(timer);
    const result: WarmStartResult = {
      initial,
      durationMs: performance.now() - started,
      origins: fresh.length,
      opened,
      failed,
      timedOut: outcome === 'timeout',
    };
    // From here on each origin is topped up to minIdle as connections come and go.
    for (const target of fresh) check(target);
    return result;
  }

  return {
    async apply(origins) {
      if (closed)
        return { initial: !applied, durationMs: 0, origins: 0, opened: 0, failed: 0, timedOut: false };
      const wanted = new Map<string, WarmOrigin>();
      for (const route of origins) {
        const w = route.upstream.warm;
        if (w.connections === 0 && w.minIdle === 0) continue;
        if (!wanted.has(route.origin)) wanted.set(route.origin, route);
      }
      for (const [origin, target] of targets) {
        const route = wanted.get(origin);
        // Same settings (a reload compiles new, equal objects): keep it warm as it is.
        if (route === undefined || JSON.stringify(route.upstream) !== JSON.stringify(target.settings)) {
          stop(target);
          targets.delete(origin);
        }
      }
      const fresh: Target[] = [];
      for (const [origin, route] of wanted) {
        if (targets.has(origin)) continue;
        const target: Target = {
          origin,
          route: route.name,
          settings: route.upstream,
          pending: 0,
          failures: 0,
          retryAt: 0,
          timer: null,
        };
        targets.set(origin, target);
        fresh.push(target);
      }
      const names = [...wanted.keys()]
        .map((origin) => new URL(origin).hostname.replace(/^\[|\]$/g, ''))
        .filter((host) => isIP(host) === 0);
      deps.dns?.keepFresh(names);
      const initial = !applied;
      applied = true;
      warming++;
      if (initial) starting = true;
      try {
        const result = await warmStart(fresh, initial);
        // A reload's warming (often nothing new to connect) never replaces the start's figure.
        if (initial) lastWarmStartMs = result.durationMs;
        observer?.onWarmStart?.(result);
        return result;
      } finally {
        warming--;
        if (initial) starting = false;
      }
    },
    ready() {
      // Only the warm start at start: a reload's re-warm must not take a serving instance out.
      if (warm.readyWait && starting) return { ready: false, why: 'warming' };
      return { ready: true, why: 'listening' };
    },
    state() {
      const now = performance.now();
      return {
        warming: warming > 0,
        lastWarmStartMs,
        origins: [...targets.values()].map((t) => {
          const idle = pools.idleConnections(t.origin, t.settings);
          return {
            origin: t.origin,
            route: t.route,
            minIdle: warmCounts(t.settings).minIdle,
            parked: idle.parked,
            free: idle.free,
            pending: t.pending,
            failures: t.failures,
            retryInMs: t.timer !== null ? Math.max(0, t.retryAt - now) : null,
          };
        }),
      };
    },
    close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      for (const target of targets.values()) {
        if (target.timer !== null) clearTimeout(target.timer);
        target.timer = null;
      }
      targets.clear();
      deps.dns?.keepFresh([]);
    },
  };
}
